"""The fault matrix as tests: kill -9 during a save, a file-size limit, a partial metrics line, NaN at the last
step, SIGTERM, crafted checkpoints. Nothing is lost and no run directory is a dead end."""
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from advnets.config import make_config
from advnets.errors import CheckpointError, DivergedError, RunError
from advnets.run.loaded import load_run
from advnets.training import Trainer, train
from advnets.run.checkpoint import load_checkpoint, save_checkpoint
from advnets.run.layout import CHECKPOINT, read_metrics
from advnets.training.hooks import Reporter
from tests.cli.test_cli import assert_user_error, run_main
from tests.conftest import TINY, cli_sets

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
TRAIN = ["train", "--no-progress", *cli_sets(TINY)]

# A child that trains and kills itself with SIGKILL at the moment its first checkpoint is renamed into place.
KILLED_DURING_SAVE = """
import os, signal, sys
import advnets.fileio as fileio
real = fileio.os.replace
def replace(src, dst):
    if str(dst).endswith("last.pt"):
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
fileio.os.replace = replace
from advnets.cli import main
main(sys.argv[1:])
"""


def _epochs(run):
    return [r["epoch"] for r in read_metrics(run) if r["kind"] == "epoch"]


def test_kill_9_during_the_first_save_is_no_dead_end(tmp_path, digits_images):
    run = tmp_path / "run"
    child = subprocess.run([sys.executable, "-c", KILLED_DURING_SAVE, *TRAIN, "--epochs", "2", "--out", str(run)],
                           env=ENV, capture_output=True, text=True, timeout=120, check=False)
    assert child.returncode == -signal.SIGKILL
    stale = list((run / "checkpoints").glob(".last.pt.*.tmp"))
    assert len(stale) == 1 and stale[0].stat().st_size > 1000 and not (run / CHECKPOINT).exists()
    assert _epochs(run) == [1]

    # --resume starts again from step 0 with the stored config, after removing the temporary file
    trainer = Trainer(None, run, resume=True, train_images=digits_images)
    assert trainer.from_scratch and trainer.g_updates == 0 and not stale[0].exists()
    assert read_metrics(run) == []                  # the lost start's lines are gone
    trainer.close()
    # the same command again restarts it; another model is refused with a way out
    with pytest.raises(RunError, match="stopped before its first checkpoint.*model.noise_dim: 8 -> 4"):
        Trainer(make_config(overrides={**TINY, "model.noise_dim": 4}), run, train_images=digits_images)
    result = train(make_config(overrides=TINY), run, train_images=digits_images)
    assert result.epoch == 2 and _epochs(run) == [1, 2] and (run / CHECKPOINT).is_file()


def test_file_size_limit_while_checkpointing_keeps_the_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    train(make_config(overrides={**TINY, "train.epochs": 1}), run)
    before = (run / CHECKPOINT).read_bytes()
    limit = len(before) // 2                         # config, metrics and PNGs fit; a checkpoint does not

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "advnets", "train", "--resume", str(run), "--epochs", "2"],
                          env=ENV, capture_output=True, text=True, timeout=120, preexec_fn=small_files,
                          check=False)
    assert_user_error(proc, f"cannot write {run / CHECKPOINT}: the file-size limit was reached",
                      f"the last checkpoint is intact: continue with `advnets train --resume {run}`")
    assert (run / CHECKPOINT).read_bytes() == before  # the previous checkpoint is untouched
    assert not list((run / "checkpoints").glob(".*.tmp"))
    assert load_checkpoint(run / CHECKPOINT)["epoch"] == 1


def test_partial_metrics_line_does_not_break_resume(tmp_path, digits_images, tiny_overrides):
    run = tmp_path / "run"
    train(make_config(overrides={**tiny_overrides, "train.epochs": 1}), run, train_images=digits_images)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"kind": "epoch", "epo')              # a crash mid-append
    assert _epochs(run) == [1]
    train(make_config(overrides={**tiny_overrides, "train.epochs": 2}), run, resume=True, train_images=digits_images)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


class NanAt(Reporter):
    def __init__(self, step):
        self.at = step

    def step(self, trainer, stats):
        if trainer.g_updates == self.at:
            with torch.no_grad():
                trainer.generator.layers[0].weight.fill_(float("nan"))


