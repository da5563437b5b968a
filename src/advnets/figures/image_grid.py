"""Sample grids as PNG files, written atomically."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..fileio import atomic_open


def image_grid(images: torch.Tensor | np.ndarray, nrow: int | None = None, padding: int = 2,
               pad_value: float = 1.0) -> np.ndarray:
    """Tile (N, C, H, W) images in [0, 1] into one uint8 array (H', W', C), nrow images per row."""
    x = images.detach().cpu().float().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.ndim == 3:                                   # (N, H, W): grey
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {x.shape}")
    n, c, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    grid = np.full((c, padding + ncol * (h + padding), padding + nrow * (w + padding)), pad_value, np.float32)
    for i in range(n):
        r, k = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + k * (w + padding)
        grid[:, top:top + h, left:left + w] = x[i]
    return (np.clip(grid, 0.0, 1.0) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write a (H, W, C) uint8 array as PNG: to a temporary name first, then renamed into place."""
    path = Path(path)
    mode = "L" if array.shape[2] == 1 else "RGB"
    image = Image.fromarray(array[:, :, 0] if mode == "L" else array, mode)
    with atomic_open(path) as f:
        image.save(f, format="PNG")
    return path


def upscale(array: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, C) uint8 -> (scale H, scale W, C): each pixel a scale x scale block (28x28 tiles are small on screen)."""
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    return array if scale == 1 else np.repeat(np.repeat(array, scale, axis=0), scale, axis=1)


def save_grid(images: torch.Tensor | np.ndarray, path: str | Path, nrow: int | None = None, scale: int = 1) -> Path:
    """Tile images (N, C, H, W) in [0, 1] and save them as one PNG, each pixel `scale` x `scale`."""
    return save_png(upscale(image_grid(images, nrow), scale), path)


def save_pngs(images: torch.Tensor | np.ndarray, out_dir: str | Path, start: int = 0) -> list[Path]:
    """One PNG per image (N, C, H, W) in [0, 1]: out_dir/sample_00000.png, ... numbered from `start`, each written
    atomically (for tools that read image folders). Values outside [0, 1] are clipped: map a contrast-normalised
    run's samples with `advnets.data.for_display` first."""
    x = images.detach().cpu().float().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, np.float32)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images of shape (N, 1 or 3, H, W), got {x.shape}")
    out_dir = Path(out_dir)
    pixels = (np.clip(x, 0.0, 1.0) * 255 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)   # (N, H, W, C)
    return [save_png(p, out_dir / f"sample_{start + i:05d}.png") for i, p in enumerate(pixels)]
