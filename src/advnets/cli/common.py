"""Arguments and checks shared by the commands."""
from __future__ import annotations

import argparse

from ..errors import AdvnetsError


def add_run_arguments(p: argparse.ArgumentParser, data: bool = True) -> None:
    """The arguments of every command that reads a trained run."""
    p.add_argument("run", help="run directory written by `advnets train`")
    p.add_argument("--checkpoint", help="checkpoint file (default RUN/checkpoints/last.pt)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | mps | auto")
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


class ProgressBar:
    """`progress(done, total, note)` callbacks drawn as a tqdm bar on stderr when it is a terminal, else silent."""

    def __init__(self, desc: str):
        import sys

        self.desc, self.bar, self.on = desc, None, sys.stderr.isatty()

    def __call__(self, done: int, total: int, note: str = "") -> None:
        if not self.on:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, leave=False, dynamic_ncols=True)
        self.bar.set_postfix_str(note, refresh=False)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.bar.close()