def test_nan_at_the_last_step_writes_no_checkpoint(tmp_path, digits_images, tiny_overrides):
    run = tmp_path / "run"
    config = make_config(overrides={**tiny_overrides, "train.max_steps": 3})
    with pytest.raises(DivergedError, match=r"by step 3\); no checkpoint was written before it"):
        Trainer(config, run, train_images=digits_images, reporter=NanAt(3)).run()
    assert not (run / CHECKPOINT).exists()
    assert Trainer(None, run, resume=True, train_images=digits_images).run().step == 3   # no dead end
    config = make_config(overrides={**tiny_overrides, "train.max_steps": 6})
    with pytest.raises(DivergedError, match="still holds the last finite state"):
        Trainer(config, run, resume=True, train_images=digits_images, reporter=NanAt(6)).run()
    assert load_checkpoint(run / CHECKPOINT)["g_updates"] == 3


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_checkpoint_like_ctrl_c(tmp_path, digits_images, tiny_overrides, sig):
    class Term(Reporter):
        def step(self, trainer, stats):
            if trainer.g_updates == 7:
                os.kill(os.getpid(), sig)

    run = tmp_path / "run"
    previous = signal.signal(sig, signal.SIG_DFL)        # as a foreground shell starts it (nohup: ignored, below)
    try:
        result = Trainer(make_config(overrides=tiny_overrides), run, train_images=digits_images,
                         reporter=Term()).run()
        assert result.interrupted and result.step == 7 and load_checkpoint(run / CHECKPOINT)["g_updates"] == 7
        assert signal.getsignal(sig) is signal.SIG_DFL
    finally:
        signal.signal(sig, previous)


def test_a_signal_the_process_ignores_stays_ignored(tmp_path, digits_images, tiny_overrides):
    class Hangup(Reporter):
        def step(self, trainer, stats):
            if trainer.g_updates == 7:
                os.kill(os.getpid(), signal.SIGHUP)       # what a closed terminal sends a `nohup` run

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        config = make_config(overrides={**tiny_overrides, "train.max_steps": 12})
        result = Trainer(config, tmp_path / "run", train_images=digits_images, reporter=Hangup()).run()
        assert not result.interrupted and result.step == 12
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_lost_config_json_resumes_from_the_checkpoint(tmp_path, digits_images, tiny_overrides):
    run = tmp_path / "run"
    train(make_config(overrides={**tiny_overrides, "train.epochs": 1}), run, train_images=digits_images)
    (run / "config.json").unlink()
    trainer = Trainer(None, run, resume=True, train_images=digits_images)
    assert trainer.epoch == 1 and (run / "config.json").is_file()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits_images):
    run = tmp_path_factory.mktemp("trained") / "run"
    train(make_config(overrides={**TINY, "train.max_steps": 2}), run, train_images=digits_images)
    return run


CRAFTED = {"epoch": "one", "g_updates": -1, "image_shape": "1,8,8", "generator": [1, 2], "config": "{not json",
           "discriminator": {"w": "tensor"}, "num_classes": 1.5, "opt_g": {"state": 1}, "rng": torch.zeros(3),
           "perm": torch.zeros(3), "position": True, "sums": "0", "fixed_noise": None,
           "image_shape_huge": [1, 100000, 100000]}


@pytest.mark.parametrize("field", sorted(CRAFTED))
def test_crafted_checkpoint_fields_are_checkpoint_errors(field, trained, tmp_path, digits_images):
    payload = load_checkpoint(trained / CHECKPOINT)
    payload[field.replace("_huge", "")] = CRAFTED[field]
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text((trained / "config.json").read_text())
    save_checkpoint(run / CHECKPOINT, {k: v for k, v in payload.items() if k not in ("format", "version")})
    expected = "unreadable config" if field == "config" else f"damaged: its '{field.replace('_huge', '')}' is"
    with pytest.raises(CheckpointError, match=expected):
        load_run(run)
    with pytest.raises(CheckpointError, match=expected):
        Trainer(None, run, resume=True, train_images=digits_images)


def test_checkpoint_that_does_not_fit_the_run(trained, tmp_path, digits_images):
    payload = load_checkpoint(trained / CHECKPOINT)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text((trained / "config.json").read_text())
    for key, value in {"fixed_noise": torch.zeros(3, 3), "perm": torch.arange(5),
                       "position": 10 ** 6, "rng": torch.zeros(7, dtype=torch.uint8)}.items():
        save_checkpoint(run / CHECKPOINT, {**{k: v for k, v in payload.items() if k not in ("format", "version")},
                                           key: value})
        with pytest.raises(CheckpointError, match="does not fit this run"):
            Trainer(None, run, resume=True, train_images=digits_images)


def test_nan_generator_is_refused_by_sample_and_figures(trained, tmp_path, capsys):
    payload = load_checkpoint(trained / CHECKPOINT)
    payload["generator"] = {k: torch.full_like(v, float("nan")) for k, v in payload["generator"].items()}
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text((trained / "config.json").read_text())
    save_checkpoint(run / CHECKPOINT, {k: v for k, v in payload.items() if k not in ("format", "version")})
    with pytest.raises(CheckpointError, match="the generator in .* has NaN or infinite weights"):
        load_run(run)
    for command in (["sample", run, "--out", tmp_path / "x.png"], ["figure", "interpolate", run],
                    ["eval", run, "--nearest"]):
        assert_user_error(run_main(capsys, *command), "NaN or infinite weights")
    assert not (tmp_path / "x.png").exists() and not (run / "figures").exists()
