"""Algorithm 1: the training loop, its schedules, checkpoints, metrics and sample grids.

A run is a directory: config.json, metrics.jsonl, samples/epoch_XXXX.png, checkpoints/last.pt. Everything
random (initialisation, fixed noise, minibatch order, noise, dropout masks) comes from one torch.Generator
seeded by train.seed, whose state is in every checkpoint: a resumed run continues bit for bit.

A conditional run (model.conditional, paper section 7) also reads the training labels: D sees each data example
with its own label and each sample with the label G was asked for, drawn from the data's class frequencies.
"""
from __future__ import annotations

import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .checkpoint import load_checkpoint, load_state, save_checkpoint
from .config import Config, from_dict
from .data.transforms import for_display
from .errors import ConfigError, DataError, DivergedError, RunError
from .models import build_models, class_rows, label_kwargs, marginal_logits, sample_noise
from .optim import MomentumSGD, make_optimizer, set_hyperparameters
from .fileio import atomic_write_text
from .runs import CHECKPOINT, CONFIG, METRICS, read_config, resolve_device
from .schedules import learning_rate, momentum
from .steps import (StepStats, discriminator_grads, generator_grads, simultaneous_grads_autograd,
                    simultaneous_grads_fused, supports_fused)
from .viz import save_grid

# Settings that may change when a run is resumed: they do not change what the run computes.
RESUMABLE_CHANGES = {"train.epochs", "train.max_steps", "train.device", "train.sample_every_epochs",
                     "train.checkpoint_every_epochs", "train.log_every_steps", "data.data_dir", "data.download"}
_STATS = ("d_loss", "g_loss", "d_real", "d_fake")
RESUME_KEYS = ("config", "image_shape", "generator", "discriminator", "opt_g", "opt_d", "rng", "fixed_noise",
               "perm", "position", "epoch", "g_updates", "d_updates", "sums")


