"""Mode coverage while training: a collapse (the paper's "Helvetica scenario", section 6) shows in metrics.jsonl
and on the console while it happens, not only in a later evaluation.

Every N-th epoch line (and the last line of a run) gains the figures, N = `coverage_every(config)`:
train.coverage_every_epochs when set (0: off), else (null, the default) 1 for the datasets of AUTO_DATASETS and 0
for the others, or when the training images are given in Python (the dataset's classifier need not know them).

* grid | ring (data/mixtures.py): `modes_captured`, `high_quality` and `reverse_kl` of `train.coverage_samples`
  samples (default 2,500, the benchmarks' count; eval/coverage.py `mixture_coverage`). Costs milliseconds.
* labelled image data: `classes_captured` and `class_kl` (KL of the samples' predicted classes to the training
  labels' frequencies, eval/coverage.py `class_coverage`) of a few hundred samples (default 500, and at least 2 per
  class: 2,000 for 1,000 classes), classified by the package's classifier for the dataset (eval/classifier.py) on
  the run's device. That classifier is loaded from the cache, or trained first (reported through the reporter's
  `progress` hook): a minute or two for MNIST on a CPU, once.

A line also gains `coverage_warning` (the key of the figure) when the captured classes (modes) fall below half of
those a G drawing every class equally often would show in as many samples (of all of them, when the samples are many
more than the classes), or when the KL rises by more than log 2 over its lowest value so far; once per fall: only
after a line that showed at least three quarters of them without either (an untrained G shows few classes, and
their number wavers around half while G learns them: neither is a fall). `summary` says what the figures cost
(samples, the classifier's source and time, one evaluation's seconds, measured at the start).

The samples come from fixed noise drawn from their own generator seeded with train.seed: the run's random stream
is untouched (a run with coverage trains exactly as one without), and successive lines measure the same z. Only the
rank that writes (rank 0) measures.
"""
from __future__ import annotations

import functools
import math
import time
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

# The datasets whose runs measure coverage unless told otherwise: labelled images whose classifier is trained once
# in a minute or two on a CPU and then cached, and the 2-D mixtures (no classifier). digits is left out: it is the
# dataset of the tests and of smoke runs, which last seconds, and its classifier (2,000 updates: 8 s on an idle core,
# over a minute on a busy one) would be most of such a run. cifar10 (a classifier of 40,000 colour images, minutes,
# and a weaker judge), tfd and folder (labels not always there) and toy1d (none) are off unless set.
AUTO_DATASETS = ("mnist", "mnist-5k", "fashion-mnist", "stacked-mnist", *MIXTURE_DATASETS)
MIXTURE_SAMPLES = 2500      # VEEGAN and PacGAN measure 2,500 samples
CLASS_SAMPLES = 500
SAMPLES_PER_CLASS = 2       # at least this many samples per class (a perfect G then shows 86% of the classes)
CHUNK = 1000                # samples drawn and classified at a time
KL_RISE = math.log(2)       # a KL this far above its lowest: as if half of the mass had left the classes it was in


def coverage_every(config, images_given: bool = False) -> int:
    """Every how many epochs the coverage figures are measured (0: never): train.coverage_every_epochs, or where
    that is None (auto) 1 for AUTO_DATASETS, unless the training images were given in Python, and else 0."""
    every = config.train.coverage_every_epochs
    if every is not None:
        return every
    return int(config.data.dataset in AUTO_DATASETS and not images_given)


