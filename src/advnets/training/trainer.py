"""The training loop: epochs of Algorithm 1 iterations, the paper's schedules, checkpoints, and reports.

Data parallel under torchrun (distributed.py): pass `dist=Dist.from_env(device)`; every rank trains its block of each
global minibatch, only rank 0 writes files, and all ranks stop at the same step.
Everything random (initialisation, fixed noise, minibatch order, noise, dropout masks) comes from one
torch.Generator seeded by train.seed, whose state is in every checkpoint: a resumed run continues bit for bit.
The Trainer never prints: it calls a `Reporter` (reporting.py); with a run directory it also writes config.json,
metrics.jsonl, sample grids and checkpoints (run_dir.py, checkpoint.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import Config
from ..data.transforms import for_display
from ..device import resolve_device
from ..models import build_models, class_rows, label_kwargs
from ..run import layout
from ..run.lock import RunLock
from ..schedules import learning_rate, momentum, top_k_fraction
from .algorithm1 import Algorithm1
from .averaging import GeneratorAverage
from .batches import TrainingData
from .checkpoint import check_finite_state, save_training_state
from .coverage import coverage_figures, coverage_tracker
from .distributed import Dist
from .reporting import Reporter, Reporters, RunFiles
from .run_dir import prepare_run_dir
from .signals import stop_on_signals
from .storage import load_training_data

STATS = ("d_loss", "g_loss", "d_real", "d_fake")


@dataclass
class TrainResult:
    run_dir: Path | None
    epoch: int                    # completed epochs
    step: int                     # generator updates so far
    interrupted: bool = False
    last_metrics: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Owns the players (`algorithm`), the random stream and the position in the data; `run()` trains.

    `run_dir` None trains without writing any file. `train_images` / `train_labels` replace the dataset's
    training split (arrays (N, C, H, W) and (N,), held in memory); else `data.storage` says where it lives."""

    def __init__(self, config: Config | None, run_dir: str | Path | None, *, resume: bool = False,
                 train_images: np.ndarray | torch.Tensor | None = None,
                 train_labels: np.ndarray | torch.Tensor | None = None, reporter: Reporter | None = None,
                 dist: Dist | None = None):
        self.run_dir, self.dist = None if run_dir is None else Path(run_dir), dist or Dist()
        self.writes = self.run_dir is not None and self.dist.writes        # only rank 0 writes
        # one writer per run directory (lock.py), from here to the end of run(); taken before anything is read
        self.lock = RunLock.acquire(self.run_dir, create=not resume) if self.writes else None
        try:
            self._build(config, resume, train_images, train_labels, reporter)
        except BaseException:
            self.close(abandon=True)
            raise

    def _build(self, config, resume, train_images, train_labels, reporter) -> None:
        reads = self.writes or (resume and self.run_dir is not None)
        self.config = layout.resolve_config(self.run_dir, config, resume) if reads else config
        t = self.config.train
        self.dist.local_batch(t.batch_size)                           # refuses a batch that does not split
        self.device = self.dist.device(resolve_device(t.device))
        if train_images is None:       # memory or memmap (data.storage; storage.py)
            self.data, train_labels = load_training_data(self.config, self.device)
        else:
            self.data = TrainingData.prepare(self.config, train_images, train_labels, self.device)
        self.rng = torch.Generator(device=self.device).manual_seed(t.seed)
        g, d = build_models(self.config.model, self.data.image_shape, self.data.output_bias(self.config.model),
                            self.rng, self.data.num_classes)
        self.algorithm = Algorithm1(self.config, g.to(self.device), d.to(self.device), self.data, self.rng,
                                    self.dist)
        self.average = GeneratorAverage(self.generator, t.generator_ema) if t.generator_ema else None
        self.coverage = coverage_tracker(self.config, train_labels, self.data.num_classes, self.device)
        # the sample grid: grid_size x grid_size, or (conditional) one row of grid_size samples per class
        self.fixed_noise = self.algorithm.noise(t.grid_size * (self.data.num_classes or t.grid_size))
        self.epoch, self.position = 0, 0          # completed epochs; iterations done in the current one
        self.perm: torch.Tensor | None = None
        self.sums = torch.zeros(len(STATS), dtype=torch.float64, device=self.device)
        self.stop_reason: str | None = None
        self.pending_stop: str | None = None      # asked on this rank; stops once the ranks agree (iteration)
        # files are written only now that the data loaded and the networks were built; other ranks only read
        self.from_scratch = prepare_run_dir(self, write=self.writes) if reads else True
        self.reporter = Reporters(*_file_reporters(self), reporter)

    def close(self, abandon: bool = False) -> None:
        """Release the run directory (also at the end of `run()`); `abandon`: a start that failed removes the
        directory it created."""
        if getattr(self, "data", None) is not None:
            self.data.close()                      # the memmap store's DataLoader workers
        if self.lock is not None:
            self.lock.release(abandon)

    __enter__ = lambda self: self                                           # noqa: E731
    __exit__ = lambda self, *exc: self.close()                              # noqa: E731

    generator = property(lambda self: self.algorithm.generator)
    discriminator = property(lambda self: self.algorithm.discriminator)
    g_updates = property(lambda self: self.algorithm.g_updates)
    fused = property(lambda self: self.algorithm.fused)
    shared = property(lambda self: self.algorithm.shared)
    # the G that grids, coverage and checkpoint readers sample: the moving average of G when train.generator_ema
    sampler = property(lambda self: self.generator if self.average is None else self.average.module)

    def iterations_per_epoch(self) -> int:
        t = self.config.train
        return len(self.data) // (t.batch_size * t.k_discriminator_steps)

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
        t, per_epoch, last = self.config.train, self.iterations_per_epoch(), {}
        if self.lock is not None and not self.lock.held:
            self.lock = RunLock.acquire(self.run_dir, create=False)
        self.reporter.start(self)
        try:
            with stop_on_signals(self.request_stop):
                while self.epoch < t.epochs and not self.reached_max_steps():
                    if self.perm is None:
                        self.perm = torch.randperm(len(self.data), generator=self.rng, device=self.device)
                    started, first = time.perf_counter(), self.position
                    while self.position < per_epoch and not self.reached_max_steps() and self.stop_reason is None:
                        self.iteration()
                    check_finite_state(self)
                    seconds = time.perf_counter() - started
                    if self.position < per_epoch:                # stopped mid-epoch: max_steps or a signal
                        last = partial_epoch(self, self.position - first, seconds)
                        break
                    last = end_epoch(self, self.position - first, seconds)
        finally:
            self.reporter.close()
            self.close()
        return TrainResult(self.run_dir, self.epoch, self.g_updates, self.stop_reason is not None, last)

    def iteration(self):
        """One iteration of Algorithm 1, with the momentum (and top-k fraction) of the current epoch; returns its
        StepStats."""
        t = self.config.train
        mu = momentum(self.epoch, t.momentum_start, t.momentum_end, t.momentum_ramp_epochs)
        stats = self.algorithm.iteration(self.perm, self.position, mu, self.pending_stop is not None,
                                         top_k_fraction(self.epoch, t.top_k, t.top_k_decay))
        if self.average is not None:
            self.average.update(self.generator)
        if self.dist.active and self.algorithm.peer_stop and self.stop_reason is None:
            self.stop_reason = self.pending_stop or "another rank stopped"
        self.position += 1
        self.sums += torch.stack([getattr(stats, s).double() for s in STATS])
        self.reporter.step(self, stats)
        step = self.g_updates
        if t.log_every_steps and step % t.log_every_steps == 0:
            self.reporter.log({"kind": "step", "step": step, "epoch": self.epoch,
                               **{s: round(getattr(stats, s).item(), 6) for s in STATS}})
        if t.sample_every_steps and step % t.sample_every_steps == 0 and self.position < self.iterations_per_epoch():
            self.reporter.samples(None, step, sample_grid(self), t.grid_size)
        if t.checkpoint_every_steps and step % t.checkpoint_every_steps == 0:
            self.save()
        return stats

    def save(self) -> Path | None:
        """Checkpoint the whole training state to RUN/checkpoints/last.pt (nothing without a run directory); in a
        distributed run every rank calls it (its random state is gathered) and rank 0 writes."""
        states = self.dist.gather(self.rng.get_state())              # None on ranks > 0
        return save_training_state(self, self.run_dir / layout.CHECKPOINT, states) if states and self.run_dir else None


