"""A trained run, loaded from its directory for sampling, evaluation, figures and export."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Config
from ..data import load_data_split
from ..device import resolve_device
from ..errors import CheckpointError, ConfigError, RunError
from ..fileio import file_kind
from ..limits import check_count, check_memory
from ..models import build_models, label_kwargs, sample_noise
from .checkpoint import checkpoint_config, load_checkpoint, load_state
from .layout import CHECKPOINT, CONFIG, read_config


@dataclass
class LoadedRun:
    """A trained run: its config, its networks (in evaluation mode) and where training stopped."""
    run_dir: Path
    config: Config
    generator: torch.nn.Module
    discriminator: torch.nn.Module
    image_shape: tuple[int, ...]
    epoch: int
    step: int
    device: torch.device
    num_classes: int = 0          # > 0: a conditional run, G(z, c) for classes 0 .. num_classes - 1
    averaged: bool = False        # `generator` is the moving average of G (train.generator_ema), not G itself

    def load_split(self, split: str, data_dir: str | None = None, fold: int | None = None):
        """The `split` ("train" | "valid" | "test") of the run's dataset as a `Split` (images, labels);
        `data_dir` and `fold` replace the run's own when given."""
        d = self.config.data
        return load_data_split(dataclasses.replace(d, data_dir=data_dir or d.data_dir,
                                                   fold=d.fold if fold is None else fold), split,
                               run_seed=self.config.train.seed)

    def check_class(self, label: int | None) -> None:
        """A class asked of this run must exist, and only a conditional run takes one."""
        if label is None:
            return
        if not self.num_classes:
            raise RunError(f"{self.run_dir} is not a conditional run, so it takes no class",
                           "drop --class, or train with --conditional")
        if not 0 <= label < self.num_classes:
            raise RunError(f"class {label} is not one of this run's classes 0..{self.num_classes - 1}")

    def sample(self, n: int, seed: int = 0, batch_size: int = 1000,
               labels: int | torch.Tensor | None = None) -> torch.Tensor:
        """n samples G(z), z ~ p_z drawn from a generator seeded with `seed`; shape (n, C, H, W), on CPU.

        A conditional run samples G(z, c): c is `labels` (one class for all, or (n,) classes), else each c is
        drawn uniformly from the run's classes. n must fit in the memory available (a LimitError, also a ValueError,
        says how many do): `sample_batches` streams any n."""
        check_count("n", n)
        check_memory("n", n, 4 * math.prod(self.image_shape))
        out = torch.empty(n, *self.image_shape)          # filled in place: no second copy of all the samples
        start = 0
        for x in self.sample_batches(n, seed, batch_size, labels):
            out[start:start + len(x)] = x
            start += len(x)
        return out

    @torch.no_grad()
    def sample_batches(self, n: int, seed: int = 0, batch_size: int = 1000,
                       labels: int | torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """The samples of `sample(n, seed, batch_size, labels)`, `batch_size` at a time: memory stays flat for
        any n. Non-finite samples are a RunError."""
        check_count("n", n)
        check_count("batch_size", batch_size, low=1)
        rng = torch.Generator(device=self.device).manual_seed(seed)
        m = self.config.model
        if isinstance(labels, int):
            labels = torch.full((n,), labels, dtype=torch.int64, device=self.device)
        if labels is not None and labels.numel():
            self.check_class(int(labels.min()))
            self.check_class(int(labels.max()))
        for start in range(0, n, batch_size):
            size = min(batch_size, n - start)
            z = sample_noise(size, m.noise_dim, m.noise_prior, rng, self.device)
            c = self.sample_labels(size, rng) if labels is None else labels[start:start + size].to(self.device)
            x = self.generator(z, **label_kwargs(c)).cpu()
            if not bool(torch.isfinite(x).all()):
                raise RunError(f"the generator of {self.run_dir} (step {self.step}) gives NaN or infinite samples",
                               "use an earlier checkpoint, or retrain with a lower learning rate")
            yield x

    def sample_labels(self, n: int, rng: torch.Generator) -> torch.Tensor | None:
        """n classes drawn uniformly for a conditional run (None for an unconditional one)."""
        if not self.num_classes:
            return None
        return torch.randint(self.num_classes, (n,), generator=rng, device=self.device)


def load_run(run_dir: str | Path, checkpoint: str | Path | None = None, device: str = "auto",
             average: bool = True) -> LoadedRun:
    """Load a run's generator and discriminator from its last (or the given) checkpoint. A run trained with
    train.generator_ema gives the moving average of its G (the one its grids show), unless `average` is False.
    A run whose config.json is missing or damaged is read with the copy of its config in the checkpoint (as
    `advnets train --resume` recovers it)."""
    run_dir = Path(run_dir)
    path = Path(checkpoint) if checkpoint is not None else run_dir / CHECKPOINT
    try:
        config = read_config(run_dir)
    except (RunError, ConfigError):
        if checkpoint is not None or not path.is_file() or file_kind(path) is not None:
            raise                           # no run here, or no checkpoint to recover its config from
        config = None                       # the checkpoint's copy, below
    dev = resolve_device(device)
    payload = load_checkpoint(path)         # on CPU: a device that cannot be used is not a damaged checkpoint
    image_shape = tuple(payload["image_shape"])
    saved = checkpoint_config(payload, path)
    config = config or saved
    if saved.model != config.model:
        raise RunError(f"checkpoint {path} was written for another model than {run_dir / CONFIG} describes",
                       "pass a checkpoint of this run")
    num_classes = int(payload.get("num_classes", 0))
    try:
        g, d = build_models(config.model, image_shape, None, num_classes=num_classes)
    except (ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} does not fit its run: its image shape {list(image_shape)} and "
                              f"{num_classes} classes build no network ({str(exc).strip()[:80]})",
                              "pass a checkpoint of this run") from None
    averaged = average and isinstance(payload.get("generator_average"), dict)
    if averaged:
        load_state(g, payload["generator_average"].get("weights", {}), "generator average", path)
    else:
        load_state(g, payload["generator"], "generator", path)
    load_state(d, payload["discriminator"], "discriminator", path)
    bad = [name for name, net in (("generator", g), ("discriminator", d))
           if not all(bool(torch.isfinite(p).all()) for p in net.state_dict().values() if p.is_floating_point())]
    if bad:
        raise CheckpointError(f"the {' and the '.join(bad)} in {path} {'has' if len(bad) == 1 else 'have'} NaN or "
                              "infinite weights", "use an earlier checkpoint, or retrain with a lower learning rate")
    _to_device((g, d), dev)
    return LoadedRun(run_dir, config, g, d, image_shape, payload["epoch"], payload["g_updates"], dev, num_classes,
                     averaged)


def _to_device(nets, dev: torch.device) -> None:
    """The networks on `dev`, in evaluation mode; a device PyTorch cannot use (no CUDA, no such GPU) is a
    ConfigError naming it."""
    try:
        for net in nets:
            net.to(dev).eval()
    except (RuntimeError, AssertionError) as exc:      # torch without CUDA raises AssertionError
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"device '{dev}' cannot be used: {reason[:160]}", "use --device cpu or auto") from None
