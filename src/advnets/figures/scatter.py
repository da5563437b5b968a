"""The picture of mode coverage on a 2-D mixture (grid, ring): samples of G over the mixture's means, each mean
with its high-quality circle (radius 3 sigma, eval/coverage.py), and the three coverage numbers in the title.

A collapsed G (the paper's "Helvetica scenario", section 6) shows as empty circles and piles of samples on a few.
"""
from __future__ import annotations

import numpy as np

# Memory one sample takes from G to the drawn figure, for `advnets figure scatter --n` checked against the memory
# available: the float32 sample, its float64 copies and nearest mean in the coverage, and matplotlib's share (its
# offsets and paths: about 90 bytes a point, measured with 200k and 2M points), rounded up.
POINT_BYTES = 256


def scatter_figure(samples, means, sigma: float, coverage: dict | None = None, title: str = "",
                   threshold: float = 3.0):
    """A matplotlib Figure (not registered with pyplot): `samples` (N, 2) as dots, `means` (K, 2) as crosses with
    circles of radius threshold * sigma; `coverage` (a `mixture_coverage` dict) adds its numbers to the title and
    colours the captured modes' circles green, the missed ones red."""
    # here, not at the top: matplotlib takes 1.2 s to import (2-core EPYC), which only the scatter plot should pay
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    samples = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
    means = np.asarray(means, dtype=np.float64)
    fig = Figure(figsize=(6, 6.4))
    ax = fig.subplots()
    captured = (np.asarray(coverage["histogram"]) > 0) if coverage else np.ones(len(means), bool)
    ax.scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.35, color="tab:blue", linewidths=0, label="G(z)")
    for (x, y), hit in zip(means, captured):
        ax.add_patch(Circle((x, y), threshold * sigma, fill=False, linewidth=0.8,
                            color="tab:green" if hit else "tab:red"))
    ax.scatter(means[:, 0], means[:, 1], s=14, marker="x", color="black", linewidths=0.8, label="means")
    span = np.abs(means).max() * 1.3 + threshold * sigma
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
    ax.set_aspect("equal")
    lines = [title] if title else []
    if coverage:
        kl = coverage["reverse_kl"]
        lines.append(f"{coverage['modes_captured']}/{len(means)} modes, {coverage['high_quality']:.1%} high quality "
                     f"(< {threshold:g} sigma), reverse KL {kl:.3f}, {coverage['n']} samples")
    ax.set_title("\n".join(lines), fontsize=9)
    ax.legend(loc="upper right", fontsize=7, markerscale=2, frameon=False)
    fig.tight_layout()
    return fig
