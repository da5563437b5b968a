"""Inpainting with a trained G: find z* = argmin_z ||m * (G(z) - x)||^2 over the known pixels (mask m = 1), then
complete x with G(z*) on the unknown pixels. Adam on z from several random restarts, the best restart kept."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import AdvnetsError
from ..limits import check_positive
from ..models import sample_noise
from ..figures.image_grid import image_grid
from ..fileio import finite_or_null
from . import check_images, mse

MASKS = ("right-half", "random")   # the first is the default
N_IMAGES = 8                       # valid images completed by `advnets figure inpaint`
STEPS = 300                        # Adam steps on z ...
RESTARTS = 8                       # ... from this many random starts per image ...
LR = 0.05                          # ... at this learning rate


def make_mask(kind: str, n: int, image_shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """(n, C, H, W) float mask, 1 = known pixel. right-half: the right half of every image unknown;
    random: each pixel (all channels together) unknown with probability 1/2, independently per image."""
    c, h, w = image_shape
    if kind == "right-half":
        mask = torch.ones(n, c, h, w)
        mask[..., w // 2:] = 0.0
        return mask
    if kind == "random":
        rng = torch.Generator().manual_seed(seed)
        return (torch.rand(n, 1, h, w, generator=rng) < 0.5).float().expand(n, c, h, w).contiguous()
    raise AdvnetsError(f"unknown mask {kind!r}", f"use one of {', '.join(MASKS)}")


def known_error(images: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the known pixels, one value per image: (B, ...) -> (B,)."""
    sq = (images - target).pow(2) * mask
    return sq.flatten(1).sum(1) / mask.flatten(1).sum(1).clamp_min(1)


def optimise_z(run, target: torch.Tensor, mask: torch.Tensor, steps: int = STEPS, restarts: int = RESTARTS,
               lr: float = LR, seed: int = 0) -> dict[str, torch.Tensor]:
    """For each of n target images, `restarts` z's optimised by Adam against the known pixels; the restart with
    the lowest final known-pixel error is kept. With the uniform prior z is clamped to [-sqrt(3), sqrt(3)].

    Returns z (n, noise_dim), its known-pixel error `final_error` (n,) and `initial_error` (n,): the best
    known-pixel error among the restarts' starting points."""
    check_positive("lr", lr)
    m = run.config.model
    n = len(target)
    rng = torch.Generator(device=run.device).manual_seed(seed)
    z = sample_noise(n * restarts, m.noise_dim, m.noise_prior, rng, run.device).requires_grad_(True)  # (n*R, nz)
    x = target.to(run.device).repeat_interleave(restarts, 0)                                        # (n*R, C,H,W)
    mk = mask.to(run.device).repeat_interleave(restarts, 0)
    run.generator.eval().requires_grad_(False)
    bound = math.sqrt(3) if m.noise_prior == "uniform" else None
    opt = torch.optim.Adam([z], lr=lr)
    with torch.no_grad():
        initial = known_error(run.generator(z), x, mk).view(n, restarts)
    for _ in range(steps):
        loss = known_error(run.generator(z), x, mk).sum()       # restarts are independent: sum their errors
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if bound is not None:
            with torch.no_grad():
                z.clamp_(-bound, bound)
    with torch.no_grad():
        final = known_error(run.generator(z), x, mk).view(n, restarts)
    best = final.argmin(1)
    rows = torch.arange(n, device=best.device)
    return {"z": z.detach().view(n, restarts, -1)[rows, best], "final_error": final[rows, best].cpu(),
            "initial_error": initial.min(1).values.cpu()}


@torch.no_grad()
def inpaint(run, target: torch.Tensor, mask: torch.Tensor, **kwargs) -> dict[str, torch.Tensor]:
    """Completions mask * x + (1 - mask) * G(z*) of `target` (n, C, H, W), on CPU, with optimise_z's results."""
    with torch.enable_grad():
        result = optimise_z(run, target, mask, **kwargs)
    generated = run.generator(result["z"]).cpu()
    result["completion"] = mask * target + (1 - mask) * generated
    result["generated"] = generated
    return result


def inpaint_figure(target: torch.Tensor, mask: torch.Tensor, completion: torch.Tensor) -> np.ndarray:
    """Three rows: masked inputs (unknown pixels mid-grey), completions, originals; (H, W, C) uint8."""
    masked = mask * target + (1 - mask) * 0.5
    return image_grid(torch.cat([masked, completion, target]), nrow=len(target), pad_value=0.0)


def unknown_pixel_errors(target, mask, completion, train_mean: np.ndarray) -> dict:
    """Mean squared error on the unknown pixels: the completion vs filling them with the mean training image."""
    unknown = (1 - mask).numpy().astype(bool)
    t, c = target.numpy(), completion.numpy()
    fill = np.broadcast_to(train_mean, t.shape)
    return {"unknown_mse_completion": round(mse(c[unknown], t[unknown]), 5),
            "unknown_mse_mean_training_image": round(mse(fill[unknown], t[unknown]), 5),
            "n_unknown_pixels": int(unknown.sum())}


def inpaint_report(run, *, mask: str = MASKS[0], n: int = N_IMAGES, steps: int = STEPS, restarts: int = RESTARTS,
                   lr: float = LR, seed: int = 0, data_dir: str | None = None,
                   fold: int | None = None) -> tuple[dict, np.ndarray]:
    """`advnets figure inpaint`: complete the first `n` valid images of the run's dataset with the `mask` pixels
    unknown (`make_mask`, `inpaint`); the known-pixel error before and after optimising z and the unknown-pixel
    error against the mean training image (`unknown_pixel_errors`). `data_dir` and `fold` replace the run's own.

    Returns the report (RUN/eval/inpaint.json; an error that diverged to NaN is null) and the figure
    (`inpaint_figure`)."""
    check_images(run)
    target = torch.as_tensor(run.load_split("valid", data_dir, fold).images[:n]).float()
    known = make_mask(mask, len(target), run.image_shape, seed=seed)
    result = inpaint(run, target, known, steps=steps, restarts=restarts, lr=lr, seed=seed)
    train_mean = run.load_split("train", data_dir, fold).images.mean(0)
    report = {"run": str(run.run_dir), "epoch": run.epoch, "step": run.step, "dataset": run.config.data.dataset,
              "split": "valid", "n": len(target), "mask": mask, "steps": steps, "restarts": restarts, "lr": lr,
              "seed": seed, "known_mse_initial": round(result["initial_error"].mean().item(), 5),
              "known_mse_final": round(result["final_error"].mean().item(), 5),
              **unknown_pixel_errors(target, known, result["completion"], train_mean)}
    return finite_or_null(report), inpaint_figure(target, known, result["completion"])
