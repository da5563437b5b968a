"""What `advnets eval` writes for a trained run, one function per file of RUN/eval/: each takes a loaded run
(`advnets.run.load_run`) and returns the JSON-ready dict that the command writes, so that Python code gets the
same numbers as the command line for the same arguments.

    from advnets.run import load_run
    from advnets.eval.run_reports import parzen_report
    report = parzen_report(load_run("runs/mnist"), seed=0)      # the dict of RUN/eval/parzen.json

`seed` seeds G's noise; `data_dir` and `fold` replace the run's own (data moved since training, another TFD
fold); a classifier's `progress(done, total, note)` is called while it trains (the first time only: it is cached).
Each report reads its data before any long work; `check_data` does so for several reports at once. Reports scored on
a test split say which in "test_split" (a mnist-5k run without the MNIST test files is scored on held-out digits).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import numpy as np

from ..data.registry import (MIXTURE_DATASETS, HeldOut, load_data_split, load_held_out, load_stacked_labels,
                             load_stacked_test)
from ..data.stacked import source_config
from ..errors import AdvnetsError
from ..fileio import finite_or_null
from ..models import class_rows
from . import classifier, neighbours, parzen  # called through their modules, where tests spy on them
from .coverage import class_coverage
from .mixture_runs import SAMPLES, run_mixture_coverage
from .sample_report import sample_report
from .stacked_coverage import data_mode_frequencies, stacked_coverage

N_SAMPLES = 10_000     # samples of G for the Parzen estimate and the feature metrics: Table 1's protocol
NEAREST = 1000         # samples of G, and held-out images, in the memorisation check
PER_CLASS = 1000       # samples of each class in the class-accuracy check
IMAGE_COVERAGE_SAMPLES = 26_000   # samples of an image run for --coverage: the Stacked-MNIST protocol's count
NOT_IMAGES = ("toy1d", *MIXTURE_DATASETS)   # datasets of points, which no image classifier reads

Progress = Callable[[int, int, str], None]


def run_header(run) -> dict:
    """The keys every report starts with: which run, and where its training stopped."""
    return {"run": str(run.run_dir), "epoch": run.epoch, "step": run.step}


def split_images(run, split: str, data_dir: str | None = None, fold: int | None = None) -> np.ndarray:
    """The images of a split ("train" | "valid" | "test") of the run's dataset."""
    return run.load_split(split, data_dir, fold).images


def held_out(run, data_dir: str | None = None, fold: int | None = None) -> HeldOut:
    """The valid and test images the run's samples are scored against (`advnets.data.load_held_out`)."""
    return load_held_out(_data_config(run, data_dir, fold), run_seed=run.config.train.seed)


def check_data(run, reports: Sequence[str], data_dir: str | None = None, fold: int | None = None) -> None:
    """Read every split that `reports` ("parzen", "nearest", "class_accuracy", "quality", "coverage") will read, so
    that missing data is a `DataError` before any long work (sampling, training a classifier, Parzen). The readers
    keep what they parsed in memory: the reports do not read the files again."""
    images = run.config.data.dataset not in NOT_IMAGES
    refused = set() if images else {"quality"}                                  # these reports refuse the run
    refused |= set() if run.num_classes else {"class_accuracy"}                 # before they read any data
    wanted = set(reports) - refused
    classified = wanted & {"class_accuracy", "quality"} or (images and "coverage" in wanted)
    for split in ("train", "valid") if "nearest" in wanted else ():
        run.load_split(split, data_dir, fold)
    for split in ("train", "valid") if classified else ():     # the classifier trains on train, checks on valid
        load_data_split(classifier_data(run, data_dir, fold), split, run_seed=run.config.train.seed)
    if wanted & {"parzen", "quality"}:
        held_out(run, data_dir, fold)
    if images and "coverage" in wanted:                        # the real images of the floor
        load_held_out(classifier_data(run, data_dir, fold), run_seed=run.config.train.seed)


def parzen_report(run, *, n_samples: int = N_SAMPLES, sigmas: Sequence[float] | np.ndarray | None = None,
                  seed: int = 0, data_dir: str | None = None, fold: int | None = None) -> dict:
    """Table 1's Parzen-window estimate (eval/parzen.py) for `n_samples` samples of the run's G: sigma chosen on
    the valid split from `sigmas` (default: the original's grid, `parzen.sigma_grid()`), the mean log-likelihood of
    the test split and its standard error. Warns (`SigmaOnEdgeWarning`) when sigma is on the grid's edge."""
    held = held_out(run, data_dir, fold)
    samples = run.sample(n_samples, seed=seed)
    result = parzen.parzen_evaluate(samples, held.valid.images, held.test.images, sigmas, device=run.device)
    return {**run_header(run), "dataset": run.config.data.dataset, "test_split": held.test_split, **result.to_dict()}


