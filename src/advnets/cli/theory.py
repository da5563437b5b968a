"""`advnets theory` (section 4 checked on the 1-D problem) and `advnets figure toy1d` (Figure 1). The report is
built by `advnets.theory.experiment.run_experiment`; this module prints and writes it."""
from __future__ import annotations

import argparse
import json
import re
import sys

from ..config import parse_override
from ..fileio import atomic_write_text
from ..theory.experiment import ToyResult, run_experiment, toy_config
from ..theory.figure1 import write_figures
from .common import defaults, log

CHECKS = ("proposition_1", "theorem_1", "convergence")


def add_theory_command(subparsers) -> argparse.ArgumentParser:
    """Register `theory` on the top-level subparsers of the `advnets` command line."""
    p = subparsers.add_parser(
        "theory", help="check section 4 numerically on the 1-D toy problem; print a JSON report",
        description="Train the toy1d preset (a 1-D Gaussian, z uniform) with Algorithm 1 and print, as JSON: "
                    "Proposition 1 (max |D - D*| after training D alone), Theorem 1 (V(G, D) against "
                    "-log 4 + 2 JSD), convergence (JSD and D's mean over training) and section 3's saturation "
                    "(G's gradient norm under the minimax and non-saturating losses). Exits 1 if a check fails.")
    _experiment_arguments(p)
    p.add_argument("--out", help="also write the report to this JSON file")
    p.add_argument("--figures", metavar="DIR", help="also draw Figure 1 and the training curves of this run in DIR")
    p.set_defaults(func=cmd_theory)
    return p


def _experiment_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=defaults(toy_config)["seed"],
                   help="train.seed of the run (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="the shorter settings the tests use")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override the toy1d preset, e.g. --set data.toy_means=-2,2 --set data.toy_stds=0.5")


def _run(args: argparse.Namespace) -> ToyResult:
    """The toy1d run of --seed, --set and --quick, with its progress lines on stderr."""
    config = toy_config(args.seed, dict(parse_override(item) for item in args.set or []))
    return run_experiment(config, quick=args.quick, log=sys.stderr)


def cmd_theory(args: argparse.Namespace) -> int:
    result = _run(args)
    text = report_json(result.report)
    print(text)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    if args.figures:
        for path in write_figures(result, args.figures):
            print(f"wrote {path}", file=sys.stderr)
    failed = [k for k in CHECKS if not result.report[k]["ok"]]
    if failed:
        print(f"advnets: theory checks failed: {', '.join(failed)} (seed {args.seed})", file=sys.stderr)
        return 1
    return 0


def report_json(report: dict) -> str:
    """JSON with two-space indents, lists of numbers kept on one line."""
    text = json.dumps(report, indent=2)
    return re.sub(r"\[\s+([-0-9.eE,\s]+?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)


def cmd_toy1d(args: argparse.Namespace) -> int:
    """`advnets figure toy1d`: train the toy problem (seconds) and draw Figure 1 and its training curves."""
    for path in write_figures(_run(args), args.out):
        log.info(f"wrote {path}")
    return 0


def add_toy1d_figure(figure_subparsers) -> argparse.ArgumentParser:
    """Register `toy1d` under `advnets figure` (the subparsers object of the `figure` command)."""
    p = figure_subparsers.add_parser(
        "toy1d", help="Figure 1: the 1-D picture of training (p_data, p_g, D and x = G(z) at four stages)",
        description="Train the toy1d preset (a 1-D Gaussian, z uniform) with Algorithm 1 and draw the paper's "
                    "Figure 1 from the run: figure1_toy1d.png (panels (a)-(d)) and figure1_training.png "
                    "(JSD and D's mean over the iterations).")
    p.add_argument("--out", default="figures", help="output directory (default ./figures)")
    _experiment_arguments(p)
    p.set_defaults(func=cmd_toy1d)
    return p
