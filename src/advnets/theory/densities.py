"""Section 4 of the paper, checked numerically on a 1-D problem: pure functions on densities over a grid.

On a grid x_0 < ... < x_{n-1} (uniform spacing), with p_data known exactly and p_g estimated from samples of G:

* `kde_on_grid`: p_g by a Gaussian kernel density estimate; the bandwidth is stated (Silverman's rule
  0.9 min(std, IQR / 1.34) n^(-1/5) unless given), never below two grid steps.
* `jsd`: JSD(p || q) = KL(p || m) / 2 + KL(q || m) / 2, m = (p + q) / 2, in nats, by the trapezoid rule.
* `optimal_discriminator`: Proposition 1, D*_G(x) = p_data(x) / (p_data(x) + p_g(x)).
* `value_on_grid`: V(G, D) = integral of p_data log D + p_g log(1 - D) (paper eq. 1 with x = G(z)).
* `virtual_criterion`: C(G) = V(G, D*_G), which Theorem 1 says equals -log 4 + 2 JSD(p_data || p_g).
* `proposition1_mean_gap`: |D - D*_G| averaged under (p_data + p_g) / 2.
* `mass_region`: where (p_data + p_g) / 2 carries a given share (99%) of the mass, densest points first.
* `generator_grad_norms`: section 3's saturation, the gradient norm reaching G under both G losses.

The experiment that trains the networks and applies these functions is `theory/experiment.py`; the
`advnets theory` command is in cli/theory.py.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..training.step_alternating import generator_grads

LOG4 = math.log(4.0)


# ----- grids and densities

def make_grid(lo: float, hi: float, n: int = 4001) -> np.ndarray:
    """n evenly spaced points from lo to hi (float64)."""
    if not hi > lo or n < 3:
        raise ValueError(f"a grid needs lo < hi and n >= 3, got {lo}, {hi}, {n}")
    return np.linspace(lo, hi, n)


def silverman_bandwidth(samples: np.ndarray) -> float:
    """Silverman's rule of thumb for a Gaussian kernel: 0.9 min(std, IQR / 1.34) n^(-1/5)."""
    s = np.asarray(samples, dtype=np.float64).ravel()
    q75, q25 = np.percentile(s, [75, 25])
    spread = min(s.std(), (q75 - q25) / 1.34)
    if not spread > 0:
        spread = s.std()
    return 0.9 * spread * s.size ** -0.2


def kde_on_grid(samples: np.ndarray, grid: np.ndarray, bandwidth: float | None = None) -> tuple[np.ndarray, float]:
    """Gaussian KDE of 1-D `samples` at the points of a uniform `grid`; returns (density, bandwidth used).

    The samples are binned linearly onto the grid points (each one shares its unit mass between its two
    neighbours), then the bins are convolved with the kernel: O(n + grid) instead of O(n * grid), exact up to
    a shift of at most half a grid step. The bandwidth is floored at two grid steps so that the kernel is
    resolved by the grid (an almost-constant G, a spike, is then smoothed over two steps). Samples outside
    the grid are dropped (the density integrates to less than 1); choose the grid with `grid_for`.
    """
    s = np.asarray(samples, dtype=np.float64).ravel()
    dx = grid[1] - grid[0]
    h = max(silverman_bandwidth(s) if bandwidth is None else float(bandwidth), 2.0 * dx)
    pos = (s - grid[0]) / dx                                     # position in grid steps
    inside = (pos >= 0) & (pos <= grid.size - 1)
    pos = pos[inside]
    left = np.minimum(np.floor(pos).astype(np.int64), grid.size - 2)
    frac = pos - left
    counts = np.bincount(left, 1.0 - frac, grid.size) + np.bincount(left + 1, frac, grid.size)
    half = int(math.ceil(8.0 * h / dx))                          # kernel to +-8 bandwidths
    offsets = np.arange(-half, half + 1) * dx
    kernel = np.exp(-0.5 * (offsets / h) ** 2) / (h * math.sqrt(2 * math.pi))
    if half < grid.size:
        density = np.convolve(counts, kernel, mode="same")
    else:                                                        # kernel wider than the grid
        density = np.array([np.dot(counts, np.exp(-0.5 * ((grid - x) / h) ** 2)) for x in grid])
        density /= h * math.sqrt(2 * math.pi)
    return density / s.size, h


def grid_for(support: tuple[float, float], samples: np.ndarray, n: int = 4001, margin: float = 0.5) -> np.ndarray:
    """A grid covering `support` (p_data's) and every sample, with `margin` to spare on each side."""
    s = np.asarray(samples, dtype=np.float64).ravel()
    lo = min(support[0], float(s.min()) - margin) if s.size else support[0]
    hi = max(support[1], float(s.max()) + margin) if s.size else support[1]
    return make_grid(lo, hi, n)


# ----- integrals

