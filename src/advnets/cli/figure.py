"""`advnets figure`: Figures 2 and 3 of a trained run, the scatter of a 2-D run's samples over its means; Figure 1
(cli/theory.py) and inpainting (cli/extensions.py) register themselves under it."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..data.mixtures import mixture_means
from ..errors import AdvnetsError
from ..eval.mixture_runs import run_mixture_coverage
from ..figures.image_grid import save_png, upscale
from ..figures.paper_figures import interpolation_figure, samples_figure
from ..figures.scatter import POINT_BYTES, scatter_figure
from ..fileio import save_figure
from ..limits import check_memory, check_png, grid_pixels
from ..run.layout import check_output
from ..run.loaded import load_run
from .common import add_run_arguments, defaults, log, positive, run_split


def cmd_figure_samples(args: argparse.Namespace) -> int:
    positive("--scale", args.scale)
    positive("--rows", args.rows)
    if args.cols < 2:
        raise AdvnetsError(f"--cols must be at least 2 (samples and the nearest-neighbour column), got {args.cols}")
    out = check_output(args.out or Path(args.run) / "figures" / "samples.png")
    png_out(args.out)
    run = load_run(args.run, args.checkpoint, args.device, average=not args.raw_generator)
    check_png([("--rows", args.rows, 1), ("--cols", args.cols, 2), ("--scale", args.scale, 1)],
              lambda v: grid_pixels(v[0], v[1], run.image_shape, scale=v[2]))
    grid = samples_figure(run, run_split(run, "train", args), rows=args.rows, cols=args.cols, seed=args.seed)
    save_png(upscale(grid, args.scale), out)
    log.info(f"wrote {out}: {args.rows} rows of {args.cols - 1} samples and, framed, the nearest training example")
    return 0


def cmd_figure_interpolate(args: argparse.Namespace) -> int:
    positive("--scale", args.scale)
    positive("--rows", args.rows)
    if args.steps < 2:
        raise AdvnetsError(f"--steps must be at least 2 (the two ends of each line), got {args.steps}")
    out = check_output(args.out or Path(args.run) / "figures" / "interpolate.png")
    png_out(args.out)
    run = load_run(args.run, args.checkpoint, args.device, average=not args.raw_generator)
    check_png([("--rows", args.rows, 1), ("--steps", args.steps, 2), ("--scale", args.scale, 1)],
              lambda v: grid_pixels(v[0], v[1], run.image_shape, scale=v[2]))
    grid = interpolation_figure(run, rows=args.rows, steps=args.steps, seed=args.seed)
    save_png(upscale(grid, args.scale), out)
    log.info(f"wrote {out}: {args.rows} straight lines in z space, {args.steps} samples each")
    return 0


def cmd_figure_scatter(args: argparse.Namespace) -> int:
    positive("--n", args.n)
    out = check_output(args.out or Path(args.run) / "figures" / "scatter.png")
    png_out(args.out)
    run = load_run(args.run, args.checkpoint, args.device, average=not args.raw_generator)
    check_memory("--n", args.n, POINT_BYTES, "points")
    samples, cov = run_mixture_coverage(run, args.n, args.seed)
    title = f"{Path(args.run).name}: {cov['dataset']}, pack {run.config.model.pack}, step {run.step}"
    save_figure(scatter_figure(samples, mixture_means(cov["dataset"]), cov["sigma"], cov, title), out, dpi=120)
    log.info(f"wrote {out}: {cov['n']} samples over the {cov['modes']} means; {cov['modes_captured']} modes captured, "
             f"{cov['high_quality']:.1%} high quality, reverse KL {cov['reverse_kl']:.3f}")
    return 0


def png_out(out: str | None) -> None:
    """A figure's --out: a file name ending in .png (what is written), when given (a directory is refused when
    written to, as one)."""
    if out is not None and not out.strip():
        raise AdvnetsError("--out is empty", "name a .png file, or leave --out out")
    if out is not None and Path(out).suffix.lower() != ".png" and not Path(out).is_dir():
        raise AdvnetsError(f"--out {out!r} does not end in .png; figures are written as PNG",
                           "name a .png file, e.g. --out figure.png")


def add_figure_command(sub):
    """Register `advnets figure` and its samples / interpolate figures; returns its subparsers."""
    fig = sub.add_parser("figure", help="figures for a run: samples, interpolate, inpaint; toy1d (Figure 1)")
    figs = fig.add_subparsers(dest="figure", metavar="FIGURE", required=True)
    p = figs.add_parser("samples", help="Figure 2: random samples, last column the nearest training example",
                        description="Fair random samples; in the last column, framed, the training example "
                                    "nearest (L2) to the sample beside it. Default RUN/figures/samples.png.")
    add_run_arguments(p)
    default = defaults(samples_figure)
    p.add_argument("--rows", type=int, default=default["rows"], help="default %(default)s")
    p.add_argument("--cols", type=int, default=default["cols"],
                   help="columns including the nearest-neighbour column (default %(default)s)")
    p.add_argument("--out", help="output PNG")
    p.add_argument("--scale", type=int, default=1, help="each pixel as a scale x scale block (default 1)")
    p.set_defaults(func=cmd_figure_samples)
    p = figs.add_parser("interpolate", help="Figure 3: samples along straight lines in z space",
                        description="Each row: G(z) for z on the line between two random noise vectors. "
                                    "Default RUN/figures/interpolate.png.")
    add_run_arguments(p, data=False)
    default = defaults(interpolation_figure)
    p.add_argument("--rows", type=int, default=default["rows"], help="default %(default)s")
    p.add_argument("--steps", type=int, default=default["steps"], help="samples per line (default %(default)s)")
    p.add_argument("--out", help="output PNG")
    p.add_argument("--scale", type=int, default=1, help="each pixel as a scale x scale block (default 1)")
    p.set_defaults(func=cmd_figure_interpolate)
    p = figs.add_parser("scatter", help="2-D runs (grid, ring): samples over the mixture's means",
                        description="Samples of G as dots over the means of the run's 2-D mixture, each mean with "
                                    "its high-quality circle (3 sigma; green: captured, red: missed), and the modes "
                                    "captured, high-quality fraction and reverse KL. Default RUN/figures/scatter.png.")
    add_run_arguments(p, data=False)
    p.add_argument("--n", type=int, default=defaults(run_mixture_coverage)["n"],
                   help="samples (default %(default)s, the benchmarks' count)")
    p.add_argument("--out", help="output PNG")
    p.set_defaults(func=cmd_figure_scatter)
    return figs
