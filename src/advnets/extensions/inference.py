"""Learned approximate inference (paper section 6, "advantages and disadvantages", item 3): an inference net
E(x) ~ z fitted on pairs (G(z), z) with G frozen, as the original code's `inferer`.

E: x (d) -> 1200 ReLU -> 1200 ReLU -> noise_dim, mean squared error to z, Adam, fresh pairs every step.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..models import sample_noise
from ..figures.image_grid import image_grid
from . import mse


def build_inferer(in_dim: int, noise_dim: int, hidden: tuple[int, ...] = (1200, 1200), seed: int = 0) -> nn.Sequential:
    """E: an MLP x (in_dim) -> ReLU hidden layers -> noise_dim (linear), PyTorch's default init, seeded."""
    torch.manual_seed(seed)
    widths, layers = [in_dim, *hidden], []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], noise_dim))


def fit_inferer(run, steps: int = 2000, batch_size: int = 100, lr: float = 1e-3, seed: int = 0,
                hidden: tuple[int, ...] = (1200, 1200),
                progress: Callable[[int, int, str], None] | None = None) -> tuple[nn.Sequential, list[float]]:
    """Fit E on fresh pairs (G(z), z), z ~ p_z, G frozen; minimise E_z ||E(G(z)) - z||^2 / noise_dim.

    Returns E (in eval mode) and the training loss every 100 steps; `progress(done, total, note)` is called then."""
    m = run.config.model
    d = math.prod(run.image_shape)
    E = build_inferer(d, m.noise_dim, hidden, seed).to(run.device)
    opt = torch.optim.Adam(E.parameters(), lr=lr)
    rng = torch.Generator(device=run.device).manual_seed(seed + 1)
    run.generator.eval().requires_grad_(False)
    history = []
    for step in range(steps):
        z = sample_noise(batch_size, m.noise_dim, m.noise_prior, rng, run.device)    # (B, noise_dim)
        with torch.no_grad():
            x = run.generator(z).reshape(batch_size, -1)                              # (B, d)
        loss = (E(x) - z).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            history.append(round(loss.item(), 5))
            if progress is not None:
                progress(step + 1, steps, f"loss {history[-1]:.4f}")
    return E.eval(), history


@torch.no_grad()
def inference_report(run, E: nn.Module, real: np.ndarray, train_mean: np.ndarray, n_fresh: int = 2000,
                     seed: int = 0) -> tuple[dict, torch.Tensor]:
    """z error on fresh samples and pixel error of G(E(x)) on real images, next to trivial baselines.

    Returns the report and the reconstructions G(E(real)) (N, C, H, W)."""
    m = run.config.model
    rng = torch.Generator(device=run.device).manual_seed(seed + 2)
    z = sample_noise(n_fresh, m.noise_dim, m.noise_prior, rng, run.device)
    z_hat = E(run.generator(z).reshape(n_fresh, -1))
    x = torch.as_tensor(real, device=run.device).float()
    recon = run.generator(E(x.reshape(len(x), -1))).cpu()
    random = run.generator(sample_noise(len(x), m.noise_dim, m.noise_prior, rng, run.device)).cpu()
    report = {
        "z_mse_fresh": round((z_hat - z).pow(2).mean().item(), 5),
        "z_mse_baseline_prior_variance": 1.0,
        "n_fresh": n_fresh,
        "pixel_mse_reconstruction": round(mse(recon.numpy(), real), 5),
        "pixel_mse_mean_training_image": round(mse(np.broadcast_to(train_mean, real.shape), real), 5),
        "pixel_mse_random_sample": round(mse(random.numpy(), real), 5),
        "n_real": len(real),
    }
    return report, recon


def inference_figure(real: np.ndarray, recon: torch.Tensor, cols: int = 10, pairs: int = 4) -> np.ndarray:
    """Rows of real images, each above a row of their reconstructions G(E(x)); (H, W, C) uint8."""
    cols = min(cols, len(real))
    pairs = max(1, min(pairs, len(real) // cols))
    rows = []
    for p in range(pairs):
        sl = slice(p * cols, (p + 1) * cols)
        rows += [torch.as_tensor(real[sl]).float(), recon[sl].float()]
    return image_grid(torch.cat(rows), nrow=cols, pad_value=0.0)
