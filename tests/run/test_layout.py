"""Run directories (run/layout.py): config.json, metrics.jsonl (robust to a line cut short by a crash), resuming."""
import json

import pytest

from advnets.config import make_config
from advnets.errors import ConfigError, RunError
from advnets.run import layout


def test_resolve_config_new_and_resumed(tmp_path):
    config = make_config("paper-mnist-5k")
    assert layout.resolve_config(tmp_path / "new", config, resume=False) is config
    layout.write_config(tmp_path, config)
    # no checkpoint yet: the same settings restart it, others are refused (no dead end, nothing overwritten)
    assert layout.resolve_config(tmp_path, config, resume=False) == config
    with pytest.raises(RunError, match="stopped before its first checkpoint"):
        layout.resolve_config(tmp_path, make_config("paper-mnist-5k", ["train.lr=0.05"]), resume=False)
    longer = make_config("paper-mnist-5k", ["train.epochs=300", "train.device=auto"])
    merged = layout.resolve_config(tmp_path, longer, resume=True)
    assert merged.train.epochs == 300 and merged.train.device == "auto" and merged.model == config.model
    with pytest.raises(ConfigError, match=r"train.lr: 0.1 -> 0.05"):
        layout.resolve_config(tmp_path, make_config("paper-mnist-5k", ["train.lr=0.05"]), resume=True)
    assert layout.read_config(tmp_path) == config


def test_read_config_errors(tmp_path):
    with pytest.raises(RunError, match="not a run directory"):
        layout.read_config(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        layout.read_config(tmp_path)


def test_metrics_survive_a_partial_last_line(tmp_path):
    for step in (1, 2, 3):
        layout.append_metrics(tmp_path, {"kind": "step", "step": step, "d_loss": 0.5})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"kind": "step", "step": 4, "d_lo')                    # a crash mid-append
    assert [r["step"] for r in layout.read_metrics(tmp_path)] == [1, 2, 3]
    layout.truncate_metrics(tmp_path, 2)                                   # resume from the step-2 checkpoint
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]
    assert layout.read_metrics(tmp_path / "nowhere") == []


def test_a_run_stored_before_coverage_became_a_default_stays_off(tmp_path):
    """A config.json without train.coverage_every_epochs was written when coverage was opt-in: it reads as 0 (off),
    while a stored null ("auto") or number reads as itself. Coverage may change at a resume: training does not
    depend on it."""
    data = json.loads(make_config("paper-mnist-5k").to_json())
    del data["train"]["coverage_every_epochs"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert layout.read_config(tmp_path).train.coverage_every_epochs == 0
    layout.write_config(tmp_path, make_config("paper-mnist-5k"))
    assert layout.read_config(tmp_path).train.coverage_every_epochs is None
    changed = make_config("paper-mnist-5k", ["train.coverage_every_epochs=0", "train.coverage_samples=200"])
    again = layout.resolve_config(tmp_path, changed, resume=True)
    assert again.train.coverage_every_epochs == 0 and again.train.coverage_samples == 200
