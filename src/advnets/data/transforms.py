"""Transforms of image arrays shared by every source: channel count, size, global contrast normalisation.

Global contrast normalisation (GCN) as in pylearn2's CIFAR10(gcn=55.) (the paper's CIFAR-10 runs, docs/design.md §1):
each image (flattened over all its pixels and channels) has its own mean subtracted and is divided by its L2 norm,
then multiplied by `scale`, so every image has norm `scale` (55 over 3,072 values: about unit variance per pixel).
It is not invertible (the mean and norm of each image are gone); `for_display` maps GCN images back to [0, 1] the
way pylearn2's viewer did: each image divided by twice its largest |value|, plus 1/2.
"""
from __future__ import annotations

import numpy as np
import torch

from advnets.errors import DataError

_MIN_NORM = 1e-8     # a constant image has norm 0: left at zero, as pylearn2's min_divisor does
# ITU-R 601-2 luma, the weights of Pillow's convert("L")
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def global_contrast_normalize(images: np.ndarray, scale: float = 55.0) -> np.ndarray:
    """(N, ...) float images -> each image minus its mean, divided by its L2 norm, times `scale` (float32)."""
    flat = images.reshape(images.shape[0], -1)                             # (N, d)
    out = np.empty(flat.shape, dtype=np.float32)
    for start in range(0, len(flat), 4096):                               # float64 arithmetic, bounded memory
        x = flat[start:start + 4096].astype(np.float64)
        x -= x.mean(axis=1, keepdims=True)
        norms = np.sqrt((x * x).sum(axis=1, keepdims=True))
        norms[norms < _MIN_NORM] = 1.0
        out[start:start + 4096] = x * (scale / norms)
    return out.reshape(images.shape)


def for_display(images: torch.Tensor | np.ndarray, data_config=None) -> torch.Tensor | np.ndarray:
    """Images as the data config produced them -> images in [0, 1] for a picture.

    With `data.contrast_normalize` > 0 each image is rescaled on its own (x / (2 max|x|) + 1/2, pylearn2's
    `adjust_for_viewer`); otherwise the images are returned unchanged (pixels already in [0, 1]).
    """
    if data_config is None or not getattr(data_config, "contrast_normalize", 0.0):
        return images
    if isinstance(images, np.ndarray):
        flat = images.reshape(images.shape[0], -1)
        peak = np.maximum(np.abs(flat).max(axis=1), _MIN_NORM).reshape(-1, *[1] * (images.ndim - 1))
        return (images / (2 * peak) + 0.5).astype(np.float32)
    flat = images.reshape(images.shape[0], -1)
    peak = flat.abs().amax(dim=1).clamp_min(_MIN_NORM).view(-1, *[1] * (images.ndim - 1))
    return images / (2 * peak) + 0.5


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """(N, C, H, W) -> (N, channels, H, W): RGB to grey by luma, grey to RGB by repeating; 0 keeps C."""
    c = images.shape[1]
    if channels in (0, c):
        return images
    if c == 3 and channels == 1:
        return np.ascontiguousarray(np.tensordot(images, _LUMA, axes=([1], [0]))[:, None].astype(np.float32))
    if c == 1 and channels == 3:
        return np.ascontiguousarray(np.repeat(images, 3, axis=1))
    raise DataError(f"cannot turn {c}-channel images into {channels}-channel ones", "use data.channels=1 or 3")


def resize_square(images: np.ndarray, size: int) -> np.ndarray:
    """(N, C, H, W) -> (N, C, size, size): the shorter side scaled to `size` (antialiased bilinear), then the
    centre cropped; 0 keeps the size. For arrays; image files are resized as they are decoded (folder.py)."""
    n, c, h, w = images.shape
    if size == 0 or (h == size and w == size):
        return images
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    out = np.empty((n, c, size, size), dtype=np.float32)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    for start in range(0, n, 4096):                                       # bounded memory on large sets
        block = torch.from_numpy(np.ascontiguousarray(images[start:start + 4096], dtype=np.float32))
        resized = torch.nn.functional.interpolate(block, size=(new_h, new_w), mode="bilinear",
                                                  align_corners=False, antialias=True)
        out[start:start + 4096] = resized[:, :, top:top + size, left:left + size].numpy()
    return out                            # triangle-filter weights are >= 0: values stay in the input's range
