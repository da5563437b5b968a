"""training/tensorboard.py: records written as TensorBoard scalars and images, read back from the event file."""
from __future__ import annotations

import io
import struct
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("tensorboardX")

import advnets.training.coverage_monitor as monitor  # noqa: E402
from advnets.config import make_config  # noqa: E402
from advnets.errors import AdvnetsError  # noqa: E402
from advnets.run.layout import read_metrics  # noqa: E402
from advnets.training import train  # noqa: E402
from advnets.training.tensorboard import TensorBoardReporter, scalar_tags  # noqa: E402
from tests.training.test_coverage import UNSET, _ScriptedClassifier  # noqa: E402

RECORDS = [
    {"kind": "step", "step": 10, "epoch": 0, "d_loss": 1.25, "g_loss": 0.5, "d_real": 0.75, "d_fake": 0.125},
    {"kind": "step", "step": 20, "epoch": 0, "d_loss": 1.0, "g_loss": 0.625, "d_real": 0.5, "d_fake": 0.25},
    {"kind": "epoch", "epoch": 1, "step": 25, "d_loss": 1.125, "g_loss": 0.5625, "d_real": 0.625, "d_fake": 0.1875,
     "lr": 0.1, "momentum": 0.5, "steps_per_s": 250.0, "seconds": 0.1, "coverage": 0.875, "note": "text",
     "finite": True, "missing": None},
]


def _events(log_dir):
    """Every Event in the directory's event files, parsed from the TFRecord framing (length, crc, data, crc)."""
    from tensorboardX.proto.event_pb2 import Event

    events = []
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            events.append(Event.FromString(data[pos + 12:pos + 12 + length]))
            pos += 12 + length + 4
    return events


def _scalars(events) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for e in events:
        for v in e.summary.value:
            if v.HasField("simple_value"):
                out.setdefault(v.tag, []).append((e.step, v.simple_value))
    return out


def test_scalar_tags():
    assert scalar_tags(RECORDS[0]) == {"loss/d": 1.25, "loss/g": 0.5, "D/real": 0.75, "D/fake": 0.125}
    assert scalar_tags(RECORDS[2]) == {
        "loss/d_epoch_mean": 1.125, "loss/g_epoch_mean": 0.5625, "D/real_epoch_mean": 0.625,
        "D/fake_epoch_mean": 0.1875, "opt/lr": 0.1, "opt/momentum": 0.5, "speed/steps_per_s": 250.0,
        "speed/seconds_per_epoch": 0.1, "metrics/coverage": 0.875, "progress/epoch": 1.0}


def test_scalars_and_image_read_back(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.uniform(0, 1, size=(6, 1, 8, 8)).astype(np.float32))
    with TensorBoardReporter(tmp_path) as tb:
        for record in RECORDS:
            tb.log(record)
        tb.samples(1, 25, images, nrow=3)
    scalars = _scalars(_events(tmp_path))
    assert scalars["loss/d"] == [(10, 1.25), (20, 1.0)]
    assert scalars["D/fake"] == [(10, 0.125), (20, 0.25)]
    assert scalars["D/real_epoch_mean"] == [(25, 0.625)]
    assert scalars["opt/lr"] == [(25, pytest.approx(0.1))]
    assert scalars["metrics/coverage"] == [(25, 0.875)]
    assert not any(tag.endswith(("note", "finite", "missing")) for tag in scalars)

    (image,) = [(e.step, v.image) for e in _events(tmp_path) for v in e.summary.value if v.tag == "samples"]
    step, summary = image
    assert step == 25
    grid = np.asarray(Image.open(io.BytesIO(summary.encoded_image_string)).convert("L"), dtype=np.float32) / 255
    # 2 rows x 3 columns of 8x8 images with 2-pixel padding: 22 x 32; the first image sits at (2, 2)
    assert grid.shape == (22, 32)
    assert np.abs(grid[2:10, 2:10] - images[0, 0].numpy()).max() <= 1 / 255
    assert np.abs(grid[12:20, 22:30] - images[5, 0].numpy()).max() <= 1 / 255


def test_a_run_with_coverage_has_its_figures_as_scalars(tmp_path, monkeypatch):
    """The coverage figures of a run's epoch lines are TensorBoard scalars, at the lines' steps; the warning (a
    text) is not one."""
    clf = _ScriptedClassifier([10, 10, 2])               # the timed evaluation, then epochs 1 (10 classes) and 2 (2)
    monkeypatch.setattr(monitor, "load_or_train_classifier", lambda data_config, **kw: clf)
    train(make_config(None, {**UNSET, "train.coverage_every_epochs": 1}), tmp_path / "run")
    lines = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "epoch"]
    assert [r.get("coverage_warning") for r in lines] == [None, "classes_captured"]
    scalars = _scalars(_events(tmp_path / "run"))
    assert scalars["metrics/classes_captured"] == [(r["step"], r["classes_captured"]) for r in lines] == \
        [(lines[0]["step"], 10), (lines[1]["step"], 2)]
    assert scalars["metrics/class_kl"] == [(r["step"], pytest.approx(r["class_kl"], abs=1e-6)) for r in lines]
    assert not any("warning" in tag for tag in scalars)


def test_tensorboard_itself_reads_the_file(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    with TensorBoardReporter(tmp_path / "run_a") as tb:
        for record in RECORDS:
            tb.log(record)
        tb.samples(1, 25, torch.rand(4, 3, 8, 8), nrow=2)
    acc = accumulator.EventAccumulator(str(tmp_path / "run_a"))
    acc.Reload()
    assert [(s.step, s.value) for s in acc.Scalars("loss/g")] == [(10, 0.5), (20, 0.625)]
    assert [i.step for i in acc.Images("samples")] == [25]


def test_several_runs_under_one_logdir(tmp_path):
    """`tensorboard --logdir runs` names each run by its directory when each run writes into its own."""
    multiplexer = pytest.importorskip("tensorboard.backend.event_processing.event_multiplexer")
    for name, value in (("a", 1.0), ("b", 2.0)):
        with TensorBoardReporter(tmp_path / name) as tb:
            tb.log({"kind": "step", "step": 5, "epoch": 0, "d_loss": value})
    mux = multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(tmp_path))
    mux.Reload()
    assert sorted(mux.Runs()) == ["a", "b"]
    assert [(e.step, e.value) for e in mux.Scalars("b", "loss/d")] == [(5, 2.0)]


def test_missing_writer_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(AdvnetsError, match="tensorboardX") as info:
        TensorBoardReporter(tmp_path)
    assert "pip install tensorboardX" in info.value.hint


def test_writer_imports_neither_tensorflow_nor_tensorboard(tmp_path):
    import os
    import subprocess
    from pathlib import Path

    import advnets

    code = ("import sys; from advnets.training.tensorboard import TensorBoardReporter; "
            f"r = TensorBoardReporter({str(tmp_path)!r}); r.log({{'kind': 'step', 'step': 1, 'd_loss': 1.0}}); "
            "r.close(); print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tensorboard')))")
    env = {**os.environ, "PYTHONPATH": str(Path(advnets.__file__).parents[1])}     # this checkout's advnets
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
