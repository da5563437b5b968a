"""Uses of a trained run beyond the paper's figures (issue 6, items 2-4): learned approximate inference
(`inference.py`), inpainting by optimising z (`inpaint.py`) and semi-supervised features from D (`semisup.py`).

Each module holds pure functions and one `add_*_command` that registers its CLI command.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import AdvnetsError, DataError
from ..fileio import atomic_write_text


def check_images(run) -> None:
    """Pixels in [0, 1] are assumed (mask fill, mean-image baseline); toy1d runs have no images. These commands
    read G(z) and D(x) without a class, so they take unconditional runs."""
    if run.config.data.dataset == "toy1d":
        raise DataError("this command needs an image dataset; the run was trained on toy1d",
                        "pass a run trained on mnist, fashion-mnist, digits, ...")
    if run.num_classes:
        raise DataError(f"this command takes an unconditional run; {run.run_dir} is conditional "
                        "(model.conditional)", "pass a run trained without --conditional")


def write_json(path: Path, report: dict) -> Path:
    atomic_write_text(path, json.dumps(report, indent=1) + "\n")
    return path


def run_arguments(p: argparse.ArgumentParser, steps: int | None = None) -> None:
    from ..cli import add_run_arguments

    add_run_arguments(p)
    if steps is not None:
        p.add_argument("--steps", type=int, default=steps, help=f"optimisation steps (default {steps})")


def positive(name: str, value: int) -> None:
    if value < 1:
        raise AdvnetsError(f"{name} must be at least 1, got {value}")


def mse(a, b) -> float:
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
