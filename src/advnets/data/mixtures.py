"""The 2-D Gaussian mixtures on which the field measures mode collapse (the paper's "Helvetica scenario", section 6).

Two standard benchmarks (VEEGAN, Srivastava et al. 2017, Table 1; PacGAN, Lin et al. 2018, section 5.1):

    grid   25 components at (i, j), i, j in {-4, -2, 0, 2, 4}, each an isotropic Gaussian with sigma = 0.05
    ring    8 components at (cos 2 pi k / 8, sin 2 pi k / 8), k = 0..7, sigma = 0.01

All components have equal weight. Several public versions of `ring` place the centres at `linspace(0, 2 pi, 8)`,
which puts the first and the last at the same point (7 distinct modes, one of double weight); ours are the eight
distinct angles 2 pi k / 8. Training sets are drawn once from a seed (`sample_mixture`); the coverage metrics that
go with these datasets are in `advnets.eval.coverage`.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from advnets.errors import ConfigError


@dataclass(frozen=True)
class Mixture2D:
    """An equal-weight mixture of isotropic 2-D Gaussians N(mean_k, sigma^2 I)."""

    means: np.ndarray  # (K, 2) float64, read-only
    sigma: float


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


MIXTURES: dict[str, Mixture2D] = {
    "grid": Mixture2D(_frozen(list(itertools.product((-4, -2, 0, 2, 4), repeat=2))), 0.05),
    "ring": Mixture2D(_frozen([(math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)) for k in range(8)]),
                      0.01),
}


def _mixture(name: str) -> Mixture2D:
    if name not in MIXTURES:
        raise ConfigError(f"unknown 2-D mixture {name!r}", f"choose one of {', '.join(sorted(MIXTURES))}")
    return MIXTURES[name]


def mixture_means(name: str) -> np.ndarray:
    """The component means of mixture `name`, (K, 2) float64 (a writable copy)."""
    return _mixture(name).means.copy()


def mixture_sigma(name: str) -> float:
    """The standard deviation of every component of mixture `name` (isotropic)."""
    return _mixture(name).sigma


def sample_mixture(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n points from mixture `name`: (points (n, 2) float32, component labels (n,) int64).

    Each point picks a component uniformly at random, then adds sigma times a standard normal draw; both come from
    `numpy.random.default_rng(seed)`, so a seed gives the same points on every machine."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    m = _mixture(name)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(m.means), size=n, dtype=np.int64)            # (n,)
    points = m.means[labels] + m.sigma * rng.standard_normal((n, 2))          # (n, 2) float64
    return points.astype(np.float32), labels
