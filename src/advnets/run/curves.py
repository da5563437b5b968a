"""Training curves of one or several runs from their metrics.jsonl: the two losses, D's mean outputs, and the mode
coverage of the epoch lines when they have it (training/coverage_monitor.py).

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
    taken = [r for r in records if _plotted(r, key, kind)]
    return [float(r["step"]) for r in taken], [float(r[key]) for r in taken]


def _plotted(record: dict, key: str, kind: str) -> bool:
    """Whether `series` takes `record`: of `kind`, with a numeric step and `key` a finite number (not a bool)."""
    value, step = record.get(key), record.get("step")
    return (record.get("kind") == kind and not isinstance(value, bool) and isinstance(value, (int, float))
            and isinstance(step, (int, float)) and math.isfinite(value))


# the coverage figures of an epoch line: (classes or modes captured, their KL), for labelled images and 2-D mixtures
COVERAGE_KEYS = (("classes_captured", "class_kl"), ("modes_captured", "reverse_kl"))


def coverage_keys(records: list[dict]) -> tuple[str, str] | None:
    """The (captured, KL) keys of the coverage figures in `records`' epoch lines, or None when they have none."""
    for captured, kl in COVERAGE_KEYS:
        if any(r.get("kind") == "epoch" and captured in r for r in records):
            return captured, kl
    return None


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
    return _finish(fig, ax, title, ylabel, drawn)


def coverage_png(runs: list[tuple[str, list[dict]]]) -> bytes:
    """The mode coverage of the epoch lines as PNG bytes: classes (or modes) captured, solid, on the left axis, and
    their KL to the data, dashed, on the right one, against the number of G updates, one colour per run; a cross
    marks each line whose coverage fell (`coverage_warning`)."""
    fig = Figure(figsize=(9.5, 3.8), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    right = ax.twinx()
    drawn = False
    for i, (name, records) in enumerate(runs):
        keys = coverage_keys(records)
        if keys is None:
            continue
        colour, prefix = COLOURS[i % len(COLOURS)], f"{legend_text(name)}: " if len(runs) > 1 else ""
        xs, ys = series(records, keys[0], "epoch")
        ax.plot(xs, ys, "-", color=colour, linewidth=1.8, marker="o", markersize=3,
                label=f"{prefix}{keys[0].replace('_', ' ')}")
        kx, ky = series(records, keys[1], "epoch")
        right.plot(kx, ky, "--", color=colour, linewidth=1.2, label=f"{prefix}{keys[1].replace('_', ' ')} (right)")
        fell = [(float(r["step"]), float(r[keys[0]])) for r in records
                if _plotted(r, keys[0], "epoch") and r.get("coverage_warning")]
        if fell:
            ax.plot(*zip(*fell), "x", color="#d62728", markersize=9, markeredgewidth=2, label=f"{prefix}coverage fell")
        drawn = drawn or bool(xs or kx)
    right.set_ylabel("KL to the data (nats)")
    if drawn:
        (h1, l1), (h2, l2) = ax.get_legend_handles_labels(), right.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="center left", bbox_to_anchor=(1.08, 0.5), frameon=False)
    return _finish(fig, ax, "Mode coverage", "classes (modes) captured", drawn, legend=False)


def _finish(fig: Figure, ax, title: str, ylabel: str, drawn: bool, legend: bool = True) -> bytes:
    """Title, labels, grid and legend of a figure of curves; its PNG bytes."""
    if not drawn:
        ax.text(0.5, 0.5, "no metrics recorded yet", transform=ax.transAxes, ha="center", va="center")
    ax.set_title(title)
    ax.set_xlabel("generator updates")
    ax.set_ylabel(ylabel)
    ax.grid(True, linewidth=0.3, alpha=0.5)
    if drawn and legend:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
