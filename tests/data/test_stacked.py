"""Stacked MNIST (data/stacked.py, through data/registry.py): three mnist-5k digits per image, drawn from a seed;
labels that name the channels' digits; held-out stacks from held-out digits only; the config's checks."""
from pathlib import Path

import numpy as np
import pytest

from advnets.config import DataConfig, make_config
from advnets.data import load_data_split, load_held_out, load_split
from advnets.data.registry import load_stacked_labels, load_stacked_test
from advnets.data.stacked import draw_stacks, label_digits, stack_digits, triple_labels
from advnets.data.split import Split
from advnets.errors import ConfigError
from advnets.limits import LimitError
from tests.conftest import write_idx_gz

SMALL = {"stack_size": 1500, "download": False}


@pytest.fixture(scope="module")
def digits():
    """The mnist-5k digits the stacks are drawn from: train (4,000) and valid (1,000)."""
    return load_split("mnist-5k", "train"), load_split("mnist-5k", "valid")


def _labelled(split: Split) -> dict:
    """Each digit image's bytes -> its label."""
    return {img.tobytes(): int(label) for img, label in zip(split.images[:, 0], split.labels)}


def _channel_labels(stacks: Split, pool: dict) -> np.ndarray:
    """(N, 3): the label of the pool digit each channel is (KeyError if a channel is not one of them)."""
    return np.array([[pool[channel.tobytes()] for channel in image] for image in stacks.images])


def test_images_and_labels_are_the_channels_digits(digits):
    stacks = load_split("stacked-mnist", "train", seed=3, **SMALL)
    assert stacks.images.shape == (1500, 3, 28, 28) and stacks.images.dtype == np.float32
    assert stacks.labels.dtype == np.int64 and 0 <= stacks.labels.min() and stacks.labels.max() <= 999
    assert stacks.images.min() == 0.0 and stacks.images.max() == 1.0
    seen = _channel_labels(stacks, _labelled(digits[0]))                     # every channel is a training digit ...
    assert np.array_equal(stacks.labels, 100 * seen[:, 0] + 10 * seen[:, 1] + seen[:, 2])   # ... read a, b, c
    assert np.array_equal(label_digits(stacks.labels), seen) and np.array_equal(triple_labels(seen), stacks.labels)
    # three independent uniform draws: each channel's digits near 10% each (1,500 draws: sd 0.8%), channels unlinked
    for c in range(3):
        assert np.abs(np.bincount(seen[:, c], minlength=10) / 1500 - 0.1).max() < 0.04
    assert abs(np.corrcoef(seen[:, 0], seen[:, 1])[0, 1]) < 0.1
    assert load_stacked_labels(DataConfig(dataset="stacked-mnist", **SMALL), run_seed=3).tolist() == \
        stacks.labels.tolist()                                                # the labels alone, the same draw


def test_the_seed_fixes_the_draw(digits):
    a, b, c = (load_split("stacked-mnist", "train", seed=s, **SMALL) for s in (5, 5, 6))
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert (a.labels != c.labels).mean() > 0.9                                # 1 in 1,000 agree by chance
    # the draw is numpy's PCG64 from the seed (the same on every machine), and more stacks extend fewer
    assert np.array_equal(draw_stacks(4, 4000, 5), np.random.default_rng(5).integers(0, 4000, size=(4, 3)))
    assert np.array_equal(draw_stacks(1500, 4000, 5)[:700], draw_stacks(700, 4000, 5))
    more = load_split("stacked-mnist", "train", seed=5, stack_size=2000, download=False)
    assert np.array_equal(more.images[:1500], a.images)


def test_stack_seed_defaults_to_the_run_seed():
    run_seeded = make_config(None, {"data.dataset": "stacked-mnist", "data.stack_size": 300}).data
    assert run_seeded.stack_seed is None and run_seeded.stack_source == "mnist-5k"
    assert np.array_equal(load_data_split(run_seeded, "train", run_seed=8).labels,
                          load_split("stacked-mnist", "train", seed=8, stack_size=300).labels)
    fixed = make_config(None, {"data.dataset": "stacked-mnist", "data.stack_size": 300, "data.stack_seed": 9}).data
    assert np.array_equal(load_data_split(fixed, "train", run_seed=8).labels,
                          load_split("stacked-mnist", "train", seed=9, stack_size=300).labels)
    assert make_config(None, {"data.dataset": "stacked-mnist"}).data.stack_size == 128_000


