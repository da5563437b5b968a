"""run/report.py and run/curves.py: metrics reading, the HTML report's content, and how a browser renders it."""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from advnets import make_config, train
from advnets.config import PRESETS
from advnets.errors import RunError
from advnets.run.curves import curve_png, series
from advnets.run.layout import read_metrics
from advnets.run.report import (
    config_changes,
    final_metrics,
    flatten,
    nearest_preset,
    pick_grids,
    run_names,
    write_report,
)
from tests.conftest import TINY


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two tiny 2-epoch runs on the 8x8 digits that differ in train.lr; the first has an eval/*.json."""
    root = tmp_path_factory.mktemp("report")
    dirs = []
    for name, lr in (("fast", 0.1), ("slow", 0.02)):
        train(make_config("paper-mnist", {**TINY, "train.lr": lr, "train.log_every_steps": 10}), root / name)
        dirs.append(root / name)
    (dirs[0] / "eval").mkdir()
    (dirs[0] / "eval" / "parzen.json").write_text(json.dumps(
        {"run": "<b>evil</b>", "sigma": 0.17, "test_mean": 225.125, "sigmas": [0.1, 0.2], "nearest": {"ratio": 1.5}}))
    return dirs


def _write_metrics(run_dir: Path, lines: list[str]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("\n".join(lines))


def test_read_metrics_skips_what_does_not_parse(tmp_path):
    _write_metrics(tmp_path, ['{"kind": "step", "step": 1, "d_loss": 0.5}', "", "[1, 2]", "not json",
                              '{"kind": "epoch", "step": 2, "epoch": 1, "d_loss": 0.25}', '{"kind": "step", "st'])
    assert read_metrics(tmp_path) == [{"kind": "step", "step": 1, "d_loss": 0.5},
                                      {"kind": "epoch", "step": 2, "epoch": 1, "d_loss": 0.25}]
    assert read_metrics(tmp_path / "nowhere") == []


def test_series_and_final_metrics():
    records = [{"kind": "step", "step": 1, "d_real": 0.5}, {"kind": "step", "step": 2, "d_real": float("nan")},
               {"kind": "step", "step": 3, "d_real": 0.75}, {"kind": "epoch", "step": 3, "epoch": 1, "d_real": 0.6,
                                                              "lr": 0.1}, {"kind": "step", "step": 4, "d_real": True}]
    assert series(records, "d_real", "step") == ([1.0, 3.0], [0.5, 0.75])
    assert series(records, "d_real", "epoch") == ([3.0], [0.6])
    assert final_metrics(records) == {"epoch": 1, "step": 3, "d_real": 0.6}
    assert final_metrics(records[:3]) == {"step": 3, "d_real": 0.75}
    assert final_metrics([]) == {}


def test_pick_grids():
    paths = [Path(f"epoch_{i:04d}.png") for i in range(1, 11)]
    assert [p.name for p in pick_grids(paths)] == ["epoch_0001.png", "epoch_0005.png", "epoch_0009.png",
                                                   "epoch_0010.png"]       # given in the order they were made
    assert pick_grids(paths[:3]) == paths[:3]
    assert pick_grids([]) == []


def test_run_names_and_flatten():
    assert run_names([Path("/r/a/x"), Path("/r/b/x"), Path("/r/b/y")]) == ["a/x", "b/x", "b/y"]
    assert run_names([Path("/r/a"), Path("/r/b")]) == ["a", "b"]
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {"a.b": 1, "a.c.d": [1, 2], "e": {}}


def test_curve_png_is_a_png():
    from PIL import Image

    for runs in ([], [("a", [])], [("a", [{"kind": "step", "step": 1, "d_loss": 0.7, "g_loss": 0.7}])]):
        image = Image.open(io.BytesIO(curve_png(runs, "losses")))
        assert image.format == "PNG" and image.size[0] > 300


def _data_uris(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_comparison_report(two_runs, tmp_path):
    from PIL import Image

    out = write_report(two_runs, tmp_path / "cmp.html")
    page = out.read_text()
    assert "fast" in page and "slow" in page
    # the comparison table: train.lr differs, with both values; keys that are the same are not listed there
    compare = page.split('<table class="compare">')[1].split("</table>")[0]
    assert "config: train.lr" in compare and "<td>0.1</td>" in compare and "<td>0.02</td>" in compare
    assert "train.batch_size" not in compare
    assert "final: d_loss" in compare and "eval parzen.json: test_mean" in compare
    # every image is embedded as a PNG: 2 curves + 2 grids per run (epochs 1, 2)
    images = [Image.open(io.BytesIO(data)) for data in _data_uris(page)]
    assert len(images) == 2 + 2 * 2 and all(im.format == "PNG" for im in images)
    assert sorted(p.name for p in (tmp_path / "cmp_files").iterdir()) == ["d_outputs.png", "losses.png"]
    # text from the runs is escaped
    assert "&lt;b&gt;evil&lt;/b&gt;" in page and "<b>evil" not in page
    assert "eval/parzen.json" in page and "225.125" in page


def test_single_report_lists_the_whole_config(two_runs, tmp_path):
    page = write_report(two_runs[:1], tmp_path / "one.html").read_text()
    config = json.loads((two_runs[0] / "config.json").read_text())
    for key in flatten(config):
        assert f"<th>{key}</th>" in page
    assert "Comparison" not in page
    assert len(_data_uris(page)) == 2 + 2


def test_a_run_with_coverage_shows_its_curve_and_final_figures(two_runs, tmp_path):
    from PIL import Image

    run = tmp_path / "covered"
    shutil.copytree(two_runs[0], run)
    figures = iter([{"classes_captured": 8, "class_kl": 0.3},
                    {"classes_captured": 3, "class_kl": 1.25, "coverage_warning": "classes_captured"}])
    _write_metrics(run, [json.dumps({**r, **(next(figures) if r["kind"] == "epoch" else {})})
                         for r in read_metrics(two_runs[0])])
    page = write_report([run, two_runs[1]], tmp_path / "cov.html").read_text()
    assert sorted(p.name for p in (tmp_path / "cov_files").iterdir()) == ["coverage.png", "d_outputs.png",
                                                                          "losses.png"]
    assert page.count('alt="coverage"') == 1 and "mode coverage of the epoch lines" in page
    png = (tmp_path / "cov_files" / "coverage.png").read_bytes()
    assert Image.open(io.BytesIO(png)).size == (950, 380) and _data_uri_of(png) in page
    compare = page.split('<table class="compare">')[1].split("</table>")[0]
    assert re.search(r"<th>final: classes_captured</th><td>3</td><td></td>", compare)
    assert re.search(r"<th>final: class_kl</th><td>1.25</td><td></td>", compare)
    stands = page.split("<h3>Where training stands</h3>")[1].split("</table>")[0]
    assert "<tr><th>classes_captured</th><td>3</td></tr>" in stands


def _data_uri_of(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def test_nearest_preset_and_config_changes():
    for name in PRESETS:                                    # each preset is its own nearest, with no change
        config = json.loads(make_config(name).to_json())
        assert nearest_preset(config) == name
    config = json.loads(make_config("paper-mnist-5k", ["train.epochs=1", "model.noise_dim=50"]).to_json())
    assert nearest_preset(config) == "paper-mnist-5k"
    base = flatten(json.loads(make_config("paper-mnist-5k").to_json()))
    assert config_changes(flatten(config), base) == [("model.noise_dim", 50, 100), ("train.epochs", 1, 100)]
    # keys of another advnets version: absent on one side
    assert config_changes({"a": 1, "b": [1, 2], "c": None}, {"b": [1, 2], "c": None, "d": 0.5}) == \
        [("a", 1, "(absent)"), ("d", "(absent)", 0.5)]


def test_the_config_table_shows_the_keys_that_differ_from_the_preset(two_runs, tmp_path):
    page = write_report(two_runs[:1], tmp_path / "one.html").read_text()
    shown, folded = page.split("<h3>Config</h3>")[1].split("</section>")[0].split("<details>")
    defaults = flatten(json.loads(make_config("paper-mnist").to_json()))
    overrides = {**TINY, "train.lr": 0.1, "train.log_every_steps": 10}        # the first run's (the lr is default)
    changed = sorted(k for k, v in overrides.items() if defaults[k] != v)
    assert "Preset <b>paper-mnist</b>" in shown and f"the {len(changed)} keys that differ from it" in shown
    assert re.findall(r"<tr><th>([^<]+)</th><td>", shown) == changed
    assert "<th>this run</th><th>paper-mnist</th>" in shown
    assert "<tr><th>train.batch_size</th><td>20</td><td>100</td></tr>" in shown
    assert "conv" not in shown and "mixture" not in shown                      # what an MLP run does not use
    assert len(re.findall(r"<tr><th>", folded)) == len(defaults)               # the whole config, folded
    config_json = re.search(r'<a href="([^"]+)">config.json</a>', shown).group(1)
    assert (tmp_path / config_json).resolve() == (two_runs[0] / "config.json").resolve()


def test_not_a_run(tmp_path):
    with pytest.raises(RunError, match="not a run directory"):
        write_report([tmp_path], tmp_path / "r.html")
    with pytest.raises(RunError):
        write_report([], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_report_renders_in_a_browser(two_runs, tmp_path):
    from PIL import Image

    out = write_report(two_runs, tmp_path / "cmp.html")
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1200,2000", out.resolve().as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert shot.is_file()
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (2000, 1200)
    # a blank page is one colour; the report has text, curves and tables over most of its height
    assert pixels.std() > 20
    rows_with_ink = (pixels < 128).any(axis=1).mean()
    assert rows_with_ink > 0.3
