"""The state of a training run, in one owner: the players (`algorithm`, algorithm1.py), the run's random stream,
the fixed noise of the sample grids, the moving average of G, and the position in the data (`progress`).

`state_dict()` / `load_state_dict()` follow the torch convention and are exactly a checkpoint's content
(run/checkpoint.py writes and reads the dict). Everything random (initialisation, fixed noise, minibatch order,
noise, dropout masks) comes from one torch.Generator seeded by train.seed, whose state is in every checkpoint: a
resumed run continues bit for bit.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from ..data.transforms import for_display
from ..errors import CheckpointError, DivergedError, RunError
from ..models import build_models, class_rows, label_kwargs
from ..run.checkpoint import checkpoint_config
from ..schedules import momentum, top_k_fraction
from .algorithm1 import Algorithm1
from .averaging import GeneratorAverage
from .distributed import Dist
from .progress import Progress


class TrainingState:
    """Built from a config and the training data: G and D initialised from train.seed, their optimisers, the
    fixed noise, the average of G (train.generator_ema) and the progress at step 0."""

    def __init__(self, config, data, device: torch.device, dist: Dist, step: str | None = None):
        t = config.train
        self.config, self.data, self.device = config, data, device
        self.rng = torch.Generator(device=device).manual_seed(t.seed)
        g, d = build_models(config.model, data.image_shape, data.output_bias(config.model), self.rng,
                            data.num_classes)
        self.algorithm = Algorithm1(config, g.to(device), d.to(device), data, self.rng, dist, step)
        self.average = GeneratorAverage(self.generator, t.generator_ema) if t.generator_ema else None
        # the sample grid: grid_size x grid_size, or (conditional) one row of grid_size samples per class
        self.fixed_noise = self.algorithm.noise(t.grid_size * (data.num_classes or t.grid_size))
        self.progress = Progress(device)

    generator = property(lambda self: self.algorithm.generator)
    discriminator = property(lambda self: self.algorithm.discriminator)
    g_updates = property(lambda self: self.algorithm.g_updates)
    # the G that grids, coverage and checkpoint readers sample: the moving average of G when train.generator_ema
    sampler = property(lambda self: self.generator if self.average is None else self.average.module)

    def iterations_per_epoch(self) -> int:
        t = self.config.train
        return len(self.data) // (t.batch_size * t.k_discriminator_steps)

    def iteration(self, perm: torch.Tensor, stop: bool = False):
        """One iteration of Algorithm 1 at the current position of the epoch in order `perm`, with the momentum
        (and top-k fraction) of the current epoch; `stop`: this rank asks to stop. Returns its StepStats."""
        t, p = self.config.train, self.progress
        mu = momentum(p.epoch, t.momentum_start, t.momentum_end, t.momentum_ramp_epochs)
        stats = self.algorithm.iteration(perm, p.position, mu, stop, top_k_fraction(p.epoch, t.top_k, t.top_k_decay))
        if self.average is not None:
            self.average.update(self.generator)
        p.add(stats)
        return stats

    def train_steps(self, n: int) -> None:
        """n iterations as `Trainer.run` does them, epochs wrapping around, without its reports, checks and
        checkpoints: for benchmarks that time the step alone."""
        p, per_epoch = self.progress, self.iterations_per_epoch()
        for _ in range(n):
            if p.position >= per_epoch:
                p.next_epoch()
            self.iteration(p.order(self.rng, len(self.data)))

    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        """G(z) for the run's fixed noise (conditional: row c of class c), G in evaluation mode, ready to show."""
        g, labels = self.sampler, None
        if self.data.labels is not None:
            labels = class_rows(self.data.num_classes, self.config.train.grid_size, self.device)
        was_training = g.training
        g.eval()
        images = g(self.fixed_noise, **label_kwargs(labels))
        g.train(was_training)
        return for_display(images, self.config.data)

    def check_finite(self, checkpoint: Path | None = None) -> None:
        """Refuse to log or checkpoint a diverged state (a loss or a weight NaN or infinite): the last checkpoint,
        if any (at `checkpoint`), stays the last finite state. It is finite: a checkpoint is written only after
        this check, and one a run resumed from was checked when loaded (`load_state_dict`)."""
        nets = (self.generator, self.discriminator) + (() if self.average is None else (self.average.module,))
        if self.progress.finite() and all(bool(torch.isfinite(p).all()) for net in nets for p in net.parameters()):
            return
        kept = (f"{checkpoint} still holds the last finite state" if checkpoint is not None and checkpoint.exists()
                else "no checkpoint was written before it")
        raise DivergedError(
            f"training diverged in epoch {self.progress.epoch + 1} (a loss or a weight became NaN or infinite by "
            f"step {self.g_updates}); {kept}",
            f"start a new run (another --out) with a lower learning rate, e.g. --set train.lr={self.config.train.lr / 4:g}")

    def state_dict(self, rank_rng: list[torch.Tensor] | None = None) -> dict[str, Any]:
        """Everything a resumed run needs. `rank_rng`: the random state of every rank of a distributed run, in rank
        order (all equal: the ranks share one stream)."""
        rank_rng = rank_rng or [self.rng.get_state()]
        if any(not torch.equal(s, rank_rng[0]) for s in rank_rng):
            raise RuntimeError("the ranks' random streams drifted apart")     # a bug, never the user's doing
        return {"config": self.config.to_json(), "image_shape": list(self.data.image_shape),
                "num_classes": self.data.num_classes, **self.algorithm.state_dict(), **self.progress.state_dict(),
                "rng": self.rng.get_state(), "rng_device": self.device.type, "rank_rng": rank_rng,
                "world_size": len(rank_rng), "fixed_noise": self.fixed_noise,
                **({} if self.average is None else {"generator_average": self.average.state_dict()})}

    def load_state_dict(self, state: dict[str, Any], path: Path) -> None:
        """Continue from checkpoint `state` (read from `path`); the model must be the one the config builds (else a
        RunError or CheckpointError naming the difference)."""
        saved = checkpoint_config(state, path)
        bad = [key for key, value in state.items() if not _finite(value)]
        if bad:
            raise CheckpointError(f"checkpoint {path} holds a state that is not finite (NaN or infinite values in its "
                                  f"{', '.join(bad[:4])}): it diverged, and a run resumed from it cannot train",
                                  "resume from an earlier copy of the run, or start a new run (another --out) with a "
                                  f"lower learning rate, e.g. --set train.lr={self.config.train.lr / 4:g}")
        if saved.model != self.config.model or list(state["image_shape"]) != list(self.data.image_shape) or \
                state.get("num_classes", 0) != self.data.num_classes:
            raise RunError(f"checkpoint {path} was written for another model than {path.parent.parent / 'config.json'} "
                           "describes", "restore the run's original config.json, or start a new run")
        if tuple(state["fixed_noise"].shape) != tuple(self.fixed_noise.shape):
            raise CheckpointError(f"checkpoint {path} does not fit this run: its fixed_noise is wrong",
                                  "use the run's own checkpoint, or retrain")
        self.progress.load_state_dict(state, len(self.data), self.iterations_per_epoch(), path)
        self.algorithm.load_state_dict(state, path)
        if state.get("rng_device", "cpu") == self.device.type:
            try:
                self.rng.set_state(state["rng"].cpu())
            except RuntimeError as exc:
                raise CheckpointError(f"checkpoint {path} does not fit this run: its optimizer or random state "
                                      f"({str(exc).strip()[:80]}) is wrong",
                                      "use the run's own checkpoint, or retrain") from None
        else:   # a CPU generator's state means nothing to a CUDA one: a new stream, derived from the seed and the step
            warnings.warn(f"checkpoint {path} was written on {state['rng_device']}, this run computes on "
                          f"{self.device.type}: the random stream restarts from seed and step (the weights continue)", stacklevel=2)
            self.rng.manual_seed(self.config.train.seed * 1_000_003 + state["g_updates"])
        if self.average is not None and "generator_average" in state:
            self.average.load_state_dict(state["generator_average"])
        elif self.average is not None:       # turned on at resume: the average starts from the restored G
            self.average = GeneratorAverage(self.generator, self.average.decay)
        self.fixed_noise = state["fixed_noise"].to(self.device, self.fixed_noise.dtype)


def _finite(value) -> bool:
    """Whether every floating-point tensor in `value` (a tensor, or dicts and lists of them) is finite."""
    if isinstance(value, torch.Tensor):
        return not value.is_floating_point() or bool(torch.isfinite(value).all())
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    return True