@dataclass
class TrainResult:
    run_dir: Path
    epoch: int                    # completed epochs
    step: int                     # generator updates so far
    interrupted: bool = False
    last_metrics: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Owns the networks, optimisers, random stream and position in the data; `run()` trains."""

    def __init__(self, config: Config | None, run_dir: str | Path, *, resume: bool = False,
                 train_images: np.ndarray | torch.Tensor | None = None,
                 train_labels: np.ndarray | torch.Tensor | None = None, progress: bool | None = None,
                 on_step: Callable[["Trainer", StepStats], None] | None = None):
        self.run_dir = Path(run_dir)
        self.config = self._resolve_config(config, resume)
        t = self.config.train
        self.device = resolve_device(t.device)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.on_step = on_step
        if train_images is None:
            split = self._load_train_split()
            train_images, train_labels = split.images, split.labels
        images = torch.as_tensor(np.asarray(train_images) if not isinstance(train_images, torch.Tensor)
                                 else train_images)
        if images.ndim == 3:
            images = images[:, None]
        self.image_shape = tuple(images.shape[1:])
        self.data = images.to(self.device, torch.float32).reshape(images.shape[0], -1).contiguous()  # (N, d)
        if self.data.shape[0] < t.batch_size * t.k_discriminator_steps:
            raise ConfigError(f"the training split has {self.data.shape[0]} examples, fewer than one iteration "
                              f"needs ({t.batch_size} x k={t.k_discriminator_steps})", "lower train.batch_size")
        self.labels = self._class_labels(train_labels)      # (N,) int64, or None for an unconditional run
        self.num_classes = 0 if self.labels is None else int(self.labels.max()) + 1
        self.rng = torch.Generator(device=self.device).manual_seed(t.seed)
        self.generator, self.discriminator = build_models(
            self.config.model, self.image_shape, self._output_bias(), self.rng, self.num_classes)
        self.generator.to(self.device)
        self.discriminator.to(self.device)
        # the sample grid: grid_size x grid_size, or (conditional) one row of grid_size samples per class
        self.fixed_noise = self.noise(t.grid_size * (self.num_classes or t.grid_size))
        self.opt_g = make_optimizer(t, self.generator.parameters())
        self.opt_d = make_optimizer(t, self.discriminator.parameters())
        self.fused = t.schedule == "simultaneous" and supports_fused(self.generator, self.discriminator)
        self._owner = {p: opt for opt, net in ((self.opt_g, self.generator), (self.opt_d, self.discriminator))
                       for p in net.parameters()}
        self.epoch = 0                 # completed epochs
        self.position = 0              # iterations done in the current epoch
        self.g_updates = 0
        self.d_updates = 0
        self.perm: torch.Tensor | None = None
        self.sums = torch.zeros(len(_STATS), dtype=torch.float64, device=self.device)
        self._stop = False
        if resume:
            self._restore(load_checkpoint(self.run_dir / CHECKPOINT, self.device, RESUME_KEYS))
        # Written only now that the data loaded and the networks were built: a failed start leaves nothing.
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / CONFIG, self.config.to_json() + "\n")

    # ----- setup
    def _resolve_config(self, config: Config | None, resume: bool) -> Config:
        """The run's config: the given one for a new run; for a resumed run the stored one, with only the
        settings in RESUMABLE_CHANGES taken from `config`. Writes nothing."""
        if not resume:
            if config is None:
                raise ConfigError("no config given for a new run")
            if (self.run_dir / CONFIG).exists() or (self.run_dir / CHECKPOINT).exists():
                raise RunError(f"{self.run_dir} already holds a run",
                               "pass --resume to continue it, or choose another output directory")
            return config
        stored = read_config(self.run_dir)
        if config is not None:
            old, new = _flatten(stored.to_dict()), _flatten(config.to_dict())
            changed = sorted(k for k in old if old[k] != new[k] and k not in RESUMABLE_CHANGES)
            if changed:
                shown = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in changed[:4])
                raise ConfigError(f"cannot resume {self.run_dir} with different settings ({shown})",
                                  "resume without them, or start a new run with another output directory")
            stored = from_dict({s: {k: (new if f"{s}.{k}" in RESUMABLE_CHANGES else old)[f"{s}.{k}"]
                                    for k in v} for s, v in stored.to_dict().items()})
        return stored

    def _output_bias(self) -> torch.Tensor | None:
        """G's output bias from the data's pixel marginals (DESIGN.md §1), when the config asks for it."""
        if self.config.model.generator_output_bias != "marginals":
            return None
        if self.data.min() < 0 or self.data.max() > 1:
            raise ConfigError("model.generator_output_bias=marginals needs data in [0, 1]",
                              "use --set model.generator_output_bias=zero")
        return marginal_logits(self.data)

    def _load_train_split(self):
        from .data import load_data_split

        return load_data_split(self.config.data, "train")

    def _class_labels(self, labels) -> torch.Tensor | None:
        """The training labels as a (N,) int64 tensor on the device, checked, for a conditional run."""
        if not self.config.model.conditional:
            return None
        dataset = self.config.data.dataset
        labels = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        if labels is None or (labels.numel() and int(labels.min()) < 0):
            raise DataError(f"model.conditional needs class labels, and the {dataset} training split has none",
                            "train without --conditional, or on labelled data (mnist, fashion-mnist, mnist-5k, "
                            "digits, cifar10, or an image folder with one subfolder per class)")
        labels = labels.to(self.device)
        if labels.shape != (self.data.shape[0],):
            raise DataError(f"{labels.shape[0]} labels for {self.data.shape[0]} training images")
        return labels

    # ----- random draws, all from self.rng
    def noise(self, n: int) -> torch.Tensor:
        m = self.config.model
        return sample_noise(n, m.noise_dim, m.noise_prior, self.rng, self.device)

    def _next_batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The index-th minibatch of this epoch: (m, d) images and, for a conditional run, their (m,) labels."""
        m = self.config.train.batch_size
        rows = self.perm[index * m:(index + 1) * m]
        labels = None if self.labels is None else torch.index_select(self.labels, 0, rows)
        return torch.index_select(self.data, 0, rows), labels

    def fake_labels(self, n: int) -> torch.Tensor | None:
        """Classes for n samples of a conditional G, drawn like the data's (the labels of random examples)."""
        if self.labels is None:
            return None
        rows = torch.randint(self.labels.shape[0], (n,), generator=self.rng, device=self.device)
        return torch.index_select(self.labels, 0, rows)

    def fixed_labels(self) -> torch.Tensor | None:
        """The sample grid's classes: row c holds grid_size samples of class c."""
        if self.labels is None:
            return None
        return class_rows(self.num_classes, self.config.train.grid_size, self.device)

    # ----- one iteration of Algorithm 1
    def iteration(self) -> StepStats:
        t = self.config.train
        m, k = t.batch_size, t.k_discriminator_steps
        mu = momentum(self.epoch, t.momentum_start, t.momentum_end, t.momentum_ramp_epochs)
        d_net, g_net = self.discriminator, self.generator
        if t.schedule == "simultaneous":
            (x, c), z, masks = self._next_batch(self.position), self.noise(m), d_net.draw_masks(2 * m, self.rng)
            c_fake = self.fake_labels(m)                                    # None, as c, when unconditional
            if self.fused and isinstance(self.opt_d, MomentumSGD) and isinstance(self.opt_g, MomentumSGD):
                # momentum SGD inside the gradient products: v <- mu v - lr g, then p <- p + v
                self._set_lr(self.opt_d, self.d_updates, mu)
                self._set_lr(self.opt_g, self.g_updates, mu)
                stats = simultaneous_grads_fused(g_net, d_net, x, z, masks, t.generator_loss, self._velocity,
                                                 real_labels=c, fake_labels=c_fake)
                self.opt_d.apply_velocity()
                self.opt_g.apply_velocity()
            else:
                grads = simultaneous_grads_fused if self.fused else simultaneous_grads_autograd
                stats = grads(g_net, d_net, x, z, masks, t.generator_loss, real_labels=c, fake_labels=c_fake)
                self._step(self.opt_d, self.d_updates, mu)
                self._step(self.opt_g, self.g_updates, mu)
            self.d_updates += 1
        else:
            for j in range(k):                                              # k steps of D
                (x, c), z = self._next_batch(self.position * k + j), self.noise(m)
                masks = d_net.draw_masks(2 * m, self.rng)
                stats = discriminator_grads(g_net, d_net, x, z, masks, c, self.fake_labels(m))
                self._step(self.opt_d, self.d_updates, mu)
                self.d_updates += 1
            z, masks = self.noise(m), d_net.draw_masks(m, self.rng)         # one step of G, fresh noise
            g_stats = generator_grads(g_net, d_net, z, masks, t.generator_loss, self.fake_labels(m))
            self._step(self.opt_g, self.g_updates, mu)
            stats.g_loss = g_stats.g_loss
        self.g_updates += 1
        self.position += 1
        self.sums += torch.stack([getattr(stats, s).double() for s in _STATS])
        if self.on_step is not None:
            self.on_step(self, stats)
        return stats

    def _set_lr(self, optimizer: torch.optim.Optimizer, updates: int, mu: float) -> None:
        t = self.config.train
        set_hyperparameters(optimizer, learning_rate(updates, t.lr, t.lr_decay, t.lr_min), mu)

    def _step(self, optimizer: torch.optim.Optimizer, updates: int, mu: float) -> None:
        self._set_lr(optimizer, updates, mu)
        optimizer.step()

    def _velocity(self, p: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        return self._owner[p].velocity_target(p)

    # ----- the loop
    def iterations_per_epoch(self) -> int:
        t = self.config.train
        return self.data.shape[0] // (t.batch_size * t.k_discriminator_steps)

    def run(self) -> TrainResult:
        t = self.config.train
        per_epoch = self.iterations_per_epoch()
        last: dict[str, Any] = {}
        with _stop_on_sigint(self):
            while self.epoch < t.epochs and not self._reached_max_steps():
                if self.perm is None:
                    self.perm = torch.randperm(self.data.shape[0], generator=self.rng, device=self.device)
                started, first = time.perf_counter(), self.position
                bar = self._progress_bar(per_epoch)
                while self.position < per_epoch and not self._reached_max_steps() and not self._stop:
                    stats = self.iteration()
                    if bar is not None and (self.position % 10 == 0 or self.position == per_epoch):
                        bar.set_postfix_str(_postfix(self.g_updates, stats, (self.position - first) /
                                                     (time.perf_counter() - started)), refresh=False)
                        bar.update(self.position - bar.n)
                    if t.log_every_steps and self.g_updates % t.log_every_steps == 0:
                        self._log({"kind": "step", "step": self.g_updates, "epoch": self.epoch,
                                   **{s: round(getattr(stats, s).item(), 6) for s in _STATS}})
                if bar is not None:
                    bar.close()
                self._check_finite()
                seconds = time.perf_counter() - started
                if self.position < per_epoch:                    # stopped mid-epoch: max_steps or Ctrl-C
                    self.save()
                    break
                last = self._end_epoch(self.position - first, seconds)
        return TrainResult(self.run_dir, self.epoch, self.g_updates, self._stop, last)

    def _check_finite(self) -> None:
        """Refuse to log or checkpoint a diverged epoch: the last checkpoint stays the last finite state."""
        if not bool(torch.isfinite(self.sums).all()):
            t = self.config.train
            raise DivergedError(
                f"training diverged in epoch {self.epoch + 1} (a loss became NaN or infinite before step "
                f"{self.g_updates}); {self.run_dir / CHECKPOINT} still holds the last finite state",
                f"start a new run with a lower learning rate, e.g. --set train.lr={t.lr / 4:g}")

    def _reached_max_steps(self) -> bool:
        return self.config.train.max_steps is not None and self.g_updates >= self.config.train.max_steps

    def _end_epoch(self, iterations: int, seconds: float) -> dict[str, Any]:
        t = self.config.train
        means = (self.sums / max(self.position, 1)).tolist()
        self.epoch += 1
        self.perm, self.position = None, 0
        self.sums.zero_()
        record = {"kind": "epoch", "epoch": self.epoch, "step": self.g_updates,
                  **{s: round(v, 6) for s, v in zip(_STATS, means)},
                  "lr": learning_rate(self.g_updates - 1, t.lr, t.lr_decay, t.lr_min),
                  "momentum": momentum(self.epoch - 1, t.momentum_start, t.momentum_end, t.momentum_ramp_epochs),
                  "steps_per_s": round(iterations / seconds, 2) if seconds > 0 else None,
                  "seconds": round(seconds, 3)}
        final = self.epoch == t.epochs or self._reached_max_steps()
        if self.epoch % t.sample_every_epochs == 0 or final:
            self.write_samples(self.run_dir / "samples" / f"epoch_{self.epoch:04d}.png")
        self._log(record)
        if self.epoch % t.checkpoint_every_epochs == 0 or final:
            self.save()
        print(f"epoch {self.epoch}/{t.epochs}  step {self.g_updates}  D loss {record['d_loss']:.4f}  "
              f"G loss {record['g_loss']:.4f}  D(x) {record['d_real']:.3f}  D(G(z)) {record['d_fake']:.3f}  "
              f"{record['steps_per_s']} steps/s", flush=True)
        return record

    def _progress_bar(self, total: int):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=self.position, desc=f"epoch {self.epoch + 1}/{self.config.train.epochs}",
                    leave=False, dynamic_ncols=True, file=sys.stderr)

    @torch.no_grad()
    def write_samples(self, path: Path) -> Path:
        """A grid of G(z) for the run's fixed noise, with G in evaluation mode."""
        was_training = self.generator.training
        self.generator.eval()
        labels = self.fixed_labels()
        images = self.generator(self.fixed_noise, **label_kwargs(labels))
        self.generator.train(was_training)
        return save_grid(for_display(images, self.config.data), path, nrow=self.config.train.grid_size)

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / METRICS, "a") as f:
            f.write(json.dumps(record) + "\n")

    # ----- checkpoints
    def save(self) -> Path:
        return save_checkpoint(self.run_dir / CHECKPOINT, {
            "config": self.config.to_json(), "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "rng": self.rng.get_state(), "fixed_noise": self.fixed_noise,
            "perm": self.perm, "position": self.position, "epoch": self.epoch,
            "g_updates": self.g_updates, "d_updates": self.d_updates, "sums": self.sums})

    def _restore(self, payload: dict[str, Any]) -> None:
        path = self.run_dir / CHECKPOINT
        saved = from_dict(json.loads(payload["config"]))
        if saved.model != self.config.model or list(payload["image_shape"]) != list(self.image_shape) or \
                payload.get("num_classes", 0) != self.num_classes:
            raise RunError(f"checkpoint {path} was written for another model than {self.run_dir / CONFIG} describes",
                           "restore the run's original config.json, or start a new run")
        load_state(self.generator, payload["generator"], "generator", path)
        load_state(self.discriminator, payload["discriminator"], "discriminator", path)
        self.opt_g.load_state_dict(payload["opt_g"])
        self.opt_d.load_state_dict(payload["opt_d"])
        self.rng.set_state(payload["rng"].cpu())
        self.fixed_noise = payload["fixed_noise"].to(self.device)
        self.perm = None if payload["perm"] is None else payload["perm"].to(self.device)
        self.position, self.epoch = payload["position"], payload["epoch"]
        self.g_updates, self.d_updates = payload["g_updates"], payload["d_updates"]
        self.sums = payload["sums"].to(self.device)
        _truncate_metrics(self.run_dir / METRICS, self.g_updates)


def train(config: Config | None, run_dir: str | Path, *, resume: bool = False, **kwargs) -> TrainResult:
    """Train (or with resume=True continue) the run in `run_dir`; see `Trainer` for the keyword arguments."""
    return Trainer(config, run_dir, resume=resume, **kwargs).run()


def _postfix(step: int, stats: StepStats, rate: float) -> str:
    return (f"step {step} D {stats.d_loss.item():.3f} G {stats.g_loss.item():.3f} D(x) {stats.d_real.item():.2f} "
            f"D(G(z)) {stats.d_fake.item():.2f} {rate:.1f} steps/s")


def _flatten(nested: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{s}.{k}": v for s, values in nested.items() for k, v in values.items()}


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines written after the checkpoint a run resumes from."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    keep = [line for line in lines if json.loads(line).get("step", 0) <= step]
    if len(keep) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in keep))


class _stop_on_sigint:
    """While training, the first Ctrl-C asks the loop to stop after the current iteration and checkpoint."""

    def __init__(self, trainer: Trainer):
        self.trainer, self.previous = trainer, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                self.trainer._stop = True
                signal.signal(signal.SIGINT, self.previous)       # a second Ctrl-C stops at once
            self.previous = signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


