"""`advnets report` (one HTML page for one or several runs) and `advnets export` (G alone, for other programs)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import AdvnetsError
from ..run.export import FORMATS, SUFFIXES, export_generator
from ..run.loaded import load_run
from ..run.report import write_report
from .common import add_raw_generator, log


def cmd_report(args: argparse.Namespace) -> int:
    runs = [Path(r) for r in args.runs]
    if args.out:
        out = Path(args.out)
    elif len(runs) == 1:
        out = runs[0] / "report.html"
    else:
        raise AdvnetsError(f"{len(runs)} runs need one --out FILE.html for their comparison",
                           "e.g. advnets report runs/a runs/b --out compare.html")
    path = write_report(runs, out)
    log.info(f"wrote {path} (open it in a browser; its PNGs are in {path.parent / (path.stem + '_files')})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    run = load_run(args.run, args.checkpoint, "cpu", average=not args.raw_generator)
    out = args.out or Path(args.run) / "export" / f"generator{SUFFIXES[args.format]}"
    model, spec = export_generator(run, out, args.format)
    log.info(f"wrote {model} and {spec} (G of {args.run} at epoch {run.epoch}, step {run.step})")
    return 0


def add_tool_commands(sub) -> None:
    p = sub.add_parser("report", help="one HTML page with the curves, sample grids, evaluations and config of runs",
                       description="Write a self-contained HTML report (images embedded; PNGs also beside it): "
                                   "loss and D-output curves, the latest sample grid and a few earlier ones, every "
                                   "eval/*.json as a table, the config (the preset nearest to it and the keys that "
                                   "differ from it; the whole config folded). Several runs: curves overlaid and one "
                                   "comparison table of the settings that differ and the final numbers.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories written by `advnets train`")
    p.add_argument("--out", help="output .html (default RUN/report.html for one run; required for several)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("export", help="write G alone as TorchScript, ONNX or safetensors, with a JSON description",
                       description="Export the generator of a run for use without advnets: TorchScript (loads with "
                                   "torch alone: torch.jit.load), ONNX (needs pip install 'advnets[export]') or "
                                   "safetensors (the weights; rebuild with advnets). OUT.json beside it gives the "
                                   "noise dimension and prior, the classes, the output shape and value range.")
    p.add_argument("run", help="run directory written by `advnets train`")
    p.add_argument("--format", choices=FORMATS, default=FORMATS[0], help="default %(default)s")
    p.add_argument("--out", help="output file or directory/ (default RUN/export/generator.pt|.onnx|.safetensors)")
    p.add_argument("--checkpoint", help="checkpoint file (default RUN/checkpoints/last.pt)")
    add_raw_generator(p)
    p.set_defaults(func=cmd_export)
