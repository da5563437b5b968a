"""scikit-learn's 8x8 handwritten digits (1,797 images, offline): a fixed stratified 70 / 15 / 15 split."""
from __future__ import annotations

import functools

import numpy as np

from advnets.data.split import SPLITS, Split, stratified, to_split


def digits_split(split: str) -> Split:
    images, labels = _digits()
    idx = dict(zip(SPLITS, stratified(labels, (0.70, 0.15, 0.15), seed=0)))[split]
    return to_split(images, labels, idx, 8, scale=16.0)


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 64) pixels 0..16 and (1797,) labels from sklearn.datasets.load_digits."""
    # imported here, not at the top: scikit-learn takes seconds to import (2.3 s after torch on a 2-core EPYC,
    # python -X importtime), which only the digits dataset should pay
    from sklearn.datasets import load_digits
    bunch = load_digits()
    return bunch.data, bunch.target.astype(np.int64)
