"""`advnets eval`: the Parzen-window log-likelihood (Table 1), the memorisation check, class accuracy, sample
quality and mode coverage. Each report is built by `advnets.eval.run_reports`; this module writes and prints it."""
from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from ..errors import AdvnetsError
from ..eval import run_reports
from ..eval.parzen import ParzenResult, SigmaOnEdgeWarning, sigma_grid
from ..fileio import write_json
from ..run.layout import check_output
from ..limits import check_memory
from ..run.loaded import load_run
from .common import ProgressBar, add_run_arguments, defaults, log, positive


def cmd_eval(args: argparse.Namespace) -> int:
    sigmas = _sigmas(args.sigmas)
    _check_counts(args)
    run = load_run(args.run, args.checkpoint, args.device, average=not args.raw_generator)
    args.coverage_samples = run_reports.coverage_samples(run, args.coverage_samples)
    _check_memory(run, args)
    out_dir = Path(args.run) / "eval"
    check_output(out_dir / "parzen.json")                     # not through a linked eval/ folder
    data = {"data_dir": args.data_dir, "fold": args.fold}
    chosen = [name for name in ("nearest", "class_accuracy", "quality", "coverage") if getattr(args, name)]
    if args.parzen or not chosen:
        chosen.append("parzen")
    run_reports.check_data(run, chosen, **data)           # all the data first: no long work ends in a missing file
    if args.nearest:
        nearest = run_reports.nearest_report(run, seed=args.seed, **data)
        n = nearest["nearest"]
        log.info(f"mean L2 distance to the nearest training example: samples {n['samples_mean_nn_distance']:.3f}, "
                 f"held-out images {n['held_out_mean_nn_distance']:.3f} ({_ratio(n['ratio'])})")
    if args.class_accuracy:
        _class_accuracy(run_reports.class_accuracy_report(run, per_class=args.per_class, seed=args.seed,
                                                          progress=_classifier_progress(), **data), out_dir)
    if args.quality:
        _quality(run_reports.quality_report(run, n_samples=args.n_samples, seed=args.seed,
                                            progress=_classifier_progress(), **data), out_dir)
    if args.coverage:
        _coverage(run_reports.coverage_report(run, n_samples=args.coverage_samples, seed=args.seed,
                                              progress=_classifier_progress(), **data), out_dir)
    if "parzen" in chosen:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SigmaOnEdgeWarning)
            parzen = run_reports.parzen_report(run, n_samples=args.n_samples, sigmas=sigmas, seed=args.seed, **data)
        for w in caught:
            print(f"advnets: warning: {w.message}", file=sys.stderr)
        log.info(ParzenResult.from_dict(parzen).table_line(dataset=parzen["dataset"]))
        log.info(f"scored on: {parzen['test_split']}")
        write_json(out_dir / "parzen.json", parzen)
        log.info(f"wrote {out_dir / 'parzen.json'}")
    if args.nearest:
        write_json(out_dir / "nearest.json", nearest)
    return 0


def _check_counts(args: argparse.Namespace) -> None:
    """Each count option given is at least 1 (--coverage-samples may be left out: the run's data decides)."""
    for flag in ("n_samples", "per_class", "coverage_samples"):
        if getattr(args, flag) is not None:
            positive("--" + flag.replace("_", "-"), getattr(args, flag))


def _check_memory(run, args: argparse.Namespace) -> None:
    """The samples each asked-for report holds at once fit in the memory available, before any is drawn."""
    parzen = args.parzen or not (args.nearest or args.class_accuracy or args.quality or args.coverage)
    for wanted, option, n, report, classes in (
            (parzen, "--n-samples", args.n_samples, "parzen", 1),
            (args.quality, "--n-samples", args.n_samples, "quality", 1),
            (args.coverage, "--coverage-samples", args.coverage_samples, "coverage", 1),
            (args.class_accuracy, "--per-class", args.per_class, "class_accuracy", max(run.num_classes, 1))):
        if wanted:
            check_memory(option, n, classes * run_reports.sample_bytes(run, report))


def _sigmas(text: str | None) -> np.ndarray | None:
    """--sigmas as an array of positive finite numbers; None (the library's grid) when not given."""
    if not text:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise AdvnetsError(f"--sigmas must be comma-separated numbers, got '{text}'",
                           "e.g. --sigmas 0.1,0.2,0.3") from None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise AdvnetsError(f"Parzen widths must be positive finite numbers, got {text}")
    return np.array(values)


def _classifier_progress() -> ProgressBar:
    return ProgressBar("training the real-data classifier")


def _coverage(report: dict, out_dir: Path) -> None:
    write_json(out_dir / "coverage.json", report)
    if "sigma" in report:                                               # a 2-D mixture
        log.info(f"{report['dataset']}: {report['modes_captured']}/{report['modes']} modes captured, "
                 f"{report['high_quality']:.1%} high quality (within 3 sigma = {3 * report['sigma']:g} of a mean), "
                 f"reverse KL {_fmt(report['reverse_kl'], '.4f')} ({report['n']} samples, step {report['step']})")
    else:
        _image_coverage_lines(report)
    log.info(f"wrote {out_dir / 'coverage.json'}")


