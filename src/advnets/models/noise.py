"""The noise prior p_z(z) (docs/design.md): uniform on [-sqrt(3), sqrt(3)] (unit variance) or Gaussian."""
from __future__ import annotations

import math

import torch


def sample_noise(n: int, dim: int, prior: str, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """Draw n noise vectors z ~ p_z, shape (n, dim), both priors with zero mean and unit variance."""
    if prior == "uniform":
        z = torch.rand(n, dim, generator=generator, device=device)
        return z.mul_(2 * math.sqrt(3)).sub_(math.sqrt(3))
    if prior == "gaussian":
        return torch.randn(n, dim, generator=generator, device=device)
    raise ValueError(f"unknown noise prior {prior!r}")
