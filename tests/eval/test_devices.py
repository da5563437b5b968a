"""Every evaluation computes on the device it is given (the run's, or --device): the real-data classifier
(trained, loaded, features), Parzen blocks, nearest neighbours, and the classifier of coverage during training.
The CPU tests check that the device is passed along and honoured; the CUDA tests run it on a GPU when there is one."""
import numpy as np
import pytest
import torch

from advnets.config import DataConfig, make_config
from advnets.data import load_split
from advnets.eval import classifier, neighbours, parzen
from advnets.eval.classifier import cache_key, load_or_train_classifier, train_classifier
from advnets.eval.neighbours import nearest_neighbours
from tests.conftest import FAST_RECIPE as FAST

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def digits():
    return load_split("digits", "train"), load_split("digits", "valid")


def test_eval_passes_the_run_device_to_every_computation(tmp_path, monkeypatch, digits_images, tiny_overrides):
    from advnets.cli import main
    from advnets.training import train

    monkeypatch.setenv("ADVNETS_DATA", str(tmp_path / "cache"))
    train(make_config(overrides={**tiny_overrides, "train.max_steps": 3, "train.tensorboard": False}),
          tmp_path / "run", train_images=digits_images)
    asked = {}

    def spy(name, real, **extra):
        def call(*args, **kwargs):
            asked[name] = kwargs.get("device")
            return real(*args, **{**kwargs, **extra})
        monkeypatch.setattr({"classifier": classifier, "parzen": parzen, "nearest": neighbours}[name],
                            real.__name__, call)

    spy("classifier", classifier.load_or_train_classifier, recipe=FAST)
    spy("parzen", parzen.parzen_evaluate)
    spy("nearest", neighbours.memorisation_report)
    assert main(["eval", str(tmp_path / "run"), "--device", "cpu", "--parzen", "--nearest", "--quality",
                 "--n-samples", "100", "--sigmas", "0.2,0.5"]) == 0
    assert asked == {"classifier": torch.device("cpu"), "parzen": torch.device("cpu"),
                     "nearest": torch.device("cpu")}


def test_classifier_trains_and_answers_on_its_device(digits):
    train, valid = digits
    clf = train_classifier(train.images[:300], train.labels[:300], valid.images, valid.labels, seed=0,
                           recipe=FAST, epochs=1, device="cpu")
    assert clf.device == torch.device("cpu") and clf.info["device"] == "cpu"
    assert all(p.device == clf.device for p in clf.net.parameters())
    # any input (numpy, a float64 tensor) is taken to the classifier's device and float32 there
    a = clf.features(valid.images[:50])
    b = clf.features(torch.as_tensor(valid.images[:50], dtype=torch.float64))
    assert a.dtype == np.float32 and np.array_equal(a, b)
    # a GPU's classifier is another cache entry; the CPU's keeps its key
    keys = {cache_key(DataConfig(dataset="digits"), train, valid, 0, FAST, kind) for kind in ("cpu", "cuda")}
    assert len(keys) == 2 and cache_key(DataConfig(dataset="digits"), train, valid, 0, FAST) in keys


def test_nearest_neighbours_are_on_the_device_asked_for():
    rng = np.random.default_rng(0)
    q, r = rng.random((20, 5), dtype=np.float32), rng.random((50, 5), dtype=np.float32)
    index, distance = nearest_neighbours(q, r, chunk=16, device="cpu")
    assert index.device.type == distance.device.type == "cpu"
    brute = np.sqrt(((q[:, None].astype(np.float64) - r[None]) ** 2).sum(-1))
    assert np.array_equal(index.numpy(), brute.argmin(1)) and np.allclose(distance.numpy(), brute.min(1))


@CUDA
def test_classifier_on_cuda(tmp_path, digits):
    train, valid = digits
    clf = load_or_train_classifier(DataConfig(dataset="digits"), cache_dir=tmp_path, recipe=FAST, device="cuda")
    assert clf.device.type == "cuda" and all(p.is_cuda for p in clf.net.parameters())
    assert clf.held_out_accuracy > 0.9 and clf.info["device"].startswith("cuda")
    again = load_or_train_classifier(DataConfig(dataset="digits"), cache_dir=tmp_path, recipe=FAST, device="cuda")
    assert again.info["source"] == "loaded" and again.device.type == "cuda"
    assert np.array_equal(again.predict(valid.images), clf.predict(torch.as_tensor(valid.images).cuda()))


@CUDA
def test_parzen_and_neighbours_on_cuda():
    rng = np.random.default_rng(0)
    samples, valid, test = (rng.random((n, 16), dtype=np.float32) for n in (300, 100, 100))
    cpu = parzen.parzen_evaluate(samples, valid, test, [0.2, 0.5], device="cpu")
    gpu = parzen.parzen_evaluate(samples, valid, test, [0.2, 0.5], device="cuda")
    assert gpu.sigma == cpu.sigma and gpu.test_mean == pytest.approx(cpu.test_mean, abs=1e-3)
    index, distance = nearest_neighbours(test, samples, device="cuda")
    assert index.is_cuda and distance.is_cuda
    assert torch.equal(index.cpu(), nearest_neighbours(test, samples)[0])


@CUDA
def test_class_coverage_during_training_on_cuda(tmp_path, monkeypatch, tiny_overrides, digits_images):
    from advnets.training import Trainer

    monkeypatch.setenv("ADVNETS_DATA", str(tmp_path / "cache"))
    real = classifier.load_or_train_classifier
    monkeypatch.setattr(classifier, "load_or_train_classifier", lambda data, **kw: real(data, recipe=FAST, **kw))
    cfg = make_config(overrides={**tiny_overrides, "train.device": "cuda", "train.epochs": 1,
                                 "train.coverage_every_epochs": 1, "train.tensorboard": False})
    labels = load_split("digits", "train").labels
    trainer = Trainer(cfg, None, train_images=digits_images, train_labels=labels)
    assert trainer.coverage.classifier.device.type == "cuda" and trainer.coverage.noise.is_cuda
    assert 1 <= trainer.run().last_metrics["classes_captured"] <= 10
