"""The 1-D toy data of the paper's Figure 1: p_data a Gaussian, or a mixture of Gaussians, on the real line.

The density is known exactly, so section 4's claims (D*, C(G), JSD) can be checked numerically
(`advnets.theory`). Samples come as "images" of shape (N, 1, 1, 1), so the same trainer and networks that
train on MNIST train on them; unlike pixels they are not limited to [0, 1].
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from advnets.errors import ConfigError

# Each split has its own fixed seed, so train / valid / test are different draws, the same on every machine.
SPLIT_SEEDS = {"train": 1, "valid": 2, "test": 3}


@dataclass(frozen=True)
class GaussianMixture1D:
    """p_data(x) = sum_k w_k N(x; mean_k, std_k^2). A single std or weight applies to every component."""

    means: tuple[float, ...] = (0.0,)
    stds: tuple[float, ...] = (1.0,)
    weights: tuple[float, ...] = (1.0,)

    def __post_init__(self):
        k = len(self.means)
        if k == 0:
            raise ConfigError("data.toy_means is empty", "give at least one mean, e.g. --set data.toy_means=-2,2")
        for name, values in (("toy_stds", self.stds), ("toy_weights", self.weights)):
            if len(values) not in (1, k):
                raise ConfigError(f"data.{name} has {len(values)} values for {k} means",
                                  "give one value for all components, or one per mean")
        if any(not s > 0 for s in self.stds):
            raise ConfigError(f"data.toy_stds must be positive, got {list(self.stds)}")
        if any(not w >= 0 for w in self.weights) or not sum(self.weights) > 0:
            raise ConfigError(f"data.toy_weights must be non-negative with a positive sum, got {list(self.weights)}")
        total = float(sum(self.weights))
        object.__setattr__(self, "means", tuple(float(m) for m in self.means))
        object.__setattr__(self, "stds", tuple(float(s) for s in self.stds) * (k if len(self.stds) == 1 else 1))
        object.__setattr__(self, "weights", tuple(float(w) / total for w in self.weights) if len(self.weights) == k
                           else (1.0 / k,) * k)

    @classmethod
    def from_config(cls, data_config) -> "GaussianMixture1D":
        d = data_config
        return cls(tuple(d.toy_means), tuple(d.toy_stds), tuple(d.toy_weights))

    def density(self, x: np.ndarray) -> np.ndarray:
        """p_data(x), exactly, in float64."""
        x = np.asarray(x, dtype=np.float64)[..., None]                      # (..., 1)
        mu, sd, w = (np.asarray(v, dtype=np.float64) for v in (self.means, self.stds, self.weights))
        return (w * np.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))).sum(-1)

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """n draws (float64, shape (n,)) and the component each came from (int64)."""
        rng = np.random.default_rng(seed)
        component = rng.choice(len(self.means), size=n, p=np.asarray(self.weights))
        x = np.asarray(self.means)[component] + np.asarray(self.stds)[component] * rng.standard_normal(n)
        return x, component.astype(np.int64)

    def mean(self) -> float:
        return float(np.dot(self.weights, self.means))

    def std(self) -> float:
        """The standard deviation of the whole mixture."""
        second = float(np.dot(self.weights, np.square(self.stds) + np.square(self.means)))
        return math.sqrt(max(second - self.mean() ** 2, 0.0))

    def support(self, width: float = 6.0) -> tuple[float, float]:
        """An interval holding all but a negligible part of the mass: every mean +- width stds."""
        lo = min(m - width * s for m, s in zip(self.means, self.stds))
        hi = max(m + width * s for m, s in zip(self.means, self.stds))
        return lo, hi


def toy1d_split(mixture: GaussianMixture1D, split: str, size: int):
    """`size` draws for `split` as images (size, 1, 1, 1) float32 and component labels (size,)."""
    if size <= 0:
        raise ConfigError(f"data.toy_size must be positive, got {size}")
    x, component = mixture.sample(size, SPLIT_SEEDS[split])
    return np.ascontiguousarray(x.astype(np.float32).reshape(size, 1, 1, 1)), component