def test_held_out_stacks_draw_only_held_out_digits(digits):
    train, valid = digits
    pool_train, pool_valid = _labelled(train), _labelled(valid)
    assert not pool_train.keys() & pool_valid.keys()
    stacks = load_split("stacked-mnist", "valid", seed=3, **SMALL)
    assert stacks.images.shape == (1500, 3, 28, 28)                           # stack_size < 10,000: that many
    seen = _channel_labels(stacks, pool_valid)                                # only valid digits
    assert np.array_equal(triple_labels(seen), stacks.labels)
    # its own draw: not the train draw's indices taken from another pool
    assert not np.array_equal(draw_stacks(1500, 1000, 3), draw_stacks(1500, 1000, 3 + 2**32))
    # without the MNIST test files, the held-out digits are mnist-5k's valid digits halved (load_held_out)
    held = load_held_out(DataConfig(dataset="stacked-mnist", **SMALL), run_seed=3)
    digit_halves = load_held_out(DataConfig(dataset="mnist-5k", download=False))
    assert "stacks of the mnist-5k held-out digits" in held.test_split
    test_seen = _channel_labels(held.test, _labelled(digit_halves.test))
    valid_seen = _channel_labels(held.valid, _labelled(digit_halves.valid))
    assert np.array_equal(triple_labels(test_seen), held.test.labels)
    assert np.array_equal(triple_labels(valid_seen), held.valid.labels)
    # the floor's stacks: the test split's draw, extended
    _, real = load_stacked_test(DataConfig(dataset="stacked-mnist", **SMALL), 2000, run_seed=3)
    assert np.array_equal(real.images[:1500], held.test.images)


def _numbered_mnist(folder: Path) -> None:
    """MNIST's four IDX files at their standard sizes, each image numbered in its first two pixels (its index in its
    file, 256 a + b) and marked in the third (0 in the training file, 255 in the test file), labelled index mod 10."""
    folder.mkdir()
    for prefix, n, mark in (("train", 60_000, 0), ("t10k", 10_000, 255)):
        index = np.arange(n)
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 0, 0], images[:, 0, 1], images[:, 0, 2] = index // 256, index % 256, mark
        write_idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", (index % 10).astype(np.uint8))


def _numbers(stacks: Split) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) the file index of each channel's digit in `_numbered_mnist`'s files, and (N, 3) whether it came from
    the test file."""
    pixels = np.rint(stacks.images[:, :, 0, :3] * 255).astype(np.int64)       # (N, 3, 3)
    return pixels[..., 0] * 256 + pixels[..., 1], pixels[..., 2] == 255


def test_stacks_of_the_full_mnist_files(tmp_path):
    """stack_source=mnist end to end from MNIST's IDX files: train stacks of the first 50,000 training images only,
    valid stacks of the last 10,000, test stacks of the test file, each channel's label the digit's own."""
    _numbered_mnist(tmp_path / "mnist")
    source = {"stack_source": "mnist", "data_dir": str(tmp_path / "mnist"), "download": False, "stack_size": 3000}
    cache = tmp_path / "cache"
    train = load_split("stacked-mnist", "train", seed=4, cache_dir=cache, **source)
    number, from_test = _numbers(train)
    assert train.images.shape == (3000, 3, 28, 28) and not from_test.any()
    assert np.array_equal(number, draw_stacks(3000, 50_000, 4))                # the draw, by index into the 50,000
    assert np.array_equal(train.labels, triple_labels(number % 10))
    valid, test = (load_split("stacked-mnist", split, seed=4, cache_dir=cache, **source) for split in ("valid", "test"))
    number, from_test = _numbers(valid)
    assert len(valid) == 3000 and not from_test.any() and number.min() >= 50_000
    assert np.array_equal(valid.labels, triple_labels(number % 10))
    number, from_test = _numbers(test)
    assert len(test) == 3000 and from_test.all() and number.max() < 10_000
    assert np.array_equal(test.labels, triple_labels(number % 10))
    # the training labels alone, and the held-out stacks the evaluation reads, are the same draws
    data = DataConfig(dataset="stacked-mnist", stack_seed=4, **source)
    assert np.array_equal(load_stacked_labels(data, cache_dir=cache), train.labels)
    held = load_held_out(data, cache_dir=cache)
    assert np.array_equal(held.test.images, test.images) and "mnist test split" in held.test_split


def test_stack_digits_checks_its_input():
    grey = Split(np.zeros((10, 1, 4, 4), np.float32), np.arange(10))
    assert stack_digits(grey, 6, seed=0).images.shape == (6, 3, 4, 4)
    with pytest.raises(ValueError, match="one-channel"):
        stack_digits(Split(np.zeros((10, 3, 4, 4), np.float32), np.arange(10)), 6, seed=0)
    with pytest.raises(LimitError, match="data.stack_size"):                   # refused before any allocation
        stack_digits(grey, 10**15, seed=0)


@pytest.mark.parametrize("overrides, message", [
    ({"data.stack_size": 0}, "data.stack_size must be positive"),
    ({"data.stack_seed": -1}, "data.stack_seed must be null or in 0..4294967295"),
    ({"data.stack_source": "mnist5k"}, "did you mean 'mnist-5k'"),
    ({"data.channels": 1}, "blend the three digits"),
    ({"data.contrast_normalize": 55.0}, "data.contrast_normalize mixes the channels"),
])
def test_bad_stacking_settings_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message) as caught:
        make_config(None, {"data.dataset": "stacked-mnist", **overrides})
    assert "\n" not in str(caught.value)
