"""Training curves of one or several runs from their metrics.jsonl: the two losses, and D's mean outputs.

Each figure is drawn on a `matplotlib.figure.Figure` (no pyplot, no global backend or state) and returned as PNG
bytes, so the report can both embed it and write it beside the HTML.
"""
from __future__ import annotations

import io
import math

from matplotlib.figure import Figure

# matplotlib's default colour cycle ("tab10"), one colour per run, repeating after ten
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
_PANELS = {
    "losses": ("Losses", "loss", (("d_loss", "D loss", "-"), ("g_loss", "G loss", "--"))),
    "d_outputs": ("Discriminator outputs", "mean D output",
                  (("d_real", "D(x)", "-"), ("d_fake", "D(G(z))", "--"))),
}


def series(records: list[dict], key: str, kind: str) -> tuple[list[float], list[float]]:
    """(steps, values) of `key` in the records of one kind ("step" or "epoch"), finite numbers only."""
    xs, ys = [], []
    for r in records:
        value, step = r.get(key), r.get("step")
        if r.get("kind") != kind or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(step, (int, float)) and math.isfinite(value):
            xs.append(float(step))
            ys.append(float(value))
    return xs, ys


def legend_text(name: str) -> str:
    """A run's name as matplotlib draws it literally: `$` escaped (it would start mathtext, and `$\\frac{1$` fail
    to parse), a byte that is not UTF-8 (kept by Python as a surrogate) as U+FFFD, and a leading underscore (which
    hides a legend entry) after a space."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def curve_png(runs: list[tuple[str, list[dict]]], panel: str) -> bytes:
    """One figure as PNG bytes: `panel` "losses" (D and G loss) or "d_outputs" (mean D(x) and D(G(z))) against
    the number of G updates, for each (name, records) in `runs`, one colour per run.

    Per-step values are drawn as thin lines and the epoch means as thicker lines with markers; D's outputs also
    show 1/2, where D ends when p_g = p_data (the paper's Proposition 1 and Theorem 1)."""
    title, ylabel, keys = _PANELS[panel]
    fig = Figure(figsize=(9.5, 3.8), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    drawn = False
    for i, (name, records) in enumerate(runs):
        colour = COLOURS[i % len(COLOURS)]
        for key, label, style in keys:
            prefix = f"{legend_text(name)}: " if len(runs) > 1 else ""
            xs, ys = series(records, key, "step")
            if xs:
                ax.plot(xs, ys, style, color=colour, linewidth=0.8, alpha=0.45,
                        label=f"{prefix}{label} (step)")
            ex, ey = series(records, key, "epoch")
            if ex:
                ax.plot(ex, ey, style, color=colour, linewidth=1.8, marker="o", markersize=3,
                        label=f"{prefix}{label} (epoch mean)")
            drawn = drawn or bool(xs or ex)
    if panel == "d_outputs":
        ax.axhline(0.5, color="black", linewidth=0.6, linestyle=":", label="1/2 (D* when p_g = p_data)")
        ax.set_ylim(-0.02, 1.02)
    if not drawn:
        ax.text(0.5, 0.5, "no metrics recorded yet", transform=ax.transAxes, ha="center", va="center")
    ax.set_title(title)
    ax.set_xlabel("generator updates")
    ax.set_ylabel(ylabel)
    ax.grid(True, linewidth=0.3, alpha=0.5)
    if drawn:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
