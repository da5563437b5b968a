"""Arguments and checks shared by the commands."""
from __future__ import annotations

import argparse
import inspect
import logging
import sys

from tqdm import tqdm

from ..errors import AdvnetsError

# What the commands report goes through Python's logging: `advnets -q` keeps warnings and errors only, `-v` adds
# debug lines. Informational lines go to stdout, warnings to stderr.
log = logging.getLogger("advnets")


class _ConsoleHandler(logging.Handler):
    """INFO and below to the current sys.stdout, WARNING and above to sys.stderr (looked up at each record, so a
    test's captured streams are used)."""

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        prefix = "advnets: warning: " if record.levelno == logging.WARNING else ""
        text = prefix + record.getMessage() + "\n"       # a path's non-UTF-8 byte (a surrogate) shown as U+FFFD
        stream.write(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
        stream.flush()


def configure_logging(verbosity: int) -> None:
    """verbosity -1 (--quiet), 0 (default) or 1 (--verbose)."""
    for handler in [h for h in log.handlers if isinstance(h, _ConsoleHandler)]:
        log.removeHandler(handler)
    log.addHandler(_ConsoleHandler())
    log.setLevel({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))
    log.propagate = False


def add_run_arguments(p: argparse.ArgumentParser, data: bool = True) -> None:
    """The arguments of every command that reads a trained run."""
    p.add_argument("run", help="run directory written by `advnets train`")
    p.add_argument("--checkpoint", help="checkpoint file (default RUN/checkpoints/last.pt)")
    p.add_argument("--device", default="auto", help="cpu | cuda | mps | auto (default: a GPU if there is one)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    add_raw_generator(p)
    if data:
        p.add_argument("--data-dir", help="directory holding the dataset files, if not the run's")
        p.add_argument("--fold", type=int, help="TFD: use this fold's valid / test images (default: the run's)")


def add_raw_generator(p: argparse.ArgumentParser) -> None:
    p.add_argument("--raw-generator", action="store_true",
                   help="a run trained with train.generator_ema: use G itself, not the moving average of its weights")


def positive(name: str, value: int) -> None:
    if value < 1:
        raise AdvnetsError(f"{name} must be at least 1, got {value}")


def run_split(run, split: str, args: argparse.Namespace):
    """The images of a split of the run's dataset, with the command's --data-dir / --fold."""
    return run.load_split(split, args.data_dir, getattr(args, "fold", None)).images


class ProgressBar:
    """`progress(done, total, note)` callbacks drawn as a tqdm bar on stderr when it is a terminal, else silent."""

    def __init__(self, desc: str):
        self.desc, self.bar, self.on = desc, None, sys.stderr.isatty()

    def __call__(self, done: int, total: int, note: str = "") -> None:
        if not self.on:
            return
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, leave=False, dynamic_ncols=True)
        self.bar.set_postfix_str(note, refresh=False)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.bar.close()


def defaults(function) -> dict:
    """The default values of a library function's parameters: the command line's defaults, from one source."""
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}