def nearest_report(run, *, seed: int = 0, data_dir: str | None = None, fold: int | None = None) -> dict:
    """The memorisation check (eval/neighbours.py): mean L2 distance to the nearest training example of NEAREST
    samples (noise seeded with seed + 1) and of NEAREST held-out (valid) images."""
    train = split_images(run, "train", data_dir, fold)
    nearest = neighbours.memorisation_report(run.sample(NEAREST, seed=seed + 1), train,
                                             split_images(run, "valid", data_dir, fold)[:NEAREST], device=run.device)
    return {**run_header(run), "dataset": run.config.data.dataset, "nearest": nearest}


def run_classifier(run, *, data_dir: str | None = None, fold: int | None = None,
                   progress: Progress | None = None) -> classifier.Classifier:
    """The package's real-data classifier of the run's dataset (eval/classifier.py), on the run's device: from the
    cache, else trained first."""
    return classifier.load_or_train_classifier(_data_config(run, data_dir, fold), device=run.device,
                                               progress=progress)


def _data_config(run, data_dir: str | None, fold: int | None):
    """The run's data config with `data_dir` and `fold` in place of its own when given."""
    d = run.config.data
    return dataclasses.replace(d, data_dir=data_dir or d.data_dir, fold=d.fold if fold is None else fold)


def classifier_data(run, data_dir: str | None = None, fold: int | None = None):
    """The data config the run's classifier is trained on: the run's, or for stacked-mnist its source digits'."""
    d = _data_config(run, data_dir, fold)
    return source_config(d) if d.dataset == "stacked-mnist" else d


def _train_labels(run, data_dir: str | None, fold: int | None) -> np.ndarray:
    """The labels of the run's training split (stacked-mnist: drawn without building its images)."""
    if run.config.data.dataset == "stacked-mnist":
        return load_stacked_labels(_data_config(run, data_dir, fold), run_seed=run.config.train.seed)
    return run.load_split("train", data_dir, fold).labels


def class_accuracy_report(run, *, per_class: int = PER_CLASS, seed: int = 0, data_dir: str | None = None,
                          fold: int | None = None, progress: Progress | None = None) -> dict:
    """A conditional run: how often the real-data classifier recognises the class G was asked for, over
    `per_class` samples of each class, beside the classifier's own accuracy on real held-out images."""
    if not run.num_classes:
        raise AdvnetsError(f"{run.run_dir} is not a conditional run: its samples have no intended class",
                           "train with --conditional, or drop --class-accuracy")
    d = run.config.data
    clf = run_classifier(run, data_dir=data_dir, fold=fold, progress=progress)
    if clf.num_classes < run.num_classes:
        raise AdvnetsError(f"the run has {run.num_classes} classes but {d.dataset}'s labels only "
                           f"{clf.num_classes}", "pass the --data-dir of the data the run was trained on")
    labels = class_rows(run.num_classes, per_class)
    result = classifier.class_accuracy(clf, run.sample(len(labels), seed=seed, labels=labels), labels.numpy())
    return {**run_header(run), "dataset": d.dataset, "samples_per_class": per_class, "seed": seed,
            "classifier_held_out_accuracy": clf.held_out_accuracy, "classifier_held_out_size": clf.held_out_size,
            "classifier": clf.info, **result}


def quality_report(run, *, n_samples: int = N_SAMPLES, seed: int = 0, data_dir: str | None = None,
                   fold: int | None = None, progress: Progress | None = None) -> dict:
    """An image run: class coverage and the feature metrics of `n_samples` samples on the real-data classifier's
    features, each beside its real-vs-real floor (`sample_report`)."""
    d = run.config.data
    if d.dataset in NOT_IMAGES:
        raise AdvnetsError(f"--quality compares images through a classifier; {run.run_dir} was trained on "
                           f"{d.dataset}", "use --coverage for the 2-D mixtures")
    labels, held = _train_labels(run, data_dir, fold), held_out(run, data_dir, fold)     # before the classifier
    clf = run_classifier(run, data_dir=data_dir, fold=fold, progress=progress)
    return {**run_header(run), "dataset": d.dataset, "seed": seed, "test_split": held.test_split,
            **sample_report(run.sample(n_samples, seed=seed).numpy(), clf, held.valid.images, held.test.images,
                            labels, seed=seed, frequencies=data_mode_frequencies(d.dataset, labels, clf.num_classes))}


def coverage_samples(run, n_samples: int | None = None) -> int:
    """`n_samples`, or the protocol's count for the run's data: 2,500 on grid and ring, 26,000 on images."""
    if n_samples is not None:
        return n_samples
    return SAMPLES if run.config.data.dataset in MIXTURE_DATASETS else IMAGE_COVERAGE_SAMPLES


