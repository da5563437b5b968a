"""A run report: one self-contained HTML file for one run or a group of runs, with its PNGs beside it.

The page shows each run's loss and D-output curves (and its mode coverage when its epoch lines measured it: classes
or modes captured and their KL, a cross where it fell), its latest sample grid and up to three earlier ones, every
eval/*.json as a table, and its config as the preset it is nearest to and the keys that differ from that preset
(the whole config folded below, and a link to config.json); for several runs, the curves overlaid (one colour per
run) and one table comparing them: the config keys that differ, the final metrics and the evaluation numbers. Images
are embedded as base64 data URIs so the single HTML file can be mailed or archived; the curve PNGs are also written
to `<name>_files/` beside it. All text from the runs is HTML-escaped. Only regular files inside a run are read,
never through a symbolic link or from a FIFO; a sample grid must be a PNG and an eval file a JSON object, or it is
left out with a `ReportWarning`.
"""
from __future__ import annotations

import base64
import html
import json
import math
import os
import urllib.parse
import warnings
from datetime import datetime, timezone
from pathlib import Path

from ..config import PRESETS, make_config
from ..errors import RunError
from ..fileio import PNG_SIGNATURE, atomic_open, atomic_write_text, file_kind, open_regular, read_regular
from .curves import COLOURS, coverage_keys, coverage_png, curve_png
from .layout import CONFIG, EVAL, SAMPLES, check_output, read_config_data, read_metrics

FINAL_KEYS = ("epoch", "step", "d_loss", "g_loss", "d_real", "d_fake", "steps_per_s", "classes_captured", "class_kl",
              "modes_captured", "high_quality", "reverse_kl")
EARLIER_GRIDS = 3
ABSENT = "(absent)"             # a key one config has and another lacks (written by another advnets version)

__all__ = ["ReportWarning", "config_changes", "final_metrics", "flatten", "nearest_preset", "pick_grids", "run_names",
           "write_report"]


class ReportWarning(UserWarning):
    """A file of a run left out of its report: not a regular file, a link, or not what its name says."""


def write_report(run_dirs: list[str | Path], out_path: str | Path) -> Path:
    """Write the report of `run_dirs` to the HTML file `out_path` (its PNGs to `<stem>_files/` beside it)."""
    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise RunError("no run directory given", "name one or more directories written by `advnets train`")
    configs = [_read_config(d) for d in dirs]
    names = run_names(dirs)
    records = [read_metrics(d) for d in dirs]
    out_path = Path(out_path)
    files = out_path.parent / f"{out_path.stem}_files"
    check_output(out_path)
    check_output(files / "losses.png")
    curves, runs = {}, list(zip(names, records, strict=True))
    for panel in ("losses", "d_outputs", "coverage"):
        if panel == "coverage" and not any(coverage_keys(r) for r in records):
            continue
        png = coverage_png(runs) if panel == "coverage" else curve_png(runs, panel)
        with atomic_open(files / f"{panel}.png") as f:
            f.write(png)
        curves[panel] = png
    evals = [_read_evals(d) for d in dirs]
    body = [_header(names, dirs), _curves_section(curves, names)]
    if len(dirs) > 1:
        body.append(_comparison(names, configs, records, evals))
    for i, (name, d, config, recs, ev) in enumerate(zip(names, dirs, configs, records, evals, strict=True)):
        body.append(_run_section(i, name, d, config, recs, ev, os.path.relpath(d / CONFIG, out_path.parent)))
    atomic_write_text(out_path, _page(" vs ".join(names) if len(names) <= 4 else f"{len(names)} runs", body))
    return out_path


# ----- data

def flatten(obj, prefix: str = "") -> dict[str, object]:
    """Nested dicts as one dict with dotted keys; lists are kept as values."""
    if not isinstance(obj, dict):
        return {prefix: obj} if prefix else {"value": obj}
    out: dict[str, object] = {}
    for key, value in obj.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def run_names(dirs: list[Path]) -> list[str]:
    """Short names that tell the runs apart: each directory's name, with as many parent folders as it takes to
    make the names unique."""
    parts = [d.resolve().parts for d in dirs]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(d) for d in dirs]       # the same directory given twice


def _grid_step(path: Path) -> tuple[float, str]:
    """Grids in the order they were made: by modification time (epoch_ and step_ grids interleave), then name."""
    return path.lstat().st_mtime, path.name


def pick_grids(paths: list[Path], earlier: int = EARLIER_GRIDS) -> list[Path]:
    """The latest sample grid and up to `earlier` earlier ones spread over the run, oldest first (`paths` in the
    order they were made)."""
    if len(paths) <= earlier + 1:
        return paths
    before = paths[:-1]
    # evenly spaced over the earlier grids, starting with the first
    picks = sorted({round(i * (len(before) - 1) / max(earlier - 1, 1)) for i in range(earlier)})
    return [before[i] for i in picks] + [paths[-1]]


