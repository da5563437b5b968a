"""Stacked-MNIST mode coverage (eval/stacked_coverage.py): the metric against a brute-force count, the per-channel
classifier, the real-data floor, and `advnets eval --coverage` on a tiny stacked-mnist run."""
import json
import math
import random
from collections import Counter

import numpy as np
import pytest
import torch

from advnets.cli import main
from advnets.config import DataConfig
from advnets.data.registry import load_stacked_labels, load_stacked_test
from advnets.eval import classifier
from advnets.eval.classifier import Recipe
from advnets.eval.run_reports import coverage_report, quality_report
from advnets.eval.stacked_coverage import StackedClassifier, stacked_coverage, stacked_mode_frequencies
from advnets.run import load_run
from tests.conftest import TINY, cli_sets

# The digit classifier at a size that trains in seconds on the 4,000 mnist-5k digits (about 91% right on the
# held-out ones) and reads 78,000 in a few.
SMALL = Recipe(channels=(4, 8), hidden=32, dropout=0.0, shift=0, steps=100, min_epochs=1, batch_size=100, lr=5e-3)
STACKED = DataConfig(dataset="stacked-mnist", stack_size=2000, download=False)


# --- the metric against a brute-force count --------------------------------------------------------------------------


def brute_force(triples, train_labels) -> dict:
    """The definition, counted with dicts over triples of digits read from the labels' decimal digits."""
    channels = [Counter() for _ in range(3)]
    for label in train_labels:
        for c, ch in enumerate(f"{int(label):03d}"):
            channels[c][int(ch)] += 1
    m = len(train_labels)
    histogram = Counter(tuple(int(d) for d in t) for t in triples)
    n = len(triples)
    kl = kl_uniform = 0.0
    for (a, b, c), count in histogram.items():
        q = count / n
        p = channels[0][a] / m * channels[1][b] / m * channels[2][c] / m
        kl += q * (math.log(q / p) if p > 0 else math.inf)
        kl_uniform += q * math.log(q * 1000)
    return {"modes_captured": len(histogram), "kl": kl, "kl_uniform": kl_uniform, "histogram": histogram, "n": n}


