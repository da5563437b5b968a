"""One split of a dataset, and the helpers every reader shares to make one."""
from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np

from advnets.errors import DataError

SPLITS: tuple[str, ...] = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    """One split of a dataset."""

    images: np.ndarray  # (N, C, H, W) float32 in [0, 1] (toy1d, contrast-normalised data: any real value)
    labels: np.ndarray | None  # (N,) int64, or None for unlabelled data

    def __len__(self) -> int:
        return self.images.shape[0]


def choose(value: str, known: tuple[str, ...], what: str) -> str:
    if value in known:
        return value
    close = difflib.get_close_matches(value, known, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    raise DataError(f"unknown {what} {value!r}", f"{guess}choose one of: {', '.join(known)}")


def to_split(images: np.ndarray, labels: np.ndarray, idx, side: int, scale: float = 255.0) -> Split:
    """Select rows `idx` (a slice or index array) and convert to float32 in [0, 1]."""
    x = images[idx].reshape(-1, 1, side, side).astype(np.float32)  # (N, 1, side, side)
    x /= np.float32(scale)
    return Split(images=np.ascontiguousarray(x), labels=labels[idx].astype(np.int64))


def stratified(labels: np.ndarray, sizes: tuple, seed: int) -> list[np.ndarray]:
    """Split indices per class with one fixed permutation, returning one index array per part.

    `sizes` are per-class counts (ints) or fractions of each class (floats, summing to 1;
    the last part takes the remainder). Each part is shuffled, so classes are interleaved.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in sizes]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        counts = [s if isinstance(s, int) else round(s * len(idx)) for s in sizes]
        bounds = np.cumsum([0, *counts[:-1]]).tolist() + [len(idx)]
        for part, lo, hi in zip(parts, bounds[:-1], bounds[1:]):
            part.append(idx[lo:hi])
    return [rng.permutation(np.concatenate(p)) for p in parts]
