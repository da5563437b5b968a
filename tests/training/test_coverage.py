"""Mode coverage in the epoch lines (training/coverage_monitor.py): wired to the run's G, cheap, and not disturbing it."""
import math

import numpy as np
import pytest
import torch

from advnets.config import make_config
from advnets.data.mixtures import mixture_means, mixture_sigma, sample_mixture
from advnets.errors import ConfigError
from advnets.eval.coverage import mixture_coverage
from advnets.run.layout import read_metrics
from advnets.training.trainer import Trainer

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
    num_classes = 2

    def predict(self, images):
        return (np.asarray(images).reshape(len(images), -1).mean(1) > 0.5).astype(np.int64)


def test_labelled_images_log_classes_captured(monkeypatch, tiny_overrides, digits_images):
    import advnets.training.coverage_monitor as monitor

    asked = []
    monkeypatch.setattr(monitor, "load_or_train_classifier",
                        lambda data_config, device=None: asked.append(device) or _MeanPixelClassifier())
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
