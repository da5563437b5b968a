"""What a run's samples show against real data, on the features of the package's real-data classifier
(classifier.py): which classes they cover (the "Helvetica scenario" of the paper's section 6) and how close their
distribution is (feature_metrics.py), each beside the same numbers for real held-out images -- the floor of "good".

    from advnets.eval.sample_report import sample_report
    report = sample_report(run.sample(10_000), classifier, valid_images, test_images, train_labels)
"""
from __future__ import annotations

import numpy as np

from .coverage import class_coverage
from .feature_metrics import quality_metrics


def class_frequencies(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """The share of each class 0 .. num_classes-1 in `labels`."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes).astype(np.float64)
    return counts / counts.sum()


def sample_report(samples, classifier, valid_images, test_images, train_labels, *, seed: int = 0,
                  kid_subset_size: int = 1000, frequencies: np.ndarray | None = None) -> dict:
    """Coverage of the classes and quality metrics for `samples` (N, C, H, W) in the data's value range.

    The quality metrics compare the samples' features with the valid split's; "floor" holds the same metrics for
    the test split against the valid split (real vs real). Class coverage compares the classes the classifier sees
    in the samples with the data's class frequencies (`frequencies`, default the training labels' shares), beside
    the same for the test images."""
    freqs = class_frequencies(train_labels, classifier.num_classes) if frequencies is None else frequencies
    real, fake, other = (classifier.features(x) for x in (valid_images, samples, test_images))
    size = min(kid_subset_size, len(real), len(fake), len(other))
    quality = quality_metrics(real, fake, reference=other, seed=seed, kid_subset_size=size)
    coverage = class_coverage(classifier.predict(samples), freqs)
    coverage["floor"] = class_coverage(classifier.predict(test_images), freqs)
    return {"n_samples": len(fake), "n_valid": len(real), "n_test": len(other),
            "classifier_held_out_accuracy": classifier.held_out_accuracy,
            "data_class_frequencies": [round(float(f), 6) for f in freqs],
            "class_coverage": _jsonable(coverage), "quality": _jsonable(quality)}


def _jsonable(value):
    """Numbers as plain floats / ints (NaN and infinities as strings JSON can hold), lists and dicts recursively."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else str(float(value))
    return value
