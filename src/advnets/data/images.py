"""Image sources beyond the MNIST family, and the transforms any source's images can go through.

`load_split` hands over to `image_split` for ``cifar10`` (data/cifar.py), ``tfd`` (data/tfd.py) and ``folder``
(data/folder.py), and for any dataset loaded with a channel count, a size or contrast normalisation:

    images = source(split)                                  # (N, C, H, W) float32 in [0, 1]
    images = to_channels(images, channels)                  # 1 grey | 3 RGB | 0 as stored
    images = resize_square(images, image_size)              # 0 as stored (folders decode at their size)
    images = global_contrast_normalize(images, scale)       # when contrast_normalize > 0
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from advnets.data.sources import Split, default_cache_dir, load_split
from advnets.data.transforms import global_contrast_normalize, resize_square, to_channels

IMAGE_DATASETS = ("cifar10", "tfd", "folder")


def image_split(name: str, split: str, data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                download: bool = True, mirrors: list[str] | None = None, *, fold: int = 0, image_size: int = 0,
                channels: int = 0, contrast_normalize: float = 0.0) -> Split:
    """One split of `name` (an image source, or any dataset to transform); see the module docstring."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if name == "cifar10":
        from advnets.data.cifar import cifar10_split

        pixels, labels = cifar10_split(split, data_dir, cache, download, mirrors)
        images = pixels.astype(np.float32) / np.float32(255)                       # (N, 3, 32, 32)
    elif name == "tfd":
        from advnets.data.tfd import tfd_split

        images, labels = tfd_split(split, fold, data_dir, cache)                   # (N, 1, 48, 48)
    elif name == "folder":
        from advnets.data.folder import folder_split

        images, labels = folder_split(split, data_dir, image_size, channels)    # (N, C, size, size), labels | None
    else:
        raw = load_split(name, split, data_dir, cache, download, mirrors)
        images, labels = raw.images, raw.labels
    images = resize_square(to_channels(images, channels), image_size)
    if contrast_normalize:
        images = global_contrast_normalize(images, contrast_normalize)
    return Split(images=np.ascontiguousarray(images, dtype=np.float32), labels=labels)
