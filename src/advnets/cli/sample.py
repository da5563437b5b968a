"""`advnets sample`: samples of a trained run as a PNG grid or a .npy array."""
from __future__ import annotations

import argparse
import math
import os
import shutil
from pathlib import Path

import torch

from ..data import for_display
from ..errors import AdvnetsError, OutputError
from ..figures.image_grid import save_grid, save_pngs
from ..fileio import atomic_npy, atomic_save_npy
from ..limits import LimitError, check_png, grid_pixels
from ..models import class_rows
from ..run.layout import check_output
from ..run.loaded import load_run
from .common import add_raw_generator, log, positive


def cmd_sample(args: argparse.Namespace) -> int:
    out, folder = _checked_out(args)
    run = load_run(args.run, args.checkpoint, args.device, average=not args.raw_generator)
    run.check_class(args.label)
    labels, nrow, what = args.label, args.nrow, ""
    if args.label is not None:
        what = f" of class {args.label}"
    elif run.num_classes:                            # a conditional run: one row per class, class-major order
        per_class = -(-args.n // run.num_classes)
        labels = class_rows(run.num_classes, per_class)[:args.n]
        nrow = nrow or per_class
        what = f", one row per class ({per_class} per class)"
    batches = run.sample_batches(args.n, seed=args.seed, labels=labels)
    if folder:
        start = 0
        for images in batches:
            write_sample_pngs(for_display(images, run.config.data), out, start)
            start += len(images)
        what += " as one PNG each (sample_00000.png, ...)"
    elif out.suffix == ".npy":
        what += _write_npy(batches, out, (args.n, *run.image_shape), labels)
    else:
        _check_grid_size(args.n, run.image_shape, nrow, args.nrow is not None, args.scale)
        images = torch.cat(list(batches))
        save_grid(for_display(images, run.config.data), out, nrow=nrow, scale=args.scale)
    log.info(f"wrote {args.n} samples{what} of run {args.run} (epoch {run.epoch}, step {run.step}) to {out}")
    return 0


def _checked_out(args: argparse.Namespace) -> tuple[Path, bool]:
    """The command's numbers checked, and where it writes: (the output path, whether it is a folder of PNGs)."""
    if args.n < 1:
        raise AdvnetsError(f"--n must be at least 1, got {args.n}")
    if args.nrow is not None and args.nrow < 1:
        raise AdvnetsError(f"--nrow must be at least 1, got {args.nrow}")
    if args.out is not None and not args.out.strip():
        raise AdvnetsError("--out is empty", "name a .png or .npy file or a folder DIR/, or leave --out out")
    folder = args.out is not None and (args.out.endswith(("/", os.sep)) or Path(args.out).is_dir())
    out = Path(args.out or Path(args.run) / (f"samples_{args.n}_seed{args.seed}"
                                             + ("" if args.label is None else f"_class{args.label}") + ".png"))
    if not folder and out.suffix not in (".npy", ".png"):
        raise AdvnetsError(f"cannot write samples to '{out}'", "use a .png (grid) or .npy (array) file name, or a "
                                                               "folder (DIR/: one PNG per sample)")
    positive("--scale", args.scale)
    check_output(out / "sample_00000.png" if folder else out)
    if out.suffix == ".npy":
        check_output(out.with_suffix(".labels.npy"))
    return out, folder


def write_sample_pngs(images, out_dir: Path, start: int = 0) -> list[Path]:
    """`sample --out DIR/` (or an existing folder): one PNG per sample, DIR/sample_00000.png, ..."""
    return save_pngs(images, out_dir, start)


def _write_npy(batches, out: Path, shape: tuple[int, ...], labels) -> str:
    """Stream the samples into a float32 .npy file (memory stays flat for any n), after checking the disk has
    room; a conditional run's classes go to OUT.labels.npy."""
    need = math.prod(shape) * 4
    parent = next(p for p in (out.resolve().parent, *out.resolve().parents) if p.exists())
    free = shutil.disk_usage(parent).free
    if need > free:
        raise OutputError(f"{shape[0]} samples need {need / 1e9:.2f} GB in {out}, but only {free / 1e9:.2f} GB are "
                          "free there", "ask for fewer samples (--n) or write elsewhere")
    with atomic_npy(out, shape) as array:
        start = 0
        for images in batches:
            array[start:start + len(images)] = images.numpy()
            start += len(images)
    if torch.is_tensor(labels):
        atomic_save_npy(out.with_suffix(".labels.npy"), labels.numpy())
        return f"; their classes in {out.with_suffix('.labels.npy')}"
    return ""


def _check_grid_size(n: int, image_shape: tuple[int, ...], nrow: int | None, nrow_given: bool, scale: int) -> None:
    """A PNG grid is built in memory and must stay an image viewers open (PIL's limit, about 89 megapixels), each
    pixel drawn scale x scale."""
    def size(values):
        count, *rest = values
        cols = rest[0] if nrow_given else nrow or math.ceil(math.sqrt(count))
        return grid_pixels(math.ceil(count / cols), cols, image_shape, scale=rest[-1])
    options = [("--n", n, 1), *([("--nrow", nrow, 1)] if nrow_given else []), ("--scale", scale, 1)]
    try:
        check_png(options, size)
    except LimitError as exc:
        raise LimitError(exc.message, f"{exc.hint}; or write a .npy file (streamed to disk) or a folder "
                                      "(--out DIR/)") from None


def add_sample_command(sub) -> None:
    p = sub.add_parser("sample", help="draw samples from a trained run as a PNG grid or a .npy array",
                       description="Draw N samples G(z), z from the noise prior, with G in evaluation mode. "
                                   "A conditional run draws G(z, c): of one class with --class, else a grid "
                                   "with one row per class.")
    p.add_argument("run", help="run directory written by `advnets train`")
    p.add_argument("--n", type=int, default=100, help="number of samples (default 100)")
    p.add_argument("--scale", type=int, default=1, help="PNG grid: each pixel as a scale x scale block (default 1)")
    p.add_argument("--out", help="output .png (grid), .npy (float32 array (N, C, H, W), streamed to disk; a "
                                 "conditional run without --class also writes the classes to OUT.labels.npy), "
                                 "or a folder (DIR/ or an existing directory: one PNG per sample); "
                                 "default RUN/samples_N_seedS.png")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    p.add_argument("--nrow", type=int, default=None,
                   help="images per grid row (default: square grid; conditional runs: one row per class)")
    p.add_argument("--class", dest="label", type=int, metavar="C",
                   help="conditional runs: draw samples of class C only (0 .. classes-1)")
    p.add_argument("--checkpoint", help="checkpoint file (default RUN/checkpoints/last.pt)")
    p.add_argument("--device", default="auto", help="cpu | cuda | mps | auto (default: a GPU if there is one)")
    add_raw_generator(p)
    p.set_defaults(func=cmd_sample)
