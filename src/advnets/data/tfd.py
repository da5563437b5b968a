"""The Toronto Face Database (TFD), from the .mat file its users obtain themselves (it is not public).

The layout is the one pylearn2's `pylearn2.datasets.tfd.TFD` (which the paper's code used) reads with
scipy.io.loadmat from `TFD_48x48.mat` (a MATLAB v5/v7 file):

- ``images``:  (N, 48, 48) grey faces, values 0..255 (uint8); N = 102,236 in the full release
- ``folds``:   (N, 5) the role of every image in each of the 5 official folds:
               0 unlabelled, 1 train, 2 valid, 3 test
- ``labs_ex``: (N, 1) expression label 1..7 (-1 where unlabelled)
- ``labs_id``: (N, 1) identity label

Splits of fold k (``data.fold``, 0..4): train = the images with folds[:, k] == 0, the unlabelled set, which is
what the original tfd_pretrain/*.yaml trained on (a generative model needs no labels, and keeping the labelled
images out lets one model be evaluated on every fold's test set, as the paper's TFD error bars are); valid and
test = that fold's valid and test images, labelled by expression 0..6 (labs_ex - 1, as pylearn2 does).
Pixels are divided by 255 (pylearn2's scale=True).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from advnets.data.download import file_key
from advnets.errors import DataError

FILENAME = "TFD_48x48.mat"
SIDE = 48
N_FOLDS = 5
ROLE = {"train": 0, "valid": 2, "test": 3}         # value in `folds` of each split (0: unlabelled)
OBTAIN = ("TFD is not public: ask its authors (J. Susskind, A. Anderson, G. Hinton, University of Toronto) for "
          f"{FILENAME}, then pass --data-dir DIR holding it, or copy it into ~/.cache/advnets/tfd/")


def _search_dirs(data_dir: str | Path | None, cache_dir: Path) -> list[Path]:
    dirs = [Path(data_dir).expanduser()] if data_dir is not None else []
    dirs.append(Path(cache_dir) / "tfd")
    if os.environ.get("PYLEARN2_DATA_PATH"):      # where pylearn2 users already keep it
        dirs.append(Path(os.environ["PYLEARN2_DATA_PATH"]).expanduser() / "faces" / "TFD")
    return dirs


def find_tfd(data_dir: str | Path | None, cache_dir: Path) -> Path:
    """The path of TFD_48x48.mat: `data_dir` itself when it is a file, else the first directory holding it."""
    if data_dir is not None and Path(data_dir).expanduser().is_file():
        return Path(data_dir).expanduser()
    dirs = _search_dirs(data_dir, cache_dir)
    for d in dirs:
        if (d / FILENAME).is_file():
            return d / FILENAME
    raise DataError(f"{FILENAME} not found (looked in {', '.join(str(d) for d in dirs)})", OBTAIN)


@functools.lru_cache(maxsize=1)
def _read_mat(key: tuple[str, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 48, 48) uint8 images, (N, 5) int64 folds, (N,) int64 expression labels; cached in memory."""
    path = key[0]
    hint = f"replace {path} with the original {FILENAME} (fields images, folds, labs_ex, labs_id)"
    from scipy.io import loadmat    # here: scipy.io takes 0.5 s to import (2-core EPYC), which only TFD should pay
    try:
        mat = loadmat(path, variable_names=("images", "folds", "labs_ex"))
    except NotImplementedError:                    # scipy says so for MATLAB v7.3 (HDF5) files
        raise DataError(f"{path} is a MATLAB v7.3 file, which scipy cannot read",
                        "re-save it in MATLAB or Octave with save(..., '-v7')") from None
    except Exception as e:                         # scipy raises many kinds (MatReadError, IndexError, ...)
        raise DataError(f"cannot read {path} as a MATLAB file ({type(e).__name__}: {e})", hint) from None
    missing = [k for k in ("images", "folds", "labs_ex") if k not in mat]
    if missing:
        raise DataError(f"{path} has no field {', '.join(missing)}", hint)
    images, folds, labels = mat["images"], mat["folds"], mat["labs_ex"]
    n = images.shape[0] if images.ndim else 0
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise DataError(f"{path}: images has shape {images.shape}, expected (N, {SIDE}, {SIDE})", hint)
    if folds.shape != (n, N_FOLDS):
        raise DataError(f"{path}: folds has shape {folds.shape}, expected ({n}, {N_FOLDS})", hint)
    if labels.size != n:
        raise DataError(f"{path}: labs_ex has {labels.size} entries for {n} images", hint)
    if images.size and (images.min() < 0 or images.max() > 255):
        raise DataError(f"{path}: pixel values outside 0..255", hint)
    folds = folds.astype(np.int64)
    if not np.isin(folds, (0, 1, 2, 3)).all():
        raise DataError(f"{path}: folds holds values other than 0 (unlabelled), 1, 2, 3", hint)
    images = np.ascontiguousarray(images, dtype=np.uint8)
    labels = labels.reshape(-1).astype(np.int64)
    for a in (images, folds, labels):
        a.flags.writeable = False
    return images, folds, labels


def tfd_split(split: str, fold: int, data_dir: str | Path | None,
              cache_dir: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, 1, 48, 48) float32 images in [0, 1] and expression labels 0..6 (None for train) of one split of `fold`."""
    if not 0 <= fold < N_FOLDS:
        raise DataError(f"TFD fold {fold} does not exist", f"choose data.fold in 0..{N_FOLDS - 1}")
    path = find_tfd(data_dir, cache_dir)
    images, folds, labels = _read_mat(file_key(path))
    rows = np.flatnonzero(folds[:, fold] == ROLE[split])
    if rows.size == 0:
        raise DataError(f"{path}: fold {fold} has no {split} images "
                        f"(no row with folds[:, {fold}] == {ROLE[split]})", "check the file, or choose another fold")
    x = images[rows].reshape(-1, 1, SIDE, SIDE).astype(np.float32) / np.float32(255)
    return np.ascontiguousarray(x), (None if split == "train" else labels[rows] - 1)
