"""Figures 2 and 3 of the paper for a trained run: samples beside their nearest training examples, and
samples along straight lines in z space."""
from __future__ import annotations

import numpy as np
import torch

from ..data.transforms import for_display
from ..eval.neighbours import nearest_neighbours
from ..limits import check_count, check_png, grid_pixels
from ..models import class_rows, label_kwargs, sample_noise
from ..run.loaded import LoadedRun
from .image_grid import image_grid

HIGHLIGHT = np.array([255, 215, 0], dtype=np.uint8)     # the paper outlines training examples in yellow


@torch.no_grad()
def samples_figure(run: LoadedRun, train_images: np.ndarray, rows: int = 6, cols: int = 6,
                   seed: int = 0, padding: int = 2) -> np.ndarray:
    """Figure 2: `rows` x `cols` tiles, (H, W, 3) uint8. Each row holds cols-1 fair random samples (not
    cherry-picked) and, in the last column, the training example nearest (L2) to the sample beside it."""
    if cols < 2 or rows < 1:
        raise ValueError("need at least one row and two columns")
    check_png([("rows", rows, 1), ("cols", cols, 2)], lambda v: grid_pixels(*v, run.image_shape, padding))
    samples = run.sample(rows * (cols - 1), seed=seed).reshape(rows, cols - 1, *run.image_shape)
    index, _ = nearest_neighbours(samples[:, -1], train_images)
    neighbours = torch.as_tensor(train_images[index.numpy()]).reshape(rows, 1, *run.image_shape)
    tiles = torch.cat([samples, neighbours.float()], dim=1).reshape(rows * cols, *run.image_shape)
    grid = image_grid(for_display(tiles, run.config.data), nrow=cols, padding=padding, pad_value=0.0)
    grid = np.repeat(grid, 3, axis=2) if grid.shape[2] == 1 else grid
    h, w = run.image_shape[-2:]
    left = padding + (cols - 1) * (w + padding)
    for r in range(rows):                               # a frame around each nearest-neighbour tile
        top = padding + r * (h + padding)
        grid[top - 1:top + h + 1, left - 1] = HIGHLIGHT
        grid[top - 1:top + h + 1, left + w] = HIGHLIGHT
        grid[top - 1, left - 1:left + w + 1] = HIGHLIGHT
        grid[top + h, left - 1:left + w + 1] = HIGHLIGHT
    return grid


@torch.no_grad()
def interpolation_figure(run: LoadedRun, rows: int = 8, steps: int = 10, seed: int = 0) -> np.ndarray:
    """Figure 3: each row is G(z) for z on the straight line from one random z to another. For a conditional run
    row r holds class r mod num_classes all along."""
    check_count("rows", rows, 1)
    check_count("steps", steps, 2)
    check_png([("rows", rows, 1), ("steps", steps, 2)], lambda v: grid_pixels(*v, run.image_shape))
    rng = torch.Generator(device=run.device).manual_seed(seed)
    m = run.config.model
    ends = sample_noise(2 * rows, m.noise_dim, m.noise_prior, rng, run.device).view(rows, 2, -1)
    t = torch.linspace(0, 1, steps, device=run.device).view(1, steps, 1)
    z = ends[:, :1] * (1 - t) + ends[:, 1:] * t                            # (rows, steps, noise_dim)
    labels = class_rows(rows, steps, run.device) % run.num_classes if run.num_classes else None
    images = run.generator(z.reshape(rows * steps, -1), **label_kwargs(labels)).cpu()
    return image_grid(for_display(images, run.config.data), nrow=steps, pad_value=0.0)
