"""Mode coverage while training: a collapse (the paper's "Helvetica scenario", section 6) shows in metrics.jsonl
while it happens, not only in a later evaluation.

With `train.coverage_every_epochs` = N > 0, every N-th epoch line (and the last line of a run) gains:

* grid | ring (data/mixtures.py): `modes_captured`, `high_quality` and `reverse_kl` of `train.coverage_samples`
  samples (default 2,500, the benchmarks' count; eval/coverage.py `mixture_coverage`). Costs milliseconds.
* labelled image data: `classes_captured` and `class_kl` (KL of the samples' predicted classes to the training
  labels' frequencies, eval/coverage.py `class_coverage`) of a few hundred samples (default 500), classified by
  the package's classifier for the dataset (eval/classifier.py), on the run's device. That classifier is loaded
  from the cache or trained first (seconds for digits, a minute or two for MNIST on a CPU): opt-in for that reason.

The samples come from fixed noise drawn from their own generator seeded with train.seed: the run's random stream
is untouched (a run with coverage trains exactly as one without), and successive lines measure the same z.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..data.mixtures import mixture_means, mixture_sigma
from ..data.registry import MIXTURE_DATASETS
from ..errors import ConfigError
from ..eval.classifier import load_or_train_classifier
from ..eval.coverage import class_coverage, mixture_coverage
from ..eval.stacked_coverage import data_mode_frequencies
from ..models import label_kwargs, sample_noise

MIXTURE_SAMPLES = 2500      # VEEGAN and PacGAN measure 2,500 samples
CLASS_SAMPLES = 500


class Coverage:
    """Called with the trainer at the end of an epoch; returns the figures to add to its metrics line."""

    def __init__(self, config, num_classes: int, device: torch.device, n: int):
        m = config.model
        self.every = config.train.coverage_every_epochs
        rng = torch.Generator(device=device).manual_seed(config.train.seed)
        self.noise = sample_noise(n, m.noise_dim, m.noise_prior, rng, device)             # (n, noise_dim)
        # a conditional G is asked for every class in turn
        self.labels = torch.arange(n, device=device) % num_classes if num_classes else None

    @torch.no_grad()
    def samples(self, generator: torch.nn.Module) -> torch.Tensor:
        """G(z) for the fixed noise, G in evaluation mode, (n, C, H, W) on the run's device."""
        was_training = generator.training
        generator.eval()
        out = generator(self.noise, **label_kwargs(self.labels))
        generator.train(was_training)
        return out

    def figures(self, generator: torch.nn.Module, epoch: float, final: bool) -> dict[str, Any]:
        """The figures for the metrics line of `epoch` (completed epochs, or a fraction for a partial one) when
        due: every train.coverage_every_epochs-th epoch and the last line of a run; else {}."""
        if not (final or (float(epoch).is_integer() and int(epoch) % self.every == 0)):
            return {}
        return self(generator)

    def __call__(self, generator: torch.nn.Module) -> dict[str, Any]:
        raise NotImplementedError


class MixtureCoverage(Coverage):
    """modes_captured, high_quality, reverse_kl on a 2-D mixture (grid, ring)."""

    def __init__(self, config, num_classes: int, device: torch.device, n: int):
        super().__init__(config, num_classes, device, n)
        self.means, self.sigma = mixture_means(config.data.dataset), mixture_sigma(config.data.dataset)

    def __call__(self, generator: torch.nn.Module) -> dict[str, Any]:
        c = mixture_coverage(self.samples(generator).reshape(-1, 2).cpu(), self.means, self.sigma)
        return {"modes_captured": c["modes_captured"], "high_quality": round(c["high_quality"], 4),
                "reverse_kl": _finite(c["reverse_kl"])}


class ClassCoverage(Coverage):
    """classes_captured and class_kl of samples, by a classifier trained on the real training split."""

    def __init__(self, config, num_classes: int, device: torch.device, n: int, train_labels):
        super().__init__(config, num_classes, device, n)
        labels = None if train_labels is None else np.asarray(train_labels).reshape(-1)
        if config.data.dataset == "toy1d" or labels is None or labels.size == 0 or labels.min() < 0:
            raise ConfigError(f"train.coverage_every_epochs needs labelled data (or grid / ring); the "
                              f"{config.data.dataset} training split has no class labels",
                              "set train.coverage_every_epochs=0")
        self.frequencies = data_mode_frequencies(config.data.dataset, labels)     # stacked-mnist: per channel
        self.classifier = load_or_train_classifier(config.data, device=device)

    def __call__(self, generator: torch.nn.Module) -> dict[str, Any]:
        predicted = self.classifier.predict(self.samples(generator))
        frequencies = np.pad(self.frequencies, (0, max(self.classifier.num_classes - len(self.frequencies), 0)))
        c = class_coverage(predicted, frequencies)
        return {"classes_captured": c["classes_captured"], "class_kl": _finite(c["kl"])}


def coverage_tracker(config, train_labels, num_classes: int, device: torch.device) -> Coverage | None:
    """The coverage figures the config asks for (None when train.coverage_every_epochs is 0)."""
    t = config.train
    if not t.coverage_every_epochs:
        return None
    if config.data.dataset in MIXTURE_DATASETS:
        return MixtureCoverage(config, num_classes, device, t.coverage_samples or MIXTURE_SAMPLES)
    return ClassCoverage(config, num_classes, device, t.coverage_samples or CLASS_SAMPLES, train_labels)


def _finite(value: float) -> float | None:
    """A number for metrics.jsonl: rounded, or None (JSON null) when NaN or infinite."""
    return round(value, 4) if math.isfinite(value) else None
