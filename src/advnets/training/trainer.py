"""The training loop: epochs of Algorithm 1 iterations, the paper's schedules, checkpoints, and reports.

One iteration: `Trainer.run` -> `TrainingState.iteration` (state.py: the epoch's momentum and top-k fraction) ->
`Algorithm1.iteration` (algorithm1.py: the learning rates of this update) -> the run's `Step` (step_fused.py,
step_autograd.py or step_alternating.py: draws, gradients, the optimisers' update).

The Trainer holds the run's state (`state`, state.py; `state_dict()` / `load_state_dict()` are its checkpoint),
the run directory and its lock, and the reporters. Data parallel under torchrun (distributed.py): pass
`dist=Dist.from_env(device)`; every rank trains its block of each global minibatch, only rank 0 writes files, and
all ranks stop at the same step. The Trainer never prints: it calls a `Reporter` (hooks.py); with a run directory
it also writes config.json, metrics.jsonl, sample grids and checkpoints (run/layout.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import Config, from_dict
from ..device import resolve_device
from ..errors import RunError
from ..models.build import check_model_memory
from ..run import layout
from ..run.checkpoint import RESUME_KEYS, load_checkpoint, save_checkpoint
from ..run.lock import RunLock
from ..schedules import learning_rate, momentum
from .batches import TrainingData
from .coverage_monitor import coverage_tracker
from .distributed import Dist
from .hooks import Reporter, Reporters, RunFiles
from .progress import STATS
from .signals import stop_on_signals
from .state import TrainingState
from .storage import load_training_data
from .streaming import worker_deaths
from .tensorboard import TensorBoardReporter


@dataclass
class TrainResult:
    run_dir: Path | None
    epoch: int                    # completed epochs
    step: int                     # generator updates so far
    interrupted: bool = False
    last_metrics: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Trains a run (`run()`; see the module docstring). `run_dir` None trains without writing any file.
    `train_images` / `train_labels` replace the dataset's training split (arrays (N, C, H, W) and (N,), held in
    memory); else `data.storage` says where it lives. `step` asks for a step by name ("fused", "autograd", "alternating"; default: the one the config implies)."""

    def __init__(self, config: Config | None, run_dir: str | Path | None, *, resume: bool = False,
                 train_images: np.ndarray | torch.Tensor | None = None,
                 train_labels: np.ndarray | torch.Tensor | None = None, reporter: Reporter | None = None,
                 dist: Dist | None = None, step: str | None = None):
        config = checked_config(config, run_dir)
        self.run_dir, self.dist = None if run_dir is None else Path(run_dir), dist or Dist()
        self.checkpoint = None if run_dir is None else self.run_dir / layout.CHECKPOINT
        self.writes = self.run_dir is not None and self.dist.writes        # only rank 0 writes
        # one writer per run directory (run/lock.py), from here to the end of run(); taken before anything is read
        self.lock = RunLock.acquire(self.run_dir, create=not resume) if self.writes else None
        self.data = None
        self.notes: list[str] = []          # what the start repaired (a config.json recovered from the checkpoint)
        try:
            reads = self.writes or (resume and self.run_dir is not None)
            self.config = layout.resolve_config(self.run_dir, config, resume, self.notes) if reads else config
            t = self.config.train
            self.dist.local_batch(t.batch_size)                       # refuses a batch that does not split
            self.device = self.dist.device(resolve_device(t.device))
            self.data, train_labels = training_data(self.config, train_images, train_labels, self.device)
            self.state = TrainingState(self.config, self.data, self.device, self.dist, step)
            self.coverage = coverage_tracker(self.state, train_labels, reporter, self.dist, train_images is not None)
            self.stop_reason: str | None = None
            self.pending_stop: str | None = None  # asked on this rank; stops once the ranks agree (iteration)
            # files are written only now that the data loaded and the networks were built; other ranks only read
            self.from_scratch = self._open_run_dir() if reads else True
            self.reporter = Reporters(*(file_reporters(self.run_dir, self.config, self.g_updates)
                                        if self.writes else ()), reporter)
        except BaseException:
            self.close(abandon=True)
            raise

    def close(self, abandon: bool = False) -> None:
        """Release the run directory (also at the end of `run()`); `abandon`: a start that failed removes the
        directory it created."""
        if self.data is not None:
            self.data.close()                      # the memmap store's DataLoader workers
        if self.lock is not None:
            self.lock.release(abandon)

    __enter__ = lambda self: self                                           # noqa: E731
    __exit__ = lambda self, *exc: self.close()                              # noqa: E731

    generator = property(lambda self: self.state.generator)
    discriminator = property(lambda self: self.state.discriminator)
    sampler = property(lambda self: self.state.sampler)
    algorithm = property(lambda self: self.state.algorithm)
    g_updates = property(lambda self: self.state.g_updates)
    epoch = property(lambda self: self.state.progress.epoch)
    state_dict = property(lambda self: self.state.state_dict)
    load_state_dict = property(lambda self: self.state.load_state_dict)
    iterations_per_epoch = property(lambda self: self.state.iterations_per_epoch)

    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop after the current iteration, with a checkpoint (Ctrl-C, SIGTERM, or a caller's choice); in a
        distributed run, after the next iteration, whose all-reduce tells every rank to stop."""
        if self.dist.active:
            self.pending_stop = self.pending_stop or reason
        else:
            self.stop_reason = reason

    def reached_max_steps(self) -> bool:
        return self.config.train.max_steps is not None and self.g_updates >= self.config.train.max_steps

    def run(self) -> TrainResult:
        t, per_epoch, p, last = self.config.train, self.iterations_per_epoch(), self.state.progress, {}
        if self.lock is not None and not self.lock.held:
            self.lock = RunLock.acquire(self.run_dir, create=False)
        self.reporter.start(self)
        with worker_deaths(self.data):              # also while the finally clause stops the workers
            try:
                with stop_on_signals(self.request_stop):
                    while p.epoch < t.epochs and not self.reached_max_steps():
                        perm, started, first = p.order(self.state.rng, len(self.data)), time.perf_counter(), p.position
                        while p.position < per_epoch and not self.reached_max_steps() and self.stop_reason is None:
                            self.iteration(perm)
                        self.state.check_finite(self.checkpoint)
                        last = self._end_epoch(p.position - first, time.perf_counter() - started,
                                               p.position < per_epoch)
                        if last.get("partial"):
                            break
            finally:
                self.reporter.close()
                self.close()
        return TrainResult(self.run_dir, p.epoch, self.g_updates, self.stop_reason is not None, last)

    def iteration(self, perm: torch.Tensor):
        """One iteration (state.py), then its reports, samples and checkpoint when their intervals say so."""
        t, position = self.config.train, self.state.progress.position + 1
        stats = self.state.iteration(perm, self.pending_stop is not None)
        if self.dist.active and self.algorithm.peer_stop and self.stop_reason is None:
            self.stop_reason = self.pending_stop or "another rank stopped"
        self.reporter.step(self, stats)
        step = self.g_updates
        if t.log_every_steps and step % t.log_every_steps == 0:
            self.reporter.log({"kind": "step", "step": step, "epoch": self.epoch,
                               **{s: round(getattr(stats, s).item(), 6) for s in STATS}})
        if t.sample_every_steps and step % t.sample_every_steps == 0 and position < self.iterations_per_epoch():
            self.reporter.samples(None, step, self.state.sample_grid(), t.grid_size)
        if t.checkpoint_every_steps and step % t.checkpoint_every_steps == 0:
            self.save()
        return stats

    def _end_epoch(self, iterations: int, seconds: float, partial: bool) -> dict[str, Any]:
        """The end of an epoch (its metrics line, the sample grid and a checkpoint when their intervals say so), or
        of its first part when training stopped within it (max_steps or a signal): the line marked partial, with
        the completed fraction as its epoch, the grid, and a checkpoint."""
        t, p, step = self.config.train, self.state.progress, self.g_updates
        epoch = round(p.epoch + p.position / self.iterations_per_epoch(), 4) if partial else p.epoch + 1
        final = partial or epoch >= t.epochs or self.reached_max_steps()
        record = {**epoch_line(t, epoch, step, p.means(), iterations, seconds),
                  **(self.coverage.figures(self.sampler, epoch, final) if self.coverage else {}),
                  **({"partial": True} if partial else {})}
        if not partial:
            p.next_epoch()
        if (partial and iterations) or (not partial and (p.epoch % t.sample_every_epochs == 0 or final)):
            self.reporter.samples(None if partial else p.epoch, step, self.state.sample_grid(), t.grid_size)
        if not partial or iterations:
            self.reporter.log(record)
        if partial or p.epoch % t.checkpoint_every_epochs == 0 or final:
            self.save()
        return record

    def save(self) -> Path | None:
        """Checkpoint the whole training state to RUN/checkpoints/last.pt (nothing without a run directory); in a
        distributed run every rank calls it (its random state is gathered) and rank 0 writes."""
        states = self.dist.gather(self.state.rng.get_state())              # None on ranks > 0
        if not states or self.run_dir is None:
            return None
        self.state.check_finite(self.checkpoint)
        return save_checkpoint(self.checkpoint, self.state.state_dict(states))

    def _open_run_dir(self) -> bool:
        """Under the run's lock: remove temporaries a killed process left, restore the checkpoint if there is one,
        drop the metric lines after it, write config.json. True when the run starts from step 0 (a new run, or one
        that stopped before its first checkpoint: see run/layout.py resolve_config). Other ranks only restore."""
        if self.writes:                     # no links or FIFOs among the run's files; no temporaries of a killed run
            layout.check_run_files(self.run_dir), layout.remove_stale_temporaries(self.run_dir)
        from_scratch = not self.checkpoint.exists()
        if not from_scratch:
            self.state.load_state_dict(load_checkpoint(self.checkpoint, self.device, RESUME_KEYS), self.checkpoint)
        if self.writes:
            layout.truncate_metrics(self.run_dir, self.g_updates)
            layout.write_config(self.run_dir, self.config)
        return from_scratch


def checked_config(config: Config | None, run_dir: str | Path | None) -> Config | None:
    """`config` as `from_dict` reads a config file (types and ranges checked: a Config built in Python may hold
    anything), after refusing an empty `run_dir` (Path("") is the working directory)."""
    if isinstance(run_dir, str) and not run_dir.strip():
        raise RunError("the run directory is an empty path", "name a directory, or pass None to write no files")
    return None if config is None else from_dict(config.to_dict())


def training_data(config: Config, images, labels, device: torch.device):
    """(the training data, its labels): `images` / `labels` given in Python, else the dataset's training split from
    the store data.storage names (storage.py); then G and D are checked to fit in `device`'s memory."""
    if images is None:
        data, labels = load_training_data(config, device)
    else:
        data = TrainingData.prepare(config, images, labels, device)
    check_model_memory(config.model, data.image_shape, data.num_classes, device)
    return data, labels


def epoch_line(t, epoch: float, step: int, means: dict, iterations: int, seconds: float) -> dict[str, Any]:
    """An epoch's metrics line (`t`: the TrainConfig): the statistics' means, the learning rate of the last update,
    the momentum of the epoch, steps per second."""
    return {"kind": "epoch", "epoch": epoch, "step": step, **means,
            "lr": learning_rate(step - 1, t.lr, t.lr_decay, t.lr_min, t.lr_decay_after),
            "momentum": momentum(int(epoch + 0.999999) - 1, t.momentum_start, t.momentum_end, t.momentum_ramp_epochs),
            "steps_per_s": round(iterations / seconds, 2) if seconds > 0 else None, "seconds": round(seconds, 3)}


def file_reporters(run_dir: Path, config: Config, step: int) -> list[Reporter]:
    """metrics.jsonl and sample PNGs, and TensorBoard events unless train.tensorboard is off. `step`: the step the
    run starts from; TensorBoard hides the events an earlier, interrupted process wrote after it (purge_step)."""
    if not config.train.tensorboard:
        return [RunFiles(run_dir)]
    return [RunFiles(run_dir), TensorBoardReporter(run_dir, purge_step=step)]


def train(config: Config | None, run_dir: str | Path | None, *, resume: bool = False, **kwargs) -> TrainResult:
    """Train (or with resume=True continue) the run in `run_dir`; see `Trainer` for the keyword arguments."""
    return Trainer(config, run_dir, resume=resume, **kwargs).run()
