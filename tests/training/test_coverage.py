"""Mode coverage in the epoch lines (training/coverage_monitor.py): wired to the run's G, cheap, and not disturbing it."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from advnets.config import DATASETS, make_config
from advnets.data.mixtures import mixture_means, mixture_sigma, sample_mixture
from advnets.errors import ConfigError
from advnets.eval.coverage import mixture_coverage
from advnets.run.layout import read_metrics
from advnets.training.coverage_monitor import coverage_every
from advnets.training.trainer import Trainer
from tests.conftest import TINY

# a few seconds: tiny nets on 2,000 grid points, 20 iterations an epoch
SMALL_GRID = {"model.generator_hidden": [32, 32], "model.discriminator_units": [16, 16], "train.epochs": 3,
              "train.tensorboard": False}


def _grid_trainer(run_dir=None, **overrides):
    cfg = make_config("grid", {**SMALL_GRID, **overrides})
    points, labels = sample_mixture("grid", 2000, seed=0)
    return Trainer(cfg, run_dir, train_images=points.reshape(-1, 1, 1, 2), train_labels=labels)


def test_grid_run_logs_the_three_numbers_in_every_epoch_line(tmp_path):
    trainer = _grid_trainer(tmp_path / "run")
    trainer.run()
    lines = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "epoch"]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    for r in lines:
        assert 0 <= r["modes_captured"] <= 25 and 0.0 <= r["high_quality"] <= 1.0
        assert r["reverse_kl"] is None or 0.0 <= r["reverse_kl"] <= math.log(25) + 1e-4   # rounded to 4 places
    # the last line is the coverage of the trained G (the preset samples the moving average of its weights) on the
    # tracker's fixed noise, by the metrics function
    assert trainer.sampler is trainer.state.average.module
    with torch.no_grad():
        samples = trainer.sampler.eval()(trainer.coverage.noise).reshape(-1, 2)
    expected = mixture_coverage(samples, mixture_means("grid"), mixture_sigma("grid"))
    assert len(trainer.coverage.noise) == 2500
    assert lines[-1]["modes_captured"] == expected["modes_captured"]
    assert lines[-1]["high_quality"] == round(expected["high_quality"], 4)


def test_coverage_does_not_change_training():
    on, off = _grid_trainer(), _grid_trainer(**{"train.coverage_every_epochs": 0})
    assert off.coverage is None
    on.run(), off.run()
    for a, b in zip([*on.generator.parameters(), *on.discriminator.parameters()],
                    [*off.generator.parameters(), *off.discriminator.parameters()]):
        assert torch.equal(a, b)


def test_coverage_every_n_epochs_and_on_the_last_line(tmp_path):
    _grid_trainer(tmp_path / "run", **{"train.coverage_every_epochs": 2, "train.epochs": 3}).run()
    lines = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "epoch"]
    assert ["modes_captured" in r for r in lines] == [False, True, True]


def test_a_collapsed_generator_shows_one_mode():
    """The Helvetica scenario itself: G sends every z to one mean; the line says 1 mode, all HQ, KL log 25."""
    trainer = _grid_trainer()
    out = trainer.generator.layers[-1]
    with torch.no_grad():
        out.weight.zero_()
        out.bias.copy_(torch.tensor([2.0, -4.0]))
    figures = trainer.coverage(trainer.sampler)
    assert figures["modes_captured"] == 1 and figures["high_quality"] == 1.0
    assert figures["reverse_kl"] == round(math.log(25), 4)


def test_ring_preset_tracks_coverage_and_the_run_seed_draws_the_data():
    trainer = Trainer(make_config("ring", {**SMALL_GRID, "train.seed": 4, "train.max_steps": 1}), None)
    assert trainer.data.images.shape == (100_000, 2)
    assert torch.equal(trainer.data.images[:5], torch.as_tensor(sample_mixture("ring", 100_000, 4)[0][:5]))
    record = trainer.run().last_metrics
    assert record["partial"] and {"modes_captured", "high_quality", "reverse_kl"} <= set(record)


class _MeanPixelClassifier:
    """Stands in for the package's classifier: class 1 if the image's mean pixel is above 0.5."""
    num_classes, held_out_accuracy, info = 2, 1.0, {"source": "loaded"}

    def predict(self, images):
        return (np.asarray(images).reshape(len(images), -1).mean(1) > 0.5).astype(np.int64)


def test_labelled_images_log_classes_captured(monkeypatch, tiny_overrides, digits_images):
    import advnets.training.coverage_monitor as monitor

    asked = []
    monkeypatch.setattr(monitor, "load_or_train_classifier",
                        lambda data_config, device=None, **kw: asked.append(device) or _MeanPixelClassifier())
    cfg = make_config(None, {**tiny_overrides, "train.epochs": 1, "train.coverage_every_epochs": 1,
                             "train.coverage_samples": 300, "train.tensorboard": False})
    labels = np.arange(200) % 2
    trainer = Trainer(cfg, None, train_images=digits_images[:200], train_labels=labels)
    assert asked == [trainer.device]                    # the classifier is put on the run's device
    record = trainer.run().last_metrics
    with torch.no_grad():
        samples = trainer.generator.eval()(trainer.coverage.noise)
    predicted = _MeanPixelClassifier().predict(samples)
    q = np.bincount(predicted, minlength=2) / 300
    assert record["classes_captured"] == int((q > 0).sum())
    assert record["class_kl"] == pytest.approx(sum(p * math.log(p / 0.5) for p in q if p > 0), abs=1e-4)


def test_coverage_needs_labels_or_a_mixture(tiny_overrides, digits_images):
    cfg = make_config(None, {**tiny_overrides, "train.coverage_every_epochs": 1})
    with pytest.raises(ConfigError, match="labelled"):
        Trainer(cfg, None, train_images=digits_images[:100], train_labels=None)


def test_labelled_images_with_the_real_classifier(digits_classifier_cache, tiny_overrides, digits_images):
    """The package's own digits classifier (the session's, in the cache): the epoch line's classes equal its
    predictions on the run's coverage samples, and a G collapsed onto one image shows one class."""
    from advnets.data import load_split
    from advnets.eval.classifier import load_or_train_classifier

    cfg = make_config(None, {**tiny_overrides, "train.epochs": 1, "train.coverage_every_epochs": 1,
                             "train.coverage_samples": 400, "train.tensorboard": False})
    train = load_split("digits", "train")
    trainer = Trainer(cfg, None, train_images=train.images, train_labels=train.labels)
    record = trainer.run().last_metrics
    clf = load_or_train_classifier(cfg.data)                           # the cached one, as the run used it
    assert clf.held_out_accuracy > 0.8
    assert trainer.coverage.summary["classifier"] == "loaded"
    assert trainer.coverage.summary["held_out_accuracy"] == round(clf.held_out_accuracy, 4)
    with torch.no_grad():
        predicted = clf.predict(trainer.sampler.eval()(trainer.coverage.noise))
    assert record["classes_captured"] == len(np.unique(predicted))
    # collapse: G's output bias set to one real "3" and its weights to zero draws that digit every time
    with torch.no_grad():
        for p in trainer.generator.parameters():
            p.zero_()
        three = train.images[np.flatnonzero(train.labels == 3)[0]].reshape(-1).astype(np.float64)
        trainer.generator.layers[-1].bias.copy_(torch.logit(torch.as_tensor(three).clamp(1e-3, 1 - 1e-3)))
    collapsed = trainer.coverage(trainer.sampler)
    assert collapsed["classes_captured"] == 1 and collapsed["class_kl"] > 1.5     # log(10) = 2.3 at most


