"""Nearest training examples (L2), for Figure 2 and for a memorisation check."""
from __future__ import annotations

import numpy as np
import torch


def nearest_neighbours(queries: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray,
                       chunk: int = 8192, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query, the index of the nearest reference row and the L2 distance to it, as tensors on `device`
    (default: the queries' device, the CPU for numpy queries), where everything is computed.

    Candidates come from float32 matrix products (||q||^2 + ||r||^2 - 2 q.r), in chunks of `chunk`
    reference rows; the distance to the winner is then recomputed exactly in float64.
    """
    q = torch.as_tensor(queries).reshape(len(queries), -1).float()          # (n, d)
    q = q if device is None else q.to(device)
    r = torch.as_tensor(reference).reshape(len(reference), -1).float()      # (N, d)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} dimensions, the reference {r.shape[1]}")
    q_sq = (q * q).sum(1, keepdim=True)
    best_d = torch.full((q.shape[0],), float("inf"), device=q.device)
    best_i = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    for start in range(0, r.shape[0], chunk):
        block = r[start:start + chunk].to(q.device)                        # (chunk, d) on q's device
        d2 = q_sq + (block * block).sum(1) - 2 * q @ block.t()               # (n, chunk)
        value, index = d2.min(dim=1)
        better = value < best_d
        best_d[better], best_i[better] = value[better], index[better] + start
    exact = (q.double() - r[best_i.to(r.device)].to(q.device).double()).pow(2).sum(1).sqrt()
    return best_i, exact


def memorisation_report(samples, train, held_out, device: torch.device | str | None = None) -> dict[str, float]:
    """Mean distance to the nearest training example, of model samples and of held-out real images (computed on
    `device`, default the samples' device).

    Samples much closer to the training set than held-out data is would mean the model copies its data. The ratio
    (samples / held-out) is None when every held-out image is itself a training example (distance 0): then there is
    no scale to compare with.
    """
    device = device if device is not None else getattr(samples, "device", None)
    _, d_samples = nearest_neighbours(samples, train, device=device)
    _, d_held = nearest_neighbours(held_out, train, device=device)
    held = d_held.mean().item()
    return {"samples_mean_nn_distance": round(d_samples.mean().item(), 4),
            "held_out_mean_nn_distance": round(held, 4),
            "ratio": round(d_samples.mean().item() / held, 4) if held > 0 else None,
            "n_samples": len(samples), "n_held_out": len(held_out), "n_train": len(train)}