def final_metrics(records: list[dict]) -> dict[str, object]:
    """The last epoch record's numbers (the last step record's when no epoch has finished)."""
    for kind in ("epoch", "step"):
        last = [r for r in records if r.get("kind") == kind]
        if last:
            return {k: last[-1][k] for k in FINAL_KEYS if k in last[-1]}
    return {}


def nearest_preset(config: dict) -> str:
    """The preset from which a run's stored config (config.json, parsed) differs in the fewest keys; on a tie the
    first in PRESETS' order, whose first entry, paper-mnist, is the defaults. config.json holds the values, not
    how they were given, so this names the shortest description of the run, "preset + these keys"."""
    flat = flatten(config)
    return min(PRESETS, key=lambda name: len(config_changes(flat, _preset_values(name))))


def config_changes(values: dict[str, object], base: dict[str, object]) -> list[tuple[str, object, object]]:
    """(key, value, base's value) for each dotted key whose value differs between the flat configs `values` and
    `base` (compared as JSON; a key one of them lacks is ABSENT there), sorted by key."""
    pairs = ((k, values.get(k, ABSENT), base.get(k, ABSENT)) for k in sorted(set(values) | set(base)))
    return [(k, v, b) for k, v, b in pairs if _json(v) != _json(b)]


def _json(value) -> str:
    return json.dumps(value, sort_keys=True)


def _preset_values(name: str) -> dict[str, object]:
    """A preset's whole config, flat, as config.json would hold it (lists, not tuples)."""
    return flatten(json.loads(make_config(name).to_json()))


def _read_config(run_dir: Path) -> dict:
    """The run's config as stored (not checked against this version's schema: the report shows what is there)."""
    data = read_config_data(run_dir)
    return data if isinstance(data, dict) else {"config": data}


def _read_evals(run_dir: Path) -> dict[str, dict | str]:
    """{file name: parsed JSON object, or an error text} for each eval/*.json."""
    out: dict[str, dict | str] = {}
    for path in _files(run_dir / EVAL, "*.json"):
        try:
            data = json.loads(read_regular(path))
        except (OSError, ValueError) as exc:         # ValueError: not JSON, or not UTF-8
            out[path.name] = f"unreadable: {exc}"
            continue
        if isinstance(data, dict):
            out[path.name] = data
        else:
            warnings.warn(f"left {path} out of the report: not a JSON object", ReportWarning, stacklevel=2)
    return out


def _files(folder: Path, pattern: str) -> list[Path]:
    """The regular files in `folder` matching `pattern`, by name; each link, FIFO or other special file is left out
    with a ReportWarning, and so is the whole folder when it is a link."""
    kind = file_kind(folder)
    if kind is not None and kind != "a directory":
        warnings.warn(f"left {folder} out of the report: it is {kind}, not a folder of the run", ReportWarning,
                      stacklevel=3)
    paths = []
    for path in sorted(folder.glob(pattern)) if kind == "a directory" else ():
        what = file_kind(path)
        if what is None:
            paths.append(path)
        else:
            warnings.warn(f"left {path} out of the report: it is {what}, not a regular file", ReportWarning,
                          stacklevel=3)
    return paths


def _is_png(path: Path) -> bool:
    """Whether `path` starts with the PNG signature (a ReportWarning when it does not)."""
    try:
        with open_regular(path) as f:
            if f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE:
                return True
    except (OSError, RunError):                      # gone, or replaced since it was listed
        pass
    warnings.warn(f"left {path} out of the report: not a PNG file", ReportWarning, stacklevel=3)
    return False


# ----- HTML

def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        short = repr(value)                 # the shortest exact form (1.000004), unless it is long
        return short if len(short) <= 10 else f"{value:.6g}"
    if isinstance(value, list):
        if len(value) > 8:
            shown = ", ".join(_fmt(v) for v in value[:3])
            return f"[{shown}, ... {len(value)} values]"
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _e(value) -> str:
    text = _fmt(value) if not isinstance(value, str) else value
    return html.escape(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))   # a non-UTF-8 name


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _table(rows: list[tuple], head: tuple | None = None, cls: str = "kv") -> str:
    parts = [f'<table class="{cls}">']
    if head:
        parts.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<th>{_e(row[0])}</th>" if j == 0 else f"<td>{_e(c)}</td>"
                                      for j, c in enumerate(row)) + "</tr>")
    parts.append("</table>")
    return "".join(parts)


def _header(names: list[str], dirs: list[Path]) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    runs = "".join(f'<li><span class="swatch" style="background:{COLOURS[i % len(COLOURS)]}"></span>'
                   f"<b>{_e(n)}</b> <code>{_e(str(d))}</code></li>"
                   for i, (n, d) in enumerate(zip(names, dirs, strict=True)))
    title = "Run report" if len(names) == 1 else f"Comparison of {len(names)} runs"
    return f"<h1>{_e(title)}</h1><p class=\"meta\">advnets, written {_e(when)}</p><ul class=\"runs\">{runs}</ul>"