def partial_epoch(trainer, iterations: int, seconds: float) -> dict[str, Any]:
    """Stopped within an epoch (max_steps or a signal): its metrics so far (epoch = completed fraction, marked
    partial), the sample grid, and a checkpoint."""
    record = {**epoch_record(trainer, iterations, seconds,
                           round(trainer.epoch + trainer.position / trainer.iterations_per_epoch(), 4)), "partial": True}
    if iterations:
        trainer.reporter.samples(None, trainer.g_updates, sample_grid(trainer), trainer.config.train.grid_size)
        trainer.reporter.log(record)
    trainer.save()
    return record


def end_epoch(trainer, iterations: int, seconds: float) -> dict[str, Any]:
    """The end of an epoch: its metrics line, the sample grid and a checkpoint when their intervals say so."""
    t = trainer.config.train
    record = epoch_record(trainer, iterations, seconds, trainer.epoch + 1)
    trainer.epoch += 1
    trainer.perm, trainer.position = None, 0
    trainer.sums.zero_()
    final = trainer.epoch == t.epochs or trainer.reached_max_steps()
    if trainer.epoch % t.sample_every_epochs == 0 or final:
        trainer.reporter.samples(trainer.epoch, trainer.g_updates, sample_grid(trainer), trainer.config.train.grid_size)
    trainer.reporter.log(record)
    if trainer.epoch % t.checkpoint_every_epochs == 0 or final:
        trainer.save()
    return record