# --- on by default where it is cheap (coverage_monitor.AUTO_DATASETS) ---------------------------------------------

# TINY without its "coverage off": what a run gets without setting anything
UNSET = {k: v for k, v in TINY.items() if k != "train.coverage_every_epochs"}


class _ScriptedClassifier:
    """Stands in for a 10-class classifier: evaluation i (the one timed at the start is 0) sees its samples spread
    evenly over the first `classes[i]` classes (all 10 after the script ends)."""
    num_classes, held_out_accuracy, info = 10, 0.99, {"source": "loaded"}

    def __init__(self, classes=()):
        self.classes, self.calls = list(classes), 0

    def predict(self, images):
        k = self.classes[self.calls] if self.calls < len(self.classes) else 10
        self.calls += 1
        return np.arange(len(images)) % k


@pytest.fixture
def scripted(monkeypatch):
    """`scripted(classes)` puts a _ScriptedClassifier in place of the package's classifier; returns it."""
    import advnets.training.coverage_monitor as monitor

    def install(classes=()):
        clf = _ScriptedClassifier(classes)
        monkeypatch.setattr(monitor, "load_or_train_classifier", lambda data_config, **kw: clf)
        return clf
    return install


@pytest.mark.parametrize("dataset", [*DATASETS, "stacked-mnist"])
def test_on_by_default_for_cheap_labelled_images_and_the_mixtures(dataset):
    cfg = SimpleNamespace(data=SimpleNamespace(dataset=dataset), train=SimpleNamespace(coverage_every_epochs=None))
    cheap = dataset in ("mnist", "mnist-5k", "fashion-mnist", "stacked-mnist", "grid", "ring")
    assert coverage_every(cfg) == int(cheap)
    assert coverage_every(cfg, images_given=True) == 0          # the dataset's classifier need not know them
    for every in (0, 3):
        cfg.train.coverage_every_epochs = every
        assert coverage_every(cfg) == every == coverage_every(cfg, images_given=True)