def trapezoid(y: np.ndarray, grid: np.ndarray) -> float:
    """Trapezoid rule on a grid."""
    y = np.asarray(y, dtype=np.float64)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(grid)) / 2.0)


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x log y with 0 log 0 = 0 (and 0 log y = 0 for any y)."""
    out = np.zeros(np.broadcast(x, y).shape)
    nz = x > 0
    out[nz] = x[nz] * np.log(y[nz])
    return out


def kl(p: np.ndarray, q: np.ndarray, grid: np.ndarray) -> float:
    """KL(p || q) = integral of p log(p / q), in nats (infinite where p > 0 = q)."""
    with np.errstate(divide="ignore"):
        return trapezoid(_xlogy(p, p) - _xlogy(p, q), grid)


def jsd(p: np.ndarray, q: np.ndarray, grid: np.ndarray) -> float:
    """Jensen-Shannon divergence of two densities on `grid`, in nats: between 0 and log 2."""
    m = 0.5 * (np.asarray(p, dtype=np.float64) + np.asarray(q, dtype=np.float64))
    return 0.5 * kl(p, m, grid) + 0.5 * kl(q, m, grid)


# ----- section 4

def optimal_discriminator(p_data: np.ndarray, p_g: np.ndarray) -> np.ndarray:
    """Proposition 1: D*_G(x) = p_data(x) / (p_data(x) + p_g(x)); 1/2 where both densities vanish."""
    total = p_data + p_g
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, p_data / np.where(total > 0, total, 1.0), 0.5)


def value_on_grid(p_data: np.ndarray, p_g: np.ndarray, d: np.ndarray, grid: np.ndarray) -> float:
    """V(G, D) = integral of p_data(x) log D(x) + p_g(x) log(1 - D(x)) dx (paper eq. 1, x = G(z) in the 2nd term)."""
    d = np.asarray(d, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return trapezoid(_xlogy(p_data, d) + _xlogy(p_g, 1.0 - d), grid)


def value_from_logits(p_data: np.ndarray, p_g: np.ndarray, logits: np.ndarray, grid: np.ndarray) -> float:
    """V(G, D) for D = sigmoid(logits) on the grid, from the logits (log D = -softplus(-l), log(1-D) = -softplus(l))."""
    l = np.asarray(logits, dtype=np.float64)
    return trapezoid(-p_data * np.logaddexp(0.0, -l) - p_g * np.logaddexp(0.0, l), grid)


def virtual_criterion(p_data: np.ndarray, p_g: np.ndarray, grid: np.ndarray) -> float:
    """C(G) = max_D V(G, D) = V(G, D*_G) (section 4.1), as the integral of
    p_data log(p_data / (p_data + p_g)) + p_g log(p_g / (p_data + p_g)): no 0 * log 0 where a density vanishes."""
    total = p_data + p_g
    with np.errstate(divide="ignore"):
        return trapezoid(_xlogy(p_data, p_data) - _xlogy(p_data, total) + _xlogy(p_g, p_g) - _xlogy(p_g, total), grid)


def mass_region(p_data: np.ndarray, p_g: np.ndarray, grid: np.ndarray, mass: float = 0.99) -> np.ndarray:
    """Boolean mask of the smallest set of grid points where (p_data + p_g) / 2 holds `mass` of its mass.

    Points are taken densest first (a highest-density region), so a gap between two modes is left out.
    """
    m = 0.5 * (p_data + p_g)
    weights = m * np.gradient(grid)                          # mass near each point
    order = np.argsort(-m, kind="stable")
    cum = np.cumsum(weights[order]) / weights.sum()
    keep = order[:int(np.searchsorted(cum, mass)) + 1]
    mask = np.zeros(grid.size, dtype=bool)
    mask[keep] = True
    return mask


def proposition1_gap(d: np.ndarray, p_data: np.ndarray, p_g: np.ndarray, grid: np.ndarray,
                     mass: float = 0.99) -> float:
    """max |D(x) - D*_G(x)| over the region where p_data + p_g carries `mass` of the mass."""
    region = mass_region(p_data, p_g, grid, mass)
    return float(np.max(np.abs(np.asarray(d) - optimal_discriminator(p_data, p_g))[region]))


def proposition1_mean_gap(d: np.ndarray, p_data: np.ndarray, p_g: np.ndarray, grid: np.ndarray) -> float:
    """The mean of |D(x) - D*_G(x)| under m = (p_data + p_g) / 2: integral of m |D - D*| / integral of m.

    Unlike the max over a region, the tails where both densities are small (few samples, D* steep) weigh
    what they carry, so this is a stable measure of how close a trained D is to D* everywhere it matters.
    """
    m = 0.5 * (np.asarray(p_data, dtype=np.float64) + np.asarray(p_g, dtype=np.float64))
    gap = np.abs(np.asarray(d, dtype=np.float64) - optimal_discriminator(p_data, p_g))
    return trapezoid(m * gap, grid) / trapezoid(m, grid)


# ----- section 3: saturation

def generator_grad_norms(generator: torch.nn.Module, discriminator: torch.nn.Module,
                         z: torch.Tensor) -> dict[str, float]:
    """L2 norm of G's parameter gradient under the minimax and the non-saturating loss, on one batch z.

    Uses `step_alternating.generator_grads`, Algorithm 1's G step, with D's dropout off (masks None, D in eval mode).
    The gradients written into G's `.grad` buffers are restored afterwards; no parameter changes.
    """
    params = list(generator.parameters())
    saved = [None if p.grad is None else p.grad.clone() for p in params]
    was_training = discriminator.training
    discriminator.eval()
    norms, d_fake = {}, None
    try:
        for kind in ("minimax", "non-saturating"):
            stats = generator_grads(generator, discriminator, z, None, kind)
            norms[kind] = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params)))
            d_fake = float(stats.d_fake)
    finally:
        discriminator.train(was_training)
        for p, g in zip(params, saved, strict=True):
            p.grad = g
    return {"d_fake": d_fake, "minimax": norms["minimax"], "non_saturating": norms["non-saturating"],
            "ratio_ns_over_minimax": norms["non-saturating"] / norms["minimax"] if norms["minimax"] > 0 else math.inf}