def _file_reporters(trainer) -> list[Reporter]:
    """metrics.jsonl and sample PNGs, and TensorBoard events unless train.tensorboard is off."""
    if not trainer.writes:
        return []
    if not trainer.config.train.tensorboard:
        return [RunFiles(trainer.run_dir)]
    from .tensorboard import TensorBoardReporter

    # purge_step: events an earlier, interrupted process wrote after this run's restart point are hidden
    return [RunFiles(trainer.run_dir), TensorBoardReporter(trainer.run_dir, purge_step=trainer.g_updates)]


def epoch_record(trainer, iterations: int, seconds: float, epoch: float) -> dict[str, Any]:
    """The metrics line of an epoch (or of its first part): means since it began, lr, momentum, speed, and the
    mode coverage when train.coverage_every_epochs asks for it (coverage.py)."""
    t = trainer.config.train
    means = (trainer.sums / max(trainer.position, 1)).tolist()
    final = not float(epoch).is_integer() or epoch >= t.epochs or trainer.reached_max_steps()
    return {"kind": "epoch", "epoch": epoch, "step": trainer.g_updates, **{s: round(v, 6) for s, v in zip(STATS, means)},
            "lr": learning_rate(trainer.g_updates - 1, t.lr, t.lr_decay, t.lr_min, t.lr_decay_after),
            "momentum": momentum(int(epoch + 0.999999) - 1, t.momentum_start, t.momentum_end, t.momentum_ramp_epochs),
            "steps_per_s": round(iterations / seconds, 2) if seconds > 0 else None, "seconds": round(seconds, 3),
            **coverage_figures(trainer, epoch, final)}


@torch.no_grad()
def sample_grid(trainer) -> torch.Tensor:
    """G(z) for the run's fixed noise (conditional: row c of class c), G in evaluation mode, ready to show."""
    g, labels = trainer.sampler, None
    if trainer.data.labels is not None:
        labels = class_rows(trainer.data.num_classes, trainer.config.train.grid_size, trainer.device)
    was_training = g.training
    g.eval()
    images = g(trainer.fixed_noise, **label_kwargs(labels))
    g.train(was_training)
    return for_display(images, trainer.config.data)


def train(config: Config | None, run_dir: str | Path | None, *, resume: bool = False, **kwargs) -> TrainResult:
    """Train (or with resume=True continue) the run in `run_dir`; see `Trainer` for the keyword arguments."""
    return Trainer(config, run_dir, resume=resume, **kwargs).run()
