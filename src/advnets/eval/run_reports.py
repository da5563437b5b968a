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

from ..data.registry import MIXTURE_DATASETS, HeldOut, load_held_out
from ..errors import AdvnetsError
from ..fileio import finite_or_null
from ..models import class_rows
from . import classifier, neighbours, parzen  # called through their modules, where tests spy on them
from .mixture_runs import SAMPLES, run_mixture_coverage
from .sample_report import sample_report

N_SAMPLES = 10_000     # samples of G for the Parzen estimate and the feature metrics: Table 1's protocol
NEAREST = 1000         # samples of G, and held-out images, in the memorisation check
PER_CLASS = 1000       # samples of each class in the class-accuracy check
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
    refused = {"quality"} if run.config.data.dataset in NOT_IMAGES else set()   # these reports refuse the run
    refused |= set() if run.num_classes else {"class_accuracy"}                 # before they read any data
    wanted = set(reports) - refused
    for split in ("train", "valid") if wanted & {"nearest", "class_accuracy", "quality"} else ():
        run.load_split(split, data_dir, fold)                  # the classifier trains on train, checks on valid
    if wanted & {"parzen", "quality"}:
        held_out(run, data_dir, fold)


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
    train, held = run.load_split("train", data_dir, fold), held_out(run, data_dir, fold)   # before the classifier
    clf = run_classifier(run, data_dir=data_dir, fold=fold, progress=progress)
    return {**run_header(run), "dataset": d.dataset, "seed": seed, "test_split": held.test_split,
            **sample_report(run.sample(n_samples, seed=seed).numpy(), clf, held.valid.images, held.test.images,
                            train.labels, seed=seed)}


def coverage_report(run, *, n_samples: int = SAMPLES, seed: int = 0) -> dict:
    """A run on a 2-D mixture (grid, ring): modes captured, high-quality fraction and reverse KL of `n_samples`
    samples (eval/mixture_runs.py), always together; the reverse KL is null when no sample is of high quality."""
    _, cov = run_mixture_coverage(run, n_samples, seed)
    return finite_or_null({**run_header(run), "pack": run.config.model.pack, "seed": seed, **cov})


def sample_bytes(run, report: str) -> int:
    """Bytes each sample of G holds in memory while `report` ("parzen" | "quality" | "coverage" |
    "class_accuracy") is computed, to check a sample count against the memory available before drawing: the
    float32 sample, and Parzen's centred copy and squared norms; the classifier's float32 features and their two
    float64 copies in the quality metrics; the coverage's float64 copy, nearest mean and distance."""
    values = math.prod(run.image_shape)
    extra = {"parzen": 4 * values + 12, "quality": 3 * 8 * classifier.Recipe().hidden, "coverage": 64,
             "class_accuracy": 8}
    return 4 * values + extra[report]
