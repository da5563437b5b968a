"""Arguments and checks shared by the commands."""
from __future__ import annotations

import argparse

from ..errors import AdvnetsError


def add_run_arguments(p: argparse.ArgumentParser, data: bool = True) -> None:
    """The arguments of every command that reads a trained run."""
    p.add_argument("run", help="run directory written by `advnets train`")
    p.add_argument("--checkpoint", help="checkpoint file (default RUN/checkpoints/last.pt)")
    p.add_argument("--device", default="auto", help="cpu | cuda | mps | auto (default: a GPU if there is one)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    if data:
        p.add_argument("--data-dir", help="directory holding the dataset files, if not the run's")
        p.add_argument("--fold", type=int, help="TFD: use this fold's valid / test images (default: the run's)")


def positive(name: str, value: int) -> None:
    if value < 1:
        raise AdvnetsError(f"{name} must be at least 1, got {value}")


def run_split(run, split: str, args: argparse.Namespace):
    """The images of a split of the run's dataset, with the command's --data-dir / --fold."""
    return run.load_split(split, args.data_dir, getattr(args, "fold", None)).images
