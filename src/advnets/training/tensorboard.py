"""TensorBoard event files for a run: its metrics records as scalars and its sample grids as images.

The events are tensorboardX's (its summaries and record framing; TensorBoardReporter says why not its
`SummaryWriter`). PyTorch's own `torch.utils.tensorboard` imports the full `tensorboard` package (the viewer:
grpcio, absl-py, Markdown, Werkzeug, tensorboard-data-server, about 12 MB of wheels); tensorboardX needs only protobuf and numpy (well under 1 MB),
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

import contextlib
import math
import socket
import time
import warnings
from numbers import Real
from pathlib import Path

import numpy as np
import torch

from ..errors import AdvnetsError, OutputError
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


class TensorBoardWarning(UserWarning):
    """TensorBoard events could not be written (a full disk, say): logging to TensorBoard stops, training goes on."""


class TensorBoardReporter(Reporter):
    """Writes TensorBoard event files into `log_dir` (the run directory itself, so that `tensorboard --logdir
    runs` names each run by its directory). Only one process (rank 0) should make one.

    `purge_step`: when a run is resumed at this step, TensorBoard hides events at or after it that an earlier,
    interrupted process wrote, so the curves do not double back.

    The events are written in the calling thread, through tensorboardX's record framing and summaries but not its
    `SummaryWriter`, whose writer thread and exit handler print tracebacks when a write fails (and whose queue then
    blocks the loop once full). A write that fails here (a full disk, a file-size limit) is one TensorBoardWarning;
    TensorBoard logging then stops for the rest of the run, and the metrics, samples and checkpoints go on."""

    def __init__(self, log_dir: str | Path, purge_step: int | None = None, flush_secs: int = 30):
        try:    # here, not at the top: tensorboardX takes 0.24 s to import (2-core EPYC), which every advnets
            from tensorboardX import summary            # command would pay through the parser, and runs without
            from tensorboardX.proto.event_pb2 import Event, SessionLog     # TensorBoard need not
            from tensorboardX.record_writer import RecordWriter
        except ImportError:
            raise AdvnetsError("TensorBoard logging needs the Python package 'tensorboardX', which is not "
                               "installed", "pip install tensorboardX, or turn TensorBoard logging off") from None
        self.log_dir, self.purge_step, self.flush_secs = Path(log_dir), purge_step, flush_secs
        self._summary, self._event, self._session_log, self._record_writer = summary, Event, SessionLog, RecordWriter
        self._file, self._failed, self._next_flush = None, False, 0.0

    def _open(self):
        """The event file, created at the first record or image, so a run that never starts leaves none."""
        if self._file is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            path = self.log_dir / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
            while path.exists():                   # another writer this second: never truncate its file
                path = path.with_name(path.name + "_")
            self._file = self._record_writer(str(path))
            self._file.write(self._event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
            if self.purge_step is not None:       # what SummaryWriter(purge_step=...) writes first
                start = self._session_log(status=self._session_log.START)
                self._file.write(self._event(step=self.purge_step, wall_time=time.time(),
                                             session_log=start).SerializeToString())
            self._next_flush = time.monotonic() + self.flush_secs
        return self._file

    def _add(self, summary, step: int) -> None:
        """One event; the file is flushed (and synced) at most every `flush_secs`."""
        if self._failed:
            return
        try:
            writer = self._open()
            writer.write(self._event(summary=summary, step=int(step), wall_time=time.time()).SerializeToString())
            if time.monotonic() >= self._next_flush:
                writer.flush()
                self._next_flush = time.monotonic() + self.flush_secs
        except OSError as exc:
            self._give_up(exc)

    def _give_up(self, exc: OSError) -> None:
        self._failed = True
        cause = OutputError.from_os_error(exc, self.log_dir).message
        warnings.warn(f"TensorBoard logging is off for the rest of this run: {cause} (metrics.jsonl, samples and "
                      "checkpoints go on)", TensorBoardWarning, stacklevel=3)
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):      # the buffered tail cannot be written either
                file.close()

    def log(self, record: dict) -> None:
        """Add the scalars of one metrics record (a "step" or "epoch" line of metrics.jsonl)."""
        step = int(record["step"])
        for tag, value in scalar_tags(record).items():
            self._add(self._summary.scalar(tag, value), step)

    def samples(self, epoch: int | None, step: int, images: torch.Tensor | np.ndarray, nrow: int | None = None) -> None:
        """Add a sample grid: images (N, C, H, W) in [0, 1], nrow per row, as the image 'samples' at `step`."""
        grid = image_grid(images, nrow or math.ceil(math.sqrt(len(images))))   # (H', W', C) uint8
        self._add(self._summary.image("samples", grid, dataformats="HWC"), step)
        if epoch is not None:
            self._add(self._summary.scalar("progress/epoch", float(epoch)), step)

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as exc:
                self._give_up(exc)

    def close(self) -> None:
        if self._file is not None:
            self.flush()
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None

    def __enter__(self) -> "TensorBoardReporter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
