"""Sample grids as PNG files, written atomically."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

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
    from PIL import Image

    path = Path(path)
    mode = "L" if array.shape[2] == 1 else "RGB"
    image = Image.fromarray(array[:, :, 0] if mode == "L" else array, mode)
    with atomic_open(path) as f:
        image.save(f, format="PNG")
    return path


def save_grid(images: torch.Tensor | np.ndarray, path: str | Path, nrow: int | None = None) -> Path:
    """Tile images (N, C, H, W) in [0, 1] and save them as one PNG."""
    return save_png(image_grid(images, nrow), path)


def save_pngs(images: torch.Tensor | np.ndarray, out_dir: str | Path, start: int = 0) -> list[Path]:
    """One PNG per image (N, C, H, W) in [0, 1]: out_dir/sample_00000.png, ... numbered from `start`, each
    written atomically."""
    out_dir = Path(out_dir)
    return [save_png(image_grid(image[None], nrow=1, padding=0), out_dir / f"sample_{start + i:05d}.png")
            for i, image in enumerate(images)]