def test_a_mnist_5k_run_measures_coverage_without_being_asked(tmp_path, scripted):
    scripted()
    cfg = make_config("paper-mnist-5k", {**UNSET, "data.dataset": "mnist-5k", "train.epochs": 2,
                                         "train.batch_size": 100, "train.tensorboard": False})
    assert cfg.train.coverage_every_epochs is None
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.run()
    lines = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "epoch"]
    assert [(r["classes_captured"], r["class_kl"] < 0.05) for r in lines] == [(10, True)] * 2
    s = trainer.coverage.summary          # what the start line says
    assert s["samples"] == 500 and s["total"] == 10 and s["classifier"] == "loaded" and s["seconds"] >= 0
    assert s["held_out_accuracy"] == 0.99 and s["every"] == 1 and s["dataset"] == "mnist-5k"


def test_digits_and_images_given_in_python_are_off_by_default(digits_images):
    assert Trainer(make_config(None, UNSET), None).coverage is None                   # digits
    cfg = make_config("paper-mnist-5k", {**UNSET, "data.dataset": "mnist-5k"})
    assert Trainer(cfg, None, train_images=digits_images[:400], train_labels=np.arange(400) % 10).coverage is None


def test_class_coverage_does_not_change_training(scripted):
    scripted()
    cfg = {**UNSET, "train.epochs": 2, "train.tensorboard": False}
    on, off = (Trainer(make_config(None, {**cfg, "train.coverage_every_epochs": n}), None) for n in (1, 0))
    assert on.coverage is not None and off.coverage is None
    assert "classes_captured" in on.run().last_metrics and "classes_captured" not in off.run().last_metrics
    a, b = on.state_dict(), off.state_dict()
    assert a.pop("config") != b.pop("config")          # the one difference: train.coverage_every_epochs
    assert _equal(a, b)                                 # G, D, their optimisers, the random stream, the position


def _equal(a, b) -> bool:
    """Tensors, and dicts or lists of them, equal bit for bit."""
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def _fell(coverage, classes):
    return [coverage.fell({"classes_captured": k, "class_kl": math.log(10 / k)}) for k in classes]


def test_a_fall_is_flagged_once(scripted, digits_images):
    """The captured classes below half of 10 after a line that showed 8 or more: flagged on that line only, again
    after they recover and fall a second time. An untrained G's few classes, and their number wavering around half
    while G learns them (as a real mnist-5k run does), are no fall."""
    scripted()
    trainer = Trainer(make_config(None, {**UNSET, "train.coverage_every_epochs": 1}), None)
    c = trainer.coverage
    assert (c.threshold, c.arm, c.total) == (5.0, 7.5, 10)        # 500 samples: a uniform G shows all 10
    assert _fell(c, [1, 1, 2, 4, 5, 4, 6, 5, 4, 7, 4]) == [None] * 11
    assert _fell(c, [9, 10, 4, 3, 2, 7, 4, 8, 1, 6]) == \
        [None, None, "classes_captured", None, None, None, None, None, "classes_captured", None]
    # the KL rising by more than log 2 over its lowest, with the classes all there: flagged once too
    kls = [0.5, 0.05, 0.4, 0.9, 1.2, 0.1, 0.8]
    assert [c.fell({"classes_captured": 10, "class_kl": k}) for k in kls] == \
        [None, None, None, "class_kl", None, None, "class_kl"]


def test_many_classes_get_more_samples_and_a_mark_that_allows_for_them(scripted, digits_images):
    """1,000 classes (stacked-mnist's triples): 2 samples per class by default, 2,000, in which a G drawing each
    class equally often shows about 865 of them; the mark is half of that, not of 1,000."""
    scripted()
    cfg = make_config(None, {**UNSET, "train.coverage_every_epochs": 1})
    trainer = Trainer(cfg, None, train_images=digits_images[:1000], train_labels=np.arange(1000))
    c = trainer.coverage
    assert c.summary["samples"] == len(c.noise) == 2000 and c.total == 1000
    assert 860 / 2 < c.threshold < 870 / 2
    assert c(trainer.sampler)["classes_captured"] == 10                  # the scripted classifier's 10
