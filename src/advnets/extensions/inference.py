"""Learned approximate inference (paper section 6, "advantages and disadvantages", item 3): an inference net
E(x) ~ z fitted on pairs (G(z), z) with G frozen, as the original code's `inferer`.

E: x (d) -> 1200 ReLU -> 1200 ReLU -> noise_dim, mean squared error to z, Adam, fresh pairs every step.
"""
from __future__ import annotations

import itertools
import math
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..models import sample_noise
from ..figures.image_grid import image_grid
from ..fileio import finite_or_null
from . import check_images, mse, sci

HIDDEN = (1200, 1200)   # E's hidden widths, as the original code's inferer
STEPS = 2000            # Adam steps of the fit, each on BATCH_SIZE fresh pairs (G(z), z)
BATCH_SIZE = 100
LR = 1e-3
N_REAL = 1000           # valid images reconstructed as G(E(x))
N_FRESH = 2000          # fresh samples whose z is recovered


def build_inferer(in_dim: int, noise_dim: int, hidden: tuple[int, ...] = HIDDEN, seed: int = 0) -> nn.Sequential:
    """E: an MLP x (in_dim) -> ReLU hidden layers -> noise_dim (linear), PyTorch's default init, seeded."""
    torch.manual_seed(seed)
    widths, layers = [in_dim, *hidden], []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], noise_dim))


def fit_inferer(run, steps: int = STEPS, batch_size: int = BATCH_SIZE, lr: float = LR, seed: int = 0,
                hidden: tuple[int, ...] = HIDDEN,
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
def inference_errors(run, E: nn.Module, real: np.ndarray, train_mean: np.ndarray, n_fresh: int = N_FRESH,
                     seed: int = 0) -> tuple[dict, torch.Tensor]:
    """z error on fresh samples and pixel error of G(E(x)) on real images, next to trivial baselines.

    Returns the errors and the reconstructions G(E(real)) (N, C, H, W)."""
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


def inference_report(run, *, steps: int = STEPS, n: int = N_REAL, seed: int = 0, data_dir: str | None = None,
                     fold: int | None = None, progress: Callable[[int, int, str], None] | None = None
                     ) -> tuple[dict, nn.Sequential, np.ndarray]:
    """`advnets infer`: fit E on the run's G (`fit_inferer`), then its errors on fresh samples and on the first `n`
    valid images (`inference_errors`). `data_dir` and `fold` replace the run's own.

    Returns the report (RUN/eval/infer.json; an error that diverged to NaN is null), E, and the figure of real rows above their reconstructions."""
    check_images(run)
    t0 = time.time()
    E, history = fit_inferer(run, steps=steps, seed=seed, progress=progress)
    fit_s = time.time() - t0
    train_mean = run.load_split("train", data_dir, fold).images.mean(0)
    real = run.load_split("valid", data_dir, fold).images[:n]
    errors, recon = inference_errors(run, E, real, train_mean, seed=seed)
    report = {"run": str(run.run_dir), "epoch": run.epoch, "step": run.step, "dataset": run.config.data.dataset,
              "real_split": "valid", "inferer": describe_inferer(), "steps": steps, "seed": seed,
              "fit_seconds": round(fit_s, 1), "train_loss_every_100_steps": history, **errors}
    return finite_or_null(report), E, inference_figure(real, recon)


def describe_inferer(hidden: tuple[int, ...] = HIDDEN, lr: float = LR, batch_size: int = BATCH_SIZE) -> str:
    """E's recipe in one line: "MLP d-1200-1200-noise_dim ReLU, MSE, Adam lr 1e-3, batch 100"."""
    return f"MLP d-{'-'.join(map(str, hidden))}-noise_dim ReLU, MSE, Adam lr {sci(lr)}, batch {batch_size}"


def inferer_checkpoint(run, E: nn.Module, steps: int, seed: int) -> dict:
    """What `advnets infer` saves to RUN/checkpoints/inference.pt: E's weights and how to rebuild it."""
    return {"inferer": E.state_dict(), "noise_dim": run.config.model.noise_dim, "hidden": list(HIDDEN),
            "steps": steps, "seed": seed}