def check(triples, train_labels):
    """stacked_coverage of the triples, given as (N, 3) digits and as labels, equals the brute-force count."""
    triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
    expected = brute_force(triples.tolist(), train_labels)
    frequencies = stacked_mode_frequencies(train_labels)
    for given in (triples, triples @ np.array([100, 10, 1]), torch.as_tensor(triples)):
        got = stacked_coverage(given, frequencies)
        assert got["modes_captured"] == expected["modes_captured"] and got["n"] == expected["n"]
        assert got["kl"] == pytest.approx(expected["kl"], rel=1e-9, abs=1e-12)
        assert got["kl_uniform"] == pytest.approx(expected["kl_uniform"], rel=1e-9, abs=1e-12)
        assert {(i // 100, i // 10 % 10, i % 10): h for i, h in enumerate(got["histogram"]) if h} == \
            dict(expected["histogram"])
    return got


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_histograms(seed):
    rng = random.Random(seed)
    train = [rng.randrange(1000) for _ in range(rng.randrange(200, 3000))]
    samples = [[rng.choice([0, 1, 2, 3, 7]), rng.randrange(10), rng.randrange(10)]     # red: only 5 digits
               for _ in range(rng.randrange(1, 2000))]
    got = check(samples, train)
    assert 0 < got["modes_captured"] <= 500 and got["kl"] > 0 and got["kl_uniform"] > 0


def test_one_mode_only():
    train = list(range(1000))                                           # every digit equally often in every channel
    got = check([[3, 1, 4]] * 50, train)
    assert got["modes_captured"] == 1 and got["kl"] == pytest.approx(math.log(1000)) == got["kl_uniform"]


def test_every_mode_once():
    got = check([[a, b, c] for a in range(10) for b in range(10) for c in range(10)], list(range(1000)))
    assert got["modes_captured"] == 1000 and got["kl"] == pytest.approx(0, abs=1e-12) and got["kl_uniform"] == 0


def test_unbalanced_data_and_missing_channel_digits():
    rng = random.Random(4)
    # the data never shows a 9 in the blue channel and few 0s in the red one: p is zero on 100 triples
    train = [rng.choice([0] + [1, 2, 3, 4, 5, 6, 7, 8, 9] * 5) * 100 + rng.randrange(10) * 10 + rng.randrange(9)
             for _ in range(5000)]
    p = stacked_mode_frequencies(train)
    assert p.sum() == pytest.approx(1) and (p == 0).sum() == 100 and p[100 * 0 + 10 * 5 + 9] == 0
    avoiding = [[rng.randrange(10), rng.randrange(10), rng.randrange(9)] for _ in range(700)]
    got = check(avoiding, train)
    assert math.isfinite(got["kl"]) and got["kl"] != pytest.approx(got["kl_uniform"])
    hitting = check(avoiding + [[2, 2, 9]], train)                     # one sample where the data has none
    assert hitting["kl"] == math.inf and math.isfinite(hitting["kl_uniform"])


def test_no_samples_and_bad_input():
    empty = stacked_coverage(np.zeros((0, 3), np.int64), np.ones(1000))
    assert empty["modes_captured"] == 0 and empty["n"] == 0 and math.isnan(empty["kl"])
    with pytest.raises(ValueError):
        stacked_coverage([[1, 2, 10]], np.ones(1000))                  # a digit is 0..9
    with pytest.raises(ValueError):
        stacked_coverage([1000], np.ones(1000))                        # a triple is 0..999
    with pytest.raises(ValueError):
        stacked_coverage([5], np.ones(10))                             # p covers the 1,000 triples


# --- the classifier and the real-data floor --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One data cache for the module: the digit classifier is trained once (with SMALL) and then loaded."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADVNETS_DATA", str(tmp_path_factory.mktemp("stacked-cache")))
        mp.setenv("ADVNETS_MIRROR", "http://127.0.0.1:1/")            # no network: mnist-5k's halves are held out
        real = classifier.load_or_train_classifier
        mp.setattr(classifier, "load_or_train_classifier", lambda data, **kw: real(data, **{**kw, "recipe": SMALL}))
        yield


@pytest.fixture(scope="module")
def stacked_classifier(cache):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                                           # module scope: before conftest's fixture
    try:
        return classifier.load_or_train_classifier(STACKED)
    finally:
        torch.set_num_threads(threads)


def test_the_source_digit_classifier_reads_each_channel(stacked_classifier):
    clf = stacked_classifier
    digit = classifier.load_or_train_classifier(DataConfig(dataset="mnist-5k"))   # a mnist-5k run's: the same file
    assert isinstance(clf, StackedClassifier) and digit.info["source"] == "loaded"
    assert digit.info["cache_path"] == clf.info["cache_path"] and clf.num_classes == 1000
    assert clf.image_shape == (3, 28, 28) and clf.held_out_accuracy == pytest.approx(digit.held_out_accuracy ** 3)
    digits, real = load_stacked_test(STACKED, 300)
    per_channel = np.stack([digit.predict(real.images[:, c:c + 1]) for c in range(3)], 1)    # (300, 3)
    predicted = clf.predict(real.images)
    assert np.array_equal(predicted, per_channel @ [100, 10, 1])
    assert np.array_equal(clf.predict(torch.as_tensor(real.images).flatten(1), batch_size=7), predicted)
    probabilities = clf.probabilities(real.images)
    assert probabilities.shape == (300, 1000) and np.allclose(probabilities.sum(1), 1, atol=1e-4)
    assert (probabilities.argmax(1) == predicted).mean() > 0.99        # the best triple: each channel's best digit
    features = clf.features(real.images[:20])
    assert features.shape == (20, 3 * SMALL.hidden)
    assert np.allclose(features[:, SMALL.hidden:2 * SMALL.hidden], digit.features(real.images[:20, 1:2]), atol=1e-5)


def test_real_stacks_capture_nearly_every_mode(stacked_classifier):
    """The floor: 26,000 real stacks of held-out digits, read by the classifier, reach nearly all 1,000 triples
    with a KL far below a collapsed generator's (log 1000 = 6.9 for one mode, 0.69 for half the modes)."""
    digits, real = load_stacked_test(STACKED, 26_000)
    assert len(digits.test) == 500                                     # offline: half of the held-out digits
    frequencies = stacked_mode_frequencies(load_stacked_labels(STACKED))    # of the 2,000 training stacks
    truth = stacked_coverage(real.labels, frequencies)                # what the stacks are
    read = stacked_coverage(stacked_classifier.predict(real.images), frequencies)   # what the classifier sees
    assert truth["modes_captured"] >= 995 and truth["kl"] < 0.05
    assert read["modes_captured"] >= 990 and read["kl"] < 0.1 and read["kl_uniform"] < 0.1


# --- `advnets train` and `advnets eval --coverage` on a tiny stacked-mnist run ---------------------------------------


@pytest.fixture(scope="module")
def stacked_run(tmp_path_factory, cache):
    run = tmp_path_factory.mktemp("stacked-run") / "run"
    overrides = {**TINY, "data.stack_size": 400, "data.download": False, "train.max_steps": 3,
                 "train.tensorboard": False}
    assert main(["train", "--dataset", "stacked-mnist", "--out", str(run), "--no-progress", *cli_sets(overrides)]) == 0
    return run


def test_train_then_eval_coverage(stacked_run, stacked_classifier, capsys):
    run = stacked_run
    assert main(["eval", str(run), "--coverage", "--coverage-samples", "600", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    report = json.loads((run / "eval" / "coverage.json").read_text())
    assert report["dataset"] == "stacked-mnist" and report["modes"] == 1000 and report["n"] == 600
    assert sum(report["histogram"]) == 600 and report["modes_captured"] == sum(h > 0 for h in report["histogram"])
    assert report["floor"]["n"] == 600 and report["floor"]["modes_captured"] > report["modes_captured"]
    assert len(report["classifier"]["per_class"]) == 10 and report["classifier"]["n"] == 500
    # the same numbers as the library's, and as the metric applied to the run's samples
    assert json.dumps(report) == json.dumps(json.loads(json.dumps(coverage_report(load_run(run), n_samples=600,
                                                                                   seed=2))))
    frequencies = stacked_mode_frequencies(load_run(run).load_split("train").labels)
    direct = stacked_coverage(stacked_classifier.predict(load_run(run).sample(600, seed=2)), frequencies)
    assert report["modes_captured"] == direct["modes_captured"]
    assert report["kl"] == pytest.approx(direct["kl"]) and report["kl_uniform"] == pytest.approx(direct["kl_uniform"])
    assert f"{report['modes_captured']}/1000 modes captured" in out and "floor" in out and "per digit" in out


def test_quality_of_a_stacked_run_reads_the_channels_features(stacked_run, stacked_classifier):
    """--quality works on stacks: the three channels' digit features side by side, the classes are the triples."""
    report = quality_report(load_run(stacked_run), n_samples=200)
    coverage = report["class_coverage"]
    assert len(coverage["histogram"]) == 1000 and report["n_valid"] == report["n_test"] == 400
    assert coverage["floor"]["classes_captured"] > 250 > 100 > coverage["classes_captured"]   # 400 real stacks vs a blur
    assert report["quality"]["fd"] > report["quality"]["floor"]["fd"] >= 0