def _image_coverage_lines(report: dict) -> None:
    """Coverage of an image run: the samples, the real-image floor, the classifier's accuracy on those images."""
    stacked = "modes" in report
    what, total = ("modes", report["modes"]) if stacked else ("classes", report["classes"])
    to = "the data's triple distribution" if stacked else "the training labels' class frequencies"

    def figures(c: dict) -> str:
        uniform = f", {_fmt(c['kl_uniform'], '.4f')} to uniform" if stacked else ""
        return f"{c[what + '_captured']}/{total} {what} captured, KL {_fmt(c['kl'], '.4f')} to {to}{uniform}"
    log.info(f"{report['dataset']}: {figures(report)} ({report['n']:,} samples, step {report['step']})")
    log.info(f"floor, what a perfect generator scores with this classifier: {figures(report['floor'])} "
             f"({report['floor']['what']})")
    acc = report["classifier"]
    worst = min(range(len(acc["per_class"])), key=acc["per_class"].__getitem__)
    unit = "digit" if stacked else "class"
    log.info(f"classifier accuracy on {acc['on']}: {acc['accuracy']:.1%} of {acc['n']:,} (per {unit}: "
             + ", ".join(f"{k} {a:.1%}" for k, a in enumerate(acc["per_class"])) + f"; worst {unit} {worst})")


def _ratio(ratio: float | None) -> str:
    if ratio is None:
        return "no ratio: every held-out image is also a training example"
    return f"ratio {ratio:.3f}"


def _class_accuracy(report: dict, out_dir: Path) -> None:
    write_json(out_dir / "class_accuracy.json", report)
    per_class = report["per_class"]
    worst = min(range(len(per_class)), key=per_class.__getitem__)
    log.info(f"the classifier recognises the intended class in {report['accuracy']:.1%} of {report['n']} "
             f"conditional samples (worst class {worst}: {per_class[worst]:.1%}); on real held-out images it is "
             f"right {report['classifier_held_out_accuracy']:.1%} of the time")
    log.info(f"wrote {out_dir / 'class_accuracy.json'}")


def _quality(report: dict, out_dir: Path) -> None:
    write_json(out_dir / "quality.json", report)
    q, c = report["quality"], report["class_coverage"]
    log.info(f"{'':24}{'samples':>12}{'real (test vs valid)':>24}")
    log.info(f"{'classes captured':24}{c['classes_captured']:>12}{c['floor']['classes_captured']:>24}   "
             f"(of {len(c['histogram'])})")
    log.info(f"{'class KL to the data':24}{_fmt(c['kl']):>12}{_fmt(c['floor']['kl']):>24}")
    for key, name in (("fd", "Frechet distance"), ("kid", "KID"), ("precision", "precision (k=3)"),
                      ("recall", "recall (k=3)"), ("density", "density (k=5)"), ("coverage", "coverage (k=5)")):
        log.info(f"{name:24}{_fmt(q[key]):>12}{_fmt(q['floor'][key]):>24}")
    log.info(f"features: the classifier's penultimate layer (held-out accuracy "
             f"{report['classifier_held_out_accuracy']:.1%}); real images: {report['test_split']}")
    log.info(f"wrote {out_dir / 'quality.json'}")


def _fmt(value, spec: str = ".4g") -> str:
    """A number of a report; a text (e.g. "nan") as it is; null (a number that is missing) as "n/a"."""
    return value if isinstance(value, str) else "n/a" if value is None else f"{value:{spec}}"


def add_eval_command(sub) -> None:
    grid = defaults(sigma_grid)
    reports = {name: defaults(getattr(run_reports, name)) for name in ("parzen_report", "class_accuracy_report",
                                                                         "coverage_report")}
    p = sub.add_parser("eval", help="Parzen-window log-likelihood (Table 1) and a memorisation check",
                       description="Parzen-window estimate of the test log-likelihood (docs/design.md §2): N samples "
                                   "from G, sigma chosen on the validation split, mean and standard error on the "
                                   "test split. Prints a Table-1 line and writes RUN/eval/parzen.json.")
    add_run_arguments(p)
    p.add_argument("--parzen", action="store_true", help="Parzen log-likelihood (the default)")
    p.add_argument("--nearest", action="store_true",
                   help="mean distance to the nearest training example, of samples vs held-out images")
    p.add_argument("--class-accuracy", action="store_true",
                   help="conditional runs: how often a classifier trained on the real data (by advnets, cached) "
                        "recognises the class each sample was drawn for")
    p.add_argument("--quality", action="store_true",
                   help="image runs: class coverage (classes captured, KL to the data's class frequencies) and Frechet "
                        "distance, KID, precision/recall, density/coverage on the features of a classifier trained "
                        "on the real data (by advnets, cached), each beside real test-vs-valid images")
    p.add_argument("--coverage", action="store_true",
                   help="mode coverage, written to RUN/eval/coverage.json: 2-D runs (grid, ring): modes captured, "
                        "high-quality fraction and reverse KL (VEEGAN, PacGAN); stacked-mnist: digit triples captured "
                        "of 1,000 and KL to the data's triple distribution and to uniform; other labelled images: "
                        "classes captured and KL to the class frequencies; images beside real held-out images, "
                        "read by a classifier trained on the real data (by advnets, cached)")
    p.add_argument("--coverage-samples", type=int, default=reports["coverage_report"]["n_samples"],
                   help="--coverage: samples (default: 2,500 for grid and ring, 26,000 for images)")
    p.add_argument("--per-class", type=int, default=reports["class_accuracy_report"]["per_class"],
                   help="--class-accuracy: samples per class (default %(default)s)")
    p.add_argument("--n-samples", type=int, default=reports["parzen_report"]["n_samples"],
                   help="samples drawn from G (default %(default)s)")
    p.add_argument("--sigmas", help=f"comma-separated Parzen widths to choose sigma from (default: {grid['num']} "
                                    f"values log-spaced from {grid['low']:g} to {grid['high']:g})")
    p.set_defaults(func=cmd_eval)