def coverage_report(run, *, n_samples: int | None = None, seed: int = 0, data_dir: str | None = None,
                    fold: int | None = None, progress: Progress | None = None) -> dict:
    """Mode coverage of `n_samples` samples (default `coverage_samples`), each figure beside what real images score.

    - grid, ring: modes captured, high-quality fraction and reverse KL (eval/mixture_runs.py), always together; the
      reverse KL is null when no sample is of high quality.
    - stacked-mnist: triples captured of 1,000, KL to the data's triple distribution and to uniform
      (eval/stacked_coverage.py); "floor": the same for as many real stacks of the source's held-out test digits;
      "classifier": the digit classifier's accuracy on those digits, per digit.
    - other labelled images: classes captured and KL to the training labels' class frequencies; "floor": the same
      for the held-out test images; "classifier": its accuracy on them, per class.
    A KL that is infinite (samples in a class the data lacks) is null."""
    d = run.config.data
    n = coverage_samples(run, n_samples)
    if d.dataset in MIXTURE_DATASETS:
        _, cov = run_mixture_coverage(run, n, seed)
        return finite_or_null({**run_header(run), "pack": run.config.model.pack, "seed": seed, **cov})
    if d.dataset in NOT_IMAGES:
        raise AdvnetsError(f"--coverage counts the modes of 2-D mixtures or the classes of labelled images; "
                           f"{run.run_dir} was trained on {d.dataset}", "use --parzen for toy1d")
    if n < 1:
        raise AdvnetsError(f"--coverage-samples must be at least 1, got {n}")
    report = _stacked_coverage(run, n, seed, data_dir, fold, progress) if d.dataset == "stacked-mnist" else \
        _class_coverage(run, n, seed, data_dir, fold, progress)
    return finite_or_null({**run_header(run), "dataset": d.dataset, "seed": seed, **report})


def _stacked_coverage(run, n: int, seed: int, data_dir, fold, progress) -> dict:
    """The stacked-mnist part of `coverage_report`: data first, then the classifier, then G's samples."""
    cfg = _data_config(run, data_dir, fold)
    digits, real = load_stacked_test(cfg, n, run_seed=run.config.train.seed)
    frequencies = data_mode_frequencies(cfg.dataset, _train_labels(run, data_dir, fold))
    clf = run_classifier(run, data_dir=data_dir, fold=fold, progress=progress)
    floor = stacked_coverage(clf.predict(real.images), frequencies)
    del real
    accuracy = classifier.class_accuracy(clf.digit, digits.test.images, digits.test.labels)
    return {"modes": len(frequencies), **stacked_coverage(clf.predict(run.sample(n, seed=seed)), frequencies),
            "floor": {"what": f"{n:,} real stacks of the {digits.test_split}", **floor},
            "classifier": _accuracy(accuracy, clf, "the held-out digits"), "test_split": digits.test_split,
            "data_frequencies": "product of the per-channel digit frequencies of the training stacks"}


def _class_coverage(run, n: int, seed: int, data_dir, fold, progress) -> dict:
    """The labelled-images part of `coverage_report`: data first, then the classifier, then G's samples."""
    labels, held = _train_labels(run, data_dir, fold), held_out(run, data_dir, fold)
    if labels is None:
        raise AdvnetsError(f"--coverage counts classes, and {run.config.data.dataset}'s training split has no labels",
                           "train on labelled images, or use --quality")
    clf = run_classifier(run, data_dir=data_dir, fold=fold, progress=progress)
    frequencies = data_mode_frequencies(run.config.data.dataset, labels, clf.num_classes)
    coverage = class_coverage(clf.predict(run.sample(n, seed=seed)), frequencies)
    floor = class_coverage(clf.predict(held.test.images), frequencies)
    accuracy = classifier.class_accuracy(clf, held.test.images, held.test.labels)
    return {"classes": len(frequencies), **coverage,
            "floor": {"what": f"{len(held.test):,} real images of the {held.test_split}", **floor},
            "classifier": _accuracy(accuracy, clf, "the held-out images"), "test_split": held.test_split}


def _accuracy(accuracy: dict, clf, on: str) -> dict:
    """The classifier's accuracy on the floor's real images, per class, and how it was made."""
    return {"accuracy": accuracy["accuracy"], "per_class": accuracy["per_class"], "n": accuracy["n"], "on": on,
            "info": clf.info}


def sample_bytes(run, report: str) -> int:
    """Bytes each sample of G holds in memory while `report` ("parzen" | "quality" | "coverage" |
    "class_accuracy") is computed, to check a sample count against the memory available before drawing: the
    float32 sample, and Parzen's centred copy and squared norms; the classifier's float32 features and their two
    float64 copies in the quality metrics; the coverage's float64 copy, nearest mean and distance, or the real
    images of its floor."""
    values = math.prod(run.image_shape)
    channels = 3 if run.config.data.dataset == "stacked-mnist" else 1         # features: one digit's per channel
    extra = {"parzen": 4 * values + 12, "quality": 3 * 8 * classifier.Recipe().hidden * channels,
             "coverage": 4 * values + 64, "class_accuracy": 8}
    return 4 * values + extra[report]