def _curves_section(curves: dict[str, bytes], names: list[str]) -> str:
    caption = "one colour per run; thin: per logged step, thick with dots: epoch means" if len(names) > 1 else \
        "thin: per logged step, thick with dots: epoch means"
    if "coverage" in curves:
        caption += ("; mode coverage of the epoch lines: classes (modes) captured, solid, and their KL to the data, "
                    "dashed, right axis; a cross where it fell")
    imgs = "".join(f'<figure><img class="curve" alt="{_e(p)}" src="{_data_uri(png)}"></figure>'
                   for p, png in curves.items())
    return f"<h2>Training curves</h2><p class=\"note\">{_e(caption)}</p>{imgs}"


def _comparison(names: list[str], configs: list[dict], records: list[list[dict]], evals: list[dict]) -> str:
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat))
    differ = [k for k in keys if len({_json(f.get(k, ABSENT)) for f in flat}) > 1]
    rows = [(f"config: {k}", *[f.get(k, ABSENT) for f in flat]) for k in differ]
    if not differ:
        rows.append(("config", *["the same"] * len(names)))
    finals = [final_metrics(r) for r in records]
    rows += [(f"final: {k}", *[f.get(k, "") for f in finals]) for k in FINAL_KEYS if any(k in f for f in finals)]
    flat_evals = [{f"{name}: {k}": v for name, e in ev.items() if isinstance(e, dict)
                   for k, v in flatten(e).items() if not isinstance(v, (list, dict))} for ev in evals]
    eval_keys = sorted(set().union(*flat_evals))
    rows += [(f"eval {k}", *[fe.get(k, "") for fe in flat_evals]) for k in eval_keys]
    return "<h2>Comparison</h2>" + _table(rows, ("", *names), cls="compare")


def _run_section(i: int, name: str, run_dir: Path, config: dict, records: list[dict], evals: dict,
                 config_link: str) -> str:
    colour = COLOURS[i % len(COLOURS)]
    out = [f'<section><h2><span class="swatch" style="background:{colour}"></span>{_e(name)}</h2>']
    final = final_metrics(records)
    if final:
        out.append("<h3>Where training stands</h3>" + _table(list(final.items())))
    grids = pick_grids(sorted(filter(_is_png, _files(run_dir / SAMPLES, "*_*.png")), key=_grid_step))
    if grids:
        out.append("<h3>Samples (fixed noise)</h3><div class=\"grids\">")
        for path in grids:
            label = path.stem.replace("_", " ") + (" (latest)" if path == grids[-1] else "")
            out.append(f'<figure><img class="grid" alt="{_e(path.name)}" src="{_data_uri(read_regular(path))}">'
                       f"<figcaption>{_e(label)}</figcaption></figure>")
        out.append("</div>")
    else:
        out.append('<p class="note">no sample grids yet (samples/epoch_XXXX.png)</p>')
    for file_name, data in evals.items():
        out.append(f"<h3>eval/{_e(file_name)}</h3>")
        out.append(_table(list(flatten(data).items())) if isinstance(data, dict) else f"<p>{_e(data)}</p>")
    out.append(_config_section(config, config_link))
    out.append("</section>")
    return "".join(out)


def _config_section(config: dict, link: str) -> str:
    """The preset nearest to the run's config and the keys that differ from it; the whole config folded below."""
    preset = nearest_preset(config)
    changes = config_changes(flatten(config), _preset_values(preset))
    href = html.escape(urllib.parse.quote(Path(link).as_posix(), errors="surrogateescape"))
    which = (f'<p>Preset <b>{_e(preset)}</b> <span class="note">(the preset nearest to this run\'s '
             f'<a href="{href}">{CONFIG}</a>)</span>')
    count = "the key that differs" if len(changes) == 1 else f"the {len(changes)} keys that differ"
    out = ["<h3>Config</h3>" + which + (f", and {count} from it:</p>" if changes else ", unchanged.</p>")]
    if changes:
        out.append(_table(changes, ("key", "this run", preset)))
    rows = list(flatten(config).items())
    out.append(f"<details><summary>Whole config ({len(rows)} keys)</summary>{_table(rows)}</details>")
    return "".join(out)


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;
color:#222}
h1{margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.meta,.note{color:#666;font-size:.9em}code{font-size:.85em;color:#555}
ul.runs{list-style:none;padding:0}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.4em;border-radius:2px}
img.curve{max-width:100%;border:1px solid #eee}figure{margin:.5em 1em .5em 0;display:inline-block;
vertical-align:top}
img.grid{width:220px;image-rendering:pixelated;border:1px solid #ccc}figcaption{text-align:center;
font-size:.85em;color:#555}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0}th,td{border:1px solid #ddd;padding:2px 8px;
text-align:left}
th{background:#f6f6f6;font-weight:600}table.compare td{font-variant-numeric:tabular-nums}
details{margin:.6em 0}summary{cursor:pointer;color:#444}
"""


def _page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)} - advnets report</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
