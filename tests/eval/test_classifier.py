"""The real-data classifier that checks class-conditional samples: training on the 8x8 digits, accuracy, the cache,
determinism, unlabelled data."""
import os
import warnings

import numpy as np
import pytest
import torch

from advnets.config import DataConfig
from advnets.data import load_split
from advnets.errors import DataError
from advnets.eval import classifier
from advnets.eval.classifier import (ClassifierCacheWarning, SmallCNN, class_accuracy, load_or_train_classifier,
                                     train_classifier)
from tests.conftest import FAST_RECIPE as FAST


@pytest.fixture(scope="module")
def digits():
    return load_split("digits", "train"), load_split("digits", "valid")


@pytest.fixture(scope="module")
def trained(digits):
    train, valid = digits
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                                           # module scope: before conftest's fixture
    try:
        return train_classifier(train.images, train.labels, valid.images, valid.labels, seed=0, recipe=FAST)
    finally:
        torch.set_num_threads(threads)


def test_trained_on_real_digits(trained, digits):
    _, valid = digits
    assert trained.held_out_accuracy > 0.9                             # chance is 0.1
    assert trained.held_out_size == len(valid) == 269
    assert trained.image_shape == (1, 8, 8) and trained.num_classes == 10
    assert trained.info["train_size"] == 1258 and trained.info["updates"] == trained.info["epochs"] * 20
    assert not trained.net.training
    labels = trained.predict(valid.images)
    assert labels.shape == (269,) and labels.dtype == np.int64
    assert np.array_equal(trained.predict(torch.as_tensor(valid.images).flatten(1), batch_size=7), labels)
    probs = trained.probabilities(valid.images)
    assert probs.shape == (269, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_class_accuracy(trained, digits):
    _, valid = digits
    right = class_accuracy(trained, valid.images, valid.labels)
    assert right["accuracy"] == trained.held_out_accuracy and right["n"] == 269
    confusion = np.array(right["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 269
    assert np.array_equal(confusion.sum(1), np.bincount(valid.labels, minlength=10))   # rows: intended class
    assert np.trace(confusion) / 269 == pytest.approx(right["accuracy"])
    assert np.allclose(right["per_class"], confusion.diagonal() / confusion.sum(1))
    wrong = class_accuracy(trained, valid.images, (valid.labels + 1) % 10)
    assert wrong["accuracy"] <= 1 - trained.held_out_accuracy < 0.1


def test_features_are_the_penultimate_layer(trained, digits):
    _, valid = digits
    features = trained.features(valid.images, batch_size=100)
    assert features.shape == (269, FAST.hidden) and features.dtype == np.float32
    assert (features >= 0).all() and (features.std(0) > 0).sum() > FAST.hidden // 2   # ReLU units, most of them alive
    logits = trained.net.head[-1](torch.from_numpy(features))        # the last layer on them gives the classes
    np.testing.assert_allclose(torch.softmax(logits, 1).detach().numpy(), trained.probabilities(valid.images),
                               atol=1e-5)
    assert trained.features(valid.images[:0]).shape == (0, FAST.hidden)


def test_deterministic_and_leaves_global_rng_alone(trained, digits):
    train, valid = digits
    before = torch.random.get_rng_state()
    again = train_classifier(train.images, train.labels, valid.images, valid.labels, seed=0, recipe=FAST)
    assert torch.equal(torch.random.get_rng_state(), before)
    for name, value in trained.net.state_dict().items():
        assert torch.equal(value, again.net.state_dict()[name]), name
    assert np.array_equal(again.predict(valid.images), trained.predict(valid.images))
    other = train_classifier(train.images, train.labels, valid.images, valid.labels, seed=1, recipe=FAST, epochs=1)
    assert not torch.equal(other.net.head[0].weight, trained.net.head[0].weight)


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 7), (1, 28, 28), (3, 32, 32)])
def test_any_image_shape(shape):
    net = SmallCNN(shape, 4, FAST)
    assert net(torch.rand(2, *shape)).shape == (2, 4)


def test_cache_loads_without_training(tmp_path, monkeypatch, digits):
    config = DataConfig(dataset="digits")
    first = load_or_train_classifier(config, cache_dir=tmp_path, recipe=FAST)
    files = list((tmp_path / "classifiers").glob("*.pt"))
    assert first.info["source"] == "trained" and [str(f) for f in files] == [first.info["cache_path"]]
    stamp = os.stat(files[0]).st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("trained again despite the cache")

    monkeypatch.setattr(classifier, "train_classifier", no_training)
    second = load_or_train_classifier(config, cache_dir=tmp_path, recipe=FAST)
    assert second.info["source"] == "loaded" and os.stat(files[0]).st_mtime_ns == stamp
    assert second.held_out_accuracy == first.held_out_accuracy and second.image_shape == (1, 8, 8)
    images = digits[1].images
    assert np.array_equal(second.predict(images), first.predict(images))
    assert np.array_equal(second.probabilities(images), first.probabilities(images))
    with pytest.raises(AssertionError, match="trained again"):        # another seed is another cache entry
        load_or_train_classifier(config, cache_dir=tmp_path, recipe=FAST, seed=1)


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_damaged_cache_is_retrained(tmp_path, damage):
    config = DataConfig(dataset="digits")
    first = load_or_train_classifier(config, cache_dir=tmp_path, recipe=FAST)
    path = first.info["cache_path"]
    if damage == "truncated":
        os.truncate(path, os.path.getsize(path) // 2)
    else:
        torch.save({"key": "another dataset", "net": {}}, path)
    with pytest.warns(ClassifierCacheWarning, match="training a new one") as caught:
        second = load_or_train_classifier(config, cache_dir=tmp_path, recipe=FAST)
    assert "\n" not in str(caught[0].message)                          # the CLI prints it as one line
    assert second.info["source"] == "trained" and second.held_out_accuracy == first.held_out_accuracy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = load_or_train_classifier(config, cache_dir=tmp_path, recipe=FAST)   # the file was replaced
    assert third.info["source"] == "loaded"


def test_unlabelled_folder_is_an_error(tmp_path, digits):
    from PIL import Image

    for i, image in enumerate(digits[0].images[:12]):                 # real digits, saved without their labels
        Image.fromarray((image[0] * 255).astype(np.uint8)).save(tmp_path / f"{i:02d}.png")
    with pytest.raises(DataError, match="no labels") as info:
        load_or_train_classifier(DataConfig(dataset="folder", data_dir=str(tmp_path), image_size=8),
                                 cache_dir=tmp_path / "cache")
    assert info.value.hint and "\n" not in str(info.value)
    assert not (tmp_path / "cache").exists()
