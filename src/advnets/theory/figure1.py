"""Figure 1 of the paper from a real run of the `toy1d` preset, and the training curves of that run.

    advnets figure toy1d --out figures/          # figure1_toy1d.png, figure1_training.png (cli/theory.py)

Each of the four panels shows p_data (black dots), p_g (green, solid), D (blue, dashed) over x, and below
them the z line with arrows to the x line showing the mapping x = G(z) for evenly spaced quantiles of p_z:
(a) early in training, p_g close to p_data and D partially accurate; (b) D trained alone to convergence,
close to D* = p_data / (p_data + p_g); (c) after a few updates of G against that D; (d) at the end of
training, p_g close to p_data and D close to 1/2.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fileio import save_figure

PANELS = (("a", "(a)"), ("b", "(b)"), ("c", "(c)"), ("d", "(d)"))
X_LINE, Z_LINE = -0.12, -0.52          # heights of the x and z lines, below the curves (D lives in [0, 1])


def _figure(width: float, height: float):
    """A matplotlib Figure that is not registered with pyplot: no backend or global state is touched."""
    # here, not at the top: matplotlib takes 1.2 s to import (2-core EPYC), which only the figure should pay
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def x_window(result, width: float = 3.2) -> tuple[float, float]:
    """The x range shown in every panel: p_data +- `width` stds, widened to hold stage (a)'s samples."""
    cfg = result.config.data
    lo = min(m - width * s for m, s in zip(cfg.toy_means, _broadcast(cfg.toy_stds, cfg.toy_means), strict=True))
    hi = max(m + width * s for m, s in zip(cfg.toy_means, _broadcast(cfg.toy_stds, cfg.toy_means), strict=True))
    for key in ("a", "c", "d"):
        z, x = result.stages[key].arrows
        lo, hi = min(lo, float(x.min()) - 0.3), max(hi, float(x.max()) + 0.3)
    return lo, hi


def _broadcast(values, like):
    return list(values) * len(like) if len(values) == 1 else list(values)


def draw_panel(ax, meas, window: tuple[float, float], label: str, z_range: tuple[float, float]) -> None:
    """One panel of Figure 1 on matplotlib axes `ax`."""
    lo, hi = window
    keep = (meas.grid >= lo) & (meas.grid <= hi)
    x = meas.grid[keep]
    dots = x[:: max(1, x.size // 70)]
    ax.plot(dots, np.interp(dots, meas.grid, meas.p_data), linestyle="none", marker="o", markersize=2.2,
            color="black", label=r"$p_{data}$")
    ax.plot(x, meas.p_g[keep], color="green", linewidth=1.6, label=r"$p_g$")
    ax.plot(x, meas.d[keep], color="blue", linestyle=(0, (5, 3)), linewidth=1.4, label=r"$D$")
    # the x line, the z line, and x = G(z)
    z, gz = meas.arrows
    zlo, zhi = z_range
    margin = 0.12 * (hi - lo)
    z_pos = lo + margin + (z - zlo) / (zhi - zlo) * (hi - lo - 2 * margin)   # z drawn under the x window
    ax.plot([lo, hi], [X_LINE, X_LINE], color="black", linewidth=1.0)
    ax.plot([z_pos.min(), z_pos.max()], [Z_LINE, Z_LINE], color="black", linewidth=1.0)
    for zp, xp in zip(z_pos, gz, strict=True):
        if lo <= xp <= hi:
            ax.annotate("", xy=(xp, X_LINE), xytext=(zp, Z_LINE),
                        arrowprops=dict(arrowstyle="-|>", color="0.25", linewidth=0.6, mutation_scale=6,
                                        shrinkA=0, shrinkB=0))
    ax.text(hi, X_LINE + 0.03, "x", ha="right", va="bottom", fontsize=9, style="italic")
    ax.text(z_pos.max(), Z_LINE - 0.04, "z", ha="right", va="top", fontsize=9, style="italic")
    ax.set_xlim(lo, hi)
    ax.set_ylim(Z_LINE - 0.12, 1.05)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title(label, y=-0.14, fontsize=11)


def figure1(result):
    """Figure 1 from a `ToyResult` (advnets.toy1d.run_experiment): a matplotlib Figure with four panels."""
    fig = _figure(14, 3.6)
    axes = fig.subplots(1, 4)
    window = x_window(result)
    z_all = np.concatenate([result.stages[k].arrows[0] for k, _ in PANELS])
    z_range = (float(z_all.min()), float(z_all.max()))
    for ax, (key, label) in zip(axes, PANELS, strict=True):
        draw_panel(ax, result.stages[key], window, label, z_range)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, frameon=False, fontsize=9)
    a, c, d = result.stages["a"], result.stages["c"], result.stages["d"]
    g_steps = result.report["convergence"]["g_steps_stage_c"]
    fig.text(0.5, 0.005, f"toy1d, seed {result.config.train.seed}: (a) iteration {a.step}, JSD {a.jsd:.3f}; "
                         f"(b) D trained alone {result.settings.d_steps} steps; (c) {g_steps} G step{'s' * (g_steps != 1)}, "
                         f"JSD {c.jsd:.3f}; (d) iteration {d.step}, JSD {d.jsd:.3f}",
             ha="center", va="bottom", fontsize=8, color="0.3")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.9, bottom=0.14, wspace=0.06)
    return fig


def training_curves(result):
    """JSD(p_data || p_g) and D's mean on data and on samples over the iterations of the run."""
    steps = np.array([h["step"] for h in result.history])
    fig = _figure(10, 3.4)
    left, right = fig.subplots(1, 2)
    left.semilogy(steps, [max(h["jsd"], 1e-6) for h in result.history], color="green")
    left.axhline(np.log(2), color="0.6", linewidth=0.8, linestyle=":")
    left.text(steps[-1], np.log(2), "log 2", ha="right", va="bottom", fontsize=8, color="0.4")
    left.axvline(result.stages["a"].step, color="0.6", linewidth=0.8, linestyle="--")
    left.text(result.stages["a"].step, left.get_ylim()[0], " (a)", fontsize=8, color="0.4", va="bottom")
    left.set_xlabel("iteration of Algorithm 1")
    left.set_ylabel(r"JSD$(p_{data} \| p_g)$ (nats)")
    right.plot(steps, [h["d_data"] for h in result.history], color="black", label=r"$E_{p_{data}}[D(x)]$")
    right.plot(steps, [h["d_samples"] for h in result.history], color="blue", linestyle="--",
               label=r"$E_z[D(G(z))]$")
    right.axhline(0.5, color="0.6", linewidth=0.8, linestyle=":")
    right.set_ylim(0, 1)
    right.set_xlabel("iteration of Algorithm 1")
    right.set_ylabel("mean of D")
    right.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig



def write_figures(result, out_dir: str | Path) -> list[Path]:
    """figure1_toy1d.png and figure1_training.png in `out_dir`."""
    out = Path(out_dir)
    return [save_figure(figure1(result), out / "figure1_toy1d.png"),
            save_figure(training_curves(result), out / "figure1_training.png")]
