"""TensorBoard event files for a run: its metrics records as scalars and its sample grids as images.

The writer is tensorboardX's `SummaryWriter`. PyTorch's own `torch.utils.tensorboard.SummaryWriter` has the same
interface but imports the full `tensorboard` package (the viewer: grpcio, absl-py, Markdown, Werkzeug,
tensorboard-data-server, about 12 MB of wheels); tensorboardX needs only protobuf and numpy (well under 1 MB),
never TensorFlow, and is kept up to date (2.6.x). Writing and viewing are separate: the `tensorboard` package is
needed only where `tensorboard --logdir runs` is run (the `tensorboard` extra).

Tags (global step = the record's "step", the number of G updates):
    loss/d, loss/g, D/real, D/fake         one iteration's values, from "step" records
    loss/d_epoch_mean, ..., D/fake_epoch_mean   the means over an epoch, from "epoch" records
    opt/lr, opt/momentum, speed/steps_per_s, speed/seconds_per_epoch, progress/epoch
    metrics/<key>                          any other numeric field (e.g. coverage figures)
    samples                                the fixed-noise sample grid, one image per call of `samples`
"""
from __future__ import annotations

import math
from numbers import Real
from pathlib import Path

import numpy as np
import torch

from ..errors import AdvnetsError
from ..figures.image_grid import image_grid
from .hooks import Reporter

_STATS = {"d_loss": "loss/d", "g_loss": "loss/g", "d_real": "D/real", "d_fake": "D/fake"}
_OTHERS = {"lr": "opt/lr", "momentum": "opt/momentum", "steps_per_s": "speed/steps_per_s",
           "seconds": "speed/seconds_per_epoch"}
_NOT_SCALARS = {"kind", "step", "epoch"}


def scalar_tags(record: dict) -> dict[str, float]:
    """The TensorBoard scalars of one metrics record, {tag: value}: every real-valued field but kind/step/epoch
    (booleans and None are skipped), plus progress/epoch for an epoch record."""
    epoch_record = record.get("kind") == "epoch"
    out = {}
    for key, value in record.items():
        if key in _NOT_SCALARS or isinstance(value, bool) or not isinstance(value, Real):
            continue
        if key in _STATS:
            tag = _STATS[key] + ("_epoch_mean" if epoch_record else "")
        else:
            tag = _OTHERS.get(key, f"metrics/{key}")
        out[tag] = float(value)
    if epoch_record and isinstance(record.get("epoch"), Real):
        out["progress/epoch"] = float(record["epoch"])
    return out


class TensorBoardReporter(Reporter):
    """Writes TensorBoard event files into `log_dir` (the run directory itself, so that `tensorboard --logdir
    runs` names each run by its directory). Only one process (rank 0) should make one.

    `purge_step`: when a run is resumed at this step, TensorBoard hides events at or after it that an earlier,
    interrupted process wrote, so the curves do not double back."""

    def __init__(self, log_dir: str | Path, purge_step: int | None = None, flush_secs: int = 30):
        try:    # here, not at the top: tensorboardX takes 0.24 s to import (2-core EPYC), which every advnets
            from tensorboardX import SummaryWriter     # command would pay through the parser, and runs without
        except ImportError:                             # TensorBoard need not
            raise AdvnetsError("TensorBoard logging needs the Python package 'tensorboardX', which is not "
                               "installed", "pip install tensorboardX, or turn TensorBoard logging off") from None
        self.log_dir = Path(log_dir)
        self._open = lambda: SummaryWriter(logdir=str(self.log_dir), purge_step=purge_step, flush_secs=flush_secs)
        self._opened = None

    @property
    def _writer(self):
        """The event file is created at the first record or image, so a run that never starts leaves none."""
        if self._opened is None:
            self._opened = self._open()
        return self._opened

    def log(self, record: dict) -> None:
        """Add the scalars of one metrics record (a "step" or "epoch" line of metrics.jsonl)."""
        step = int(record["step"])
        for tag, value in scalar_tags(record).items():
            self._writer.add_scalar(tag, value, step)

    def samples(self, epoch: int | None, step: int, images: torch.Tensor | np.ndarray, nrow: int | None = None) -> None:
        """Add a sample grid: images (N, C, H, W) in [0, 1], nrow per row, as the image 'samples' at `step`."""
        grid = image_grid(images, nrow or math.ceil(math.sqrt(len(images))))   # (H', W', C) uint8
        self._writer.add_image("samples", grid, step, dataformats="HWC")
        if epoch is not None:
            self._writer.add_scalar("progress/epoch", float(epoch), step)

    def flush(self) -> None:
        if self._opened is not None:
            self._opened.flush()

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()
            self._opened = None

    def __enter__(self) -> "TensorBoardReporter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
