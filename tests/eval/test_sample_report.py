"""Class coverage and quality metrics of samples against real data, on a real-data classifier's features: real
held-out images score like the floor, a collapsed sample set does not; `advnets eval --quality` writes them."""
import json

import numpy as np
import pytest

from advnets.data import load_split
from advnets.eval.classifier import train_classifier
from advnets.eval.sample_report import class_frequencies, sample_report
from advnets.threads import torch_threads
from tests.conftest import FAST_RECIPE as FAST


@pytest.fixture(scope="module")
def splits():
    return load_split("digits", "train"), load_split("digits", "valid"), load_split("digits", "test")


@pytest.fixture(scope="module")
def clf(splits):
    train, valid, _ = splits
    with torch_threads(1):
        return train_classifier(train.images, train.labels, valid.images, valid.labels, seed=0, recipe=FAST)


def test_class_frequencies():
    assert class_frequencies(np.array([0, 0, 2, 1]), 4).tolist() == [0.5, 0.25, 0.25, 0.0]


def test_real_images_score_like_the_floor_and_a_collapse_does_not(clf, splits):
    train, valid, test = splits
    real = sample_report(train.images[:300], clf, valid.images, test.images, train.labels)
    assert real["class_coverage"]["classes_captured"] == 10 and real["class_coverage"]["kl"] < 0.1
    assert real["quality"]["recall"] > 0.6 and real["quality"]["coverage"] > 0.6
    assert real["quality"]["floor"]["recall"] > 0.6                     # test vs valid: the floor, computed too
    # "the Helvetica scenario": every sample one of two training images (one class each)
    twos = np.flatnonzero(train.labels == 2)[0], np.flatnonzero(train.labels == 7)[0]
    collapsed = train.images[np.resize(np.array(twos), 300)]
    bad = sample_report(collapsed, clf, valid.images, test.images, train.labels)
    assert bad["class_coverage"]["classes_captured"] <= 2 and bad["class_coverage"]["kl"] > 1.0
    assert bad["quality"]["recall"] < 0.1 and bad["quality"]["coverage"] < 0.15
    assert bad["quality"]["fd"] > 5 * real["quality"]["fd"]
    json.dumps(bad)                                                      # plain JSON: no numpy scalars, no NaN


def test_eval_quality_command(tmp_path, digits_images, tiny_overrides, digits_classifier_cache, capsys):
    from advnets.cli import main
    from advnets.config import make_config
    from advnets.training import train

    train(make_config(overrides={**tiny_overrides, "train.max_steps": 3}), tmp_path / "run",
          train_images=digits_images)
    assert main(["eval", str(tmp_path / "run"), "--quality", "--n-samples", "200"]) == 0
    out = capsys.readouterr().out
    assert "classes captured" in out and "Frechet distance" in out and "real (test vs valid)" in out
    report = json.loads((tmp_path / "run" / "eval" / "quality.json").read_text())
    assert report["n_samples"] == 200 and set(report["quality"]["floor"]) >= {"fd", "kid", "precision", "recall"}
    assert report["class_coverage"]["floor"]["classes_captured"] == 10