class Coverage:
    """Called with the trainer's G at the end of an epoch; returns the figures to add to its metrics line."""

    CAPTURED, KL = "", ""       # the keys of the figures: classes (modes) the samples show, and their KL

    def __init__(self, config, every: int, num_classes: int, device: torch.device, n: int, total: int):
        m = config.model
        self.every, self.total = every, total
        rng = torch.Generator(device=device).manual_seed(config.train.seed)
        self.noise = sample_noise(n, m.noise_dim, m.noise_prior, rng, device)             # (n, noise_dim)
        # a conditional G is asked for every class in turn
        self.labels = torch.arange(n, device=device) % num_classes if num_classes else None
        # the classes a G that draws each of them equally often shows in n samples (all of them when n >> total):
        # fewer than half of them is a fall, once at least three quarters were shown (`armed`)
        shown = total * (1 - (1 - 1 / total) ** n)
        self.threshold, self.arm = shown / 2, shown * 3 / 4
        self.lowest_kl, self.armed = math.inf, False
        self.summary: dict[str, Any] = {"every": every, "samples": n, "total": total}

    @torch.no_grad()
    def samples(self, generator: torch.nn.Module, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """G(z) for the fixed noise[start:stop], G in evaluation mode, (n, C, H, W) on the run's device."""
        was_training = generator.training
        generator.eval()
        labels = None if self.labels is None else self.labels[start:stop]
        out = generator(self.noise[start:stop], **label_kwargs(labels))
        generator.train(was_training)
        return out

    def time_one(self, generator: torch.nn.Module) -> None:
        """Measure one evaluation on `generator`, into summary["seconds"] (the figures are not kept)."""
        started = time.perf_counter()
        self(generator)
        self.summary["seconds"] = round(time.perf_counter() - started, 4)

    def figures(self, generator: torch.nn.Module, epoch: float, final: bool) -> dict[str, Any]:
        """The figures for the metrics line of `epoch` (completed epochs, or a fraction for a partial one) when
        due: every `every`-th epoch and the last line of a run; else {}. With `coverage_warning` when they fell."""
        if not (final or (float(epoch).is_integer() and int(epoch) % self.every == 0)):
            return {}
        figures = self(generator)
        fell = self.fell(figures)
        return {**figures, "coverage_warning": fell} if fell else figures

    def fell(self, figures: dict[str, Any]) -> str | None:
        """The key of the figure that fell at this evaluation (see the module docstring), or None: the captured
        count below `threshold`, or the KL more than KL_RISE above its lowest so far, when `armed` (an evaluation
        since the last fall showed `arm` classes or more, and neither held)."""
        captured, kl = figures[self.CAPTURED], figures[self.KL]
        rose = kl is not None and kl > self.lowest_kl + KL_RISE
        alarm = self.CAPTURED if captured < self.threshold else self.KL if rose else None
        fell = alarm if self.armed else None
        self.armed = alarm is None and (self.armed or captured >= self.arm)
        if kl is not None:
            self.lowest_kl = min(self.lowest_kl, kl)
        return fell

    def __call__(self, generator: torch.nn.Module) -> dict[str, Any]:
        raise NotImplementedError


class MixtureCoverage(Coverage):
    """modes_captured, high_quality, reverse_kl on a 2-D mixture (grid, ring)."""

    CAPTURED, KL = "modes_captured", "reverse_kl"

    def __init__(self, config, every: int, num_classes: int, device: torch.device, n: int):
        self.means, self.sigma = mixture_means(config.data.dataset), mixture_sigma(config.data.dataset)
        super().__init__(config, every, num_classes, device, n, len(self.means))

    def __call__(self, generator: torch.nn.Module) -> dict[str, Any]:
        c = mixture_coverage(self.samples(generator).reshape(-1, 2).cpu(), self.means, self.sigma)
        return {"modes_captured": c["modes_captured"], "high_quality": round(c["high_quality"], 4),
                "reverse_kl": _finite(c["reverse_kl"])}


class ClassCoverage(Coverage):
    """classes_captured and class_kl of samples, by a classifier trained on the real training split. Works for any
    dataset the package has a classifier for (eval/classifier.py), whatever its number of classes."""

    CAPTURED, KL = "classes_captured", "class_kl"

    def __init__(self, config, every: int, num_classes: int, device: torch.device, n: int, frequencies: np.ndarray,
                 progress=None):
        super().__init__(config, every, num_classes, device, n, int((frequencies > 0).sum()))
        started = time.perf_counter()
        self.classifier = load_or_train_classifier(config.data, device=device, progress=progress)
        self.summary.update(dataset=config.data.dataset, classifier=self.classifier.info.get("source", "trained"),
                            classifier_seconds=round(time.perf_counter() - started, 2),
                            held_out_accuracy=round(self.classifier.held_out_accuracy, 4))
        self.frequencies = np.pad(frequencies, (0, max(self.classifier.num_classes - len(frequencies), 0)))

    def __call__(self, generator: torch.nn.Module) -> dict[str, Any]:
        predicted = np.concatenate([self.classifier.predict(self.samples(generator, i, i + CHUNK))
                                    for i in range(0, len(self.noise), CHUNK)])
        c = class_coverage(predicted, self.frequencies)
        return {"classes_captured": c["classes_captured"], "class_kl": _finite(c["kl"])}


def class_frequencies(config, train_labels) -> np.ndarray:
    """The data's class frequencies, (C,): training examples per class, or for stacked-mnist the probability of each
    of the 1,000 triples (eval/stacked_coverage.py); a ConfigError when the data has no class labels."""
    labels = None if train_labels is None else np.asarray(train_labels).reshape(-1)
    if config.data.dataset == "toy1d" or labels is None or labels.size == 0 or labels.min() < 0:
        raise ConfigError(f"train.coverage_every_epochs needs labelled data (or grid / ring); the "
                          f"{config.data.dataset} training split has no class labels",
                          "set train.coverage_every_epochs=0 (advnets train --no-coverage)")
    return data_mode_frequencies(config.data.dataset, labels)


def coverage_tracker(state, train_labels, reporter=None, dist=None, images_given: bool = False) -> Coverage | None:
    """The coverage figures of the run whose TrainingState is `state` (None when `coverage_every` is 0, or on a
    rank of `dist` that does not write), with one evaluation timed on its G. `reporter`'s `progress` hook hears of the
    classifier's training, when it is not in the cache."""
    config = state.config
    every = coverage_every(config, images_given)
    if not every or (dist is not None and not dist.writes):
        return None
    n, args = config.train.coverage_samples, (config, every, state.data.num_classes, state.device)
    if config.data.dataset in MIXTURE_DATASETS:
        tracker: Coverage = MixtureCoverage(*args, n or MIXTURE_SAMPLES)
    else:
        frequencies = class_frequencies(config, train_labels)
        n = n or max(CLASS_SAMPLES, SAMPLES_PER_CLASS * int((frequencies > 0).sum()))
        hook = getattr(reporter, "progress", None)
        task = (f"training the {config.data.dataset} classifier for the coverage figures (once: later runs load "
                "it from the cache; train.coverage_every_epochs=0 skips it)")
        tracker = ClassCoverage(*args, n, frequencies, None if hook is None else functools.partial(hook, task))
    tracker.time_one(state.sampler)
    return tracker


def _finite(value: float) -> float | None:
    """A number for metrics.jsonl: rounded, or None (JSON null) when NaN or infinite."""
    return round(value, 4) if math.isfinite(value) else None
