"""Stacked MNIST: three random MNIST digits as the R, G and B channels of one image, so the data has 10**3 = 1,000
modes, one per digit triple (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018; first used by Unrolled GAN,
Metz et al. 2017). A generator that collapses (the paper's "Helvetica scenario", section 6) shows it as triples it
never draws; eval/stacked_coverage.py counts them.

Each image's three channels are three digits drawn independently and uniformly, with replacement, from a pool of
source digits (`data.stack_source`: mnist-5k or mnist, read by data/mnist.py): the training stacks from the
source's train split, valid and test stacks from its valid and test splits (registry.py chooses the pools and the
seeds). Labels are 100 a + 10 b + c for the digits a (channel 0, red), b (green) and c (blue).

    stacks = stack_digits(digits, 128_000, seed=0)    # digits: a Split (M, 1, 28, 28); stacks.images (N, 3, 28, 28)
"""
from __future__ import annotations

import dataclasses

import numpy as np

from advnets.config import DataConfig
from advnets.data.split import Split
from advnets.errors import DataError
from advnets.limits import check_memory

CHANNELS = 3
MODES = 10 ** CHANNELS
HELD_OUT_STACKS = 10_000          # stacks in each of valid and test (or stack_size, if smaller)
PLACE = np.array([100, 10, 1])     # channel c's digit is worth PLACE[c] in the label
_BLOCK = 8192                      # stacks filled at a time: the only temporary is one block's


def split_size(split: str, stack_size: int) -> int:
    """How many stacks a split holds: `stack_size` for train, HELD_OUT_STACKS (at most stack_size) otherwise."""
    return stack_size if split == "train" else min(HELD_OUT_STACKS, stack_size)


def source_config(data: DataConfig) -> DataConfig:
    """The data config of the digits a stacked-mnist config draws from: its `stack_source`, one grey channel, the
    same image size (resizing commutes with stacking: it works channel by channel). The source's own classifier
    (eval/classifier.py) is cached under this config."""
    return dataclasses.replace(data, dataset=data.stack_source, channels=0)


def draw_stacks(n: int, pool: int, seed: int) -> np.ndarray:
    """(n, 3) int64 indices into a pool of `pool` digits: row i holds the digits of stack i, channel by channel,
    each drawn uniformly with replacement by numpy's default generator (PCG64: the same on every machine). The
    draw of n stacks begins with the draw of any fewer from the same seed."""
    if pool < 1:
        raise DataError("stacked-mnist found no source digits to stack", "check data.stack_source and data.data_dir")
    return np.random.default_rng(seed).integers(0, pool, size=(n, CHANNELS))


def triple_labels(digits: np.ndarray) -> np.ndarray:
    """(N, 3) digits 0..9 -> (N,) int64 labels 100 a + 10 b + c."""
    return np.asarray(digits, dtype=np.int64) @ PLACE


def label_digits(labels: np.ndarray) -> np.ndarray:
    """(N,) labels 0..999 -> (N, 3) int64 digits, channel by channel (the inverse of `triple_labels`)."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1, 1)
    return labels // PLACE % 10


def stack_labels(digit_labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The (n,) labels of `stack_digits(digits, n, seed)` for digits labelled `digit_labels`, without its images."""
    return triple_labels(np.asarray(digit_labels)[draw_stacks(n, len(digit_labels), seed)])


def stack_digits(digits: Split, n: int, seed: int) -> Split:
    """n stacked images from `digits` (M, 1, H, W) with labels 0..9: float32 (n, 3, H, W), each channel one source
    digit as `draw_stacks(n, M, seed)` picks it, and (n,) labels 100 a + 10 b + c. Filled a block at a time into
    one array: no second full-size copy."""
    if digits.images.ndim != 4 or digits.images.shape[1] != 1 or digits.labels is None:
        raise DataError(f"stacked-mnist stacks labelled one-channel digits, got {digits.images.shape}")
    h, w = digits.images.shape[2:]
    check_memory("data.stack_size", n, CHANNELS * h * w * 4, "stacked images")
    index = draw_stacks(n, len(digits), seed)                                  # (n, 3)
    grey = digits.images[:, 0]                                                 # (M, H, W)
    images = np.empty((n, CHANNELS, h, w), dtype=np.float32)
    for start in range(0, n, _BLOCK):
        images[start:start + _BLOCK] = grey[index[start:start + _BLOCK]]      # (B, 3, H, W)
    return Split(images=images, labels=triple_labels(np.asarray(digits.labels)[index]))
