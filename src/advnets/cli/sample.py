"""`advnets sample`: samples of a trained run as a PNG grid or a .npy array."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import AdvnetsError


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..models import class_rows
    from ..runs import load_run
    from ..figures.image_grid import save_grid

    run = load_run(args.run, args.checkpoint, args.device)
    run.check_class(args.label)
    if args.n < 1:
        raise AdvnetsError(f"--n must be at least 1, got {args.n}")
    out = Path(args.out or Path(args.run) / (f"samples_{args.n}_seed{args.seed}"
                                             + ("" if args.label is None else f"_class{args.label}") + ".png"))
    if out.suffix not in (".npy", ".png"):
        raise AdvnetsError(f"cannot write samples to '{out}'", "use a .png (grid) or .npy (array) file name")
    labels, nrow, what = args.label, args.nrow, ""
    if args.label is not None:
        what = f" of class {args.label}"
    elif run.num_classes:                            # a conditional run: one row per class, class-major order
        per_class = -(-args.n // run.num_classes)
        labels = class_rows(run.num_classes, per_class)[:args.n]
        nrow = nrow or per_class
        what = f", one row per class ({per_class} per class)"
    images = run.sample(args.n, seed=args.seed, labels=labels)
    if out.suffix == ".npy":
        from ..fileio import atomic_save_npy

        atomic_save_npy(out, images.numpy().astype(np.float32))
        if torch.is_tensor(labels):
            atomic_save_npy(out.with_suffix(".labels.npy"), labels.numpy())
            what += f"; their classes in {out.with_suffix('.labels.npy')}"
    else:
        from ..data import for_display

        save_grid(for_display(images, run.config.data), out, nrow=nrow)
    print(f"wrote {args.n} samples{what} of run {args.run} (epoch {run.epoch}, step {run.step}) to {out}")
    return 0


def add_sample_command(sub) -> None:
    p = sub.add_parser("sample", help="draw samples from a trained run as a PNG grid or a .npy array",
                       description="Draw N samples G(z), z from the noise prior, with G in evaluation mode. "
                                   "A conditional run draws G(z, c): of one class with --class, else a grid "
                                   "with one row per class.")
    p.add_argument("run", help="run directory written by `advnets train`")
    p.add_argument("--n", type=int, default=100, help="number of samples (default 100)")
    p.add_argument("--out", help="output .png (grid) or .npy (float32 array (N, C, H, W); a conditional run "
                                 "without --class also writes the classes to OUT.labels.npy); "
                                 "default RUN/samples_N_seedS.png")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    p.add_argument("--nrow", type=int, default=None,
                   help="images per grid row (default: square grid; conditional runs: one row per class)")
    p.add_argument("--class", dest="label", type=int, metavar="C",
                   help="conditional runs: draw samples of class C only (0 .. classes-1)")
    p.add_argument("--checkpoint", help="checkpoint file (default RUN/checkpoints/last.pt)")
    p.add_argument("--device", default="auto", help="cpu | cuda | mps | auto (default: a GPU if there is one)")
    p.set_defaults(func=cmd_sample)
