"""The command line as a user meets it: real subprocesses, exit codes, one-line errors, no tracebacks."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import TINY, cli_sets


def advnets(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ADVNETS_DATA": str(cwd or ".") + "/cache"}
    return subprocess.run([sys.executable, "-m", "advnets", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300, check=False)


def run_main(capsys, *args):
    """The CLI in this process (same code as the console script, without a process start)."""
    from advnets.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def assert_user_error(proc, *fragments):
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("advnets: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["config"]])
def test_help(command):
    proc = advnets(*command, "--help")
    assert proc.returncode == 0 and "usage: advnets" in proc.stdout


def test_config_error_in_a_real_process(tmp_path):
    assert_user_error(advnets("train", "--preset", "paper-mnst", cwd=tmp_path), "did you mean 'paper-mnist'")


def test_config_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def err(*args):
        return run_main(capsys, *args)

    assert_user_error(err("train", "--set", "train.lrr=0.1"), "unknown key 'lrr'", "'lr'")
    assert_user_error(err("train", "--set", "train.lr=fast"), "train.lr must be a number")
    assert_user_error(err("train", "--set", "train.generator_loss=minmax"), "did you mean 'minimax'")
    assert_user_error(err("train", "--set", "lr=0.1"), "needs a section")
    assert_user_error(err("train", "--set", "train.schedule=simultaneous", "--set", "train.k_discriminator_steps=2"),
                      "k must be 1", "alternating")
    assert_user_error(err("train", "--dataset", "fashion-mnst"), "did you mean 'fashion-mnist'")
    assert not (tmp_path / "runs").exists()


def test_missing_dataset_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ADVNETS_DATA", str(tmp_path / "cache"))
    proc = run_main(capsys, "train", "--dataset", "mnist", "--data-dir", tmp_path / "empty", "--no-download",
                    "--out", tmp_path / "run")
    assert_user_error(proc, "--data-dir")
    assert not (tmp_path / "run").exists()                  # a failed start leaves no half-made run


def test_train_sample_resume_roundtrip(tmp_path):
    run = tmp_path / "run"
    proc = advnets("train", "--dataset", "digits", "--epochs", "1", "--out", run, "--no-progress", *cli_sets(TINY),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "seed 0" in proc.stdout and "epoch 1/1" in proc.stdout
    assert (run / "samples" / "epoch_0001.png").is_file()

    assert_user_error(advnets("train", "--dataset", "digits", "--out", run, *cli_sets(TINY), cwd=tmp_path),
                      "already holds a run", "--resume")
    proc = advnets("train", "--resume", run, "--epochs", "2", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0 and "resuming at epoch 1" in proc.stdout, proc.stderr
    assert [json.loads(l)["epoch"] for l in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert_user_error(advnets("train", "--resume", run, "--set", "train.lr=0.3", cwd=tmp_path),
                      "cannot resume", "train.lr")

    proc = advnets("sample", run, "--n", "7", "--out", tmp_path / "s.npy", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (7, 1, 8, 8) and samples.dtype == np.float32 and 0 <= samples.min() <= samples.max() <= 1
    assert advnets("sample", run, "--n", "16", "--out", tmp_path / "grid.png").returncode == 0
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_user_error(advnets("sample", run, "--out", tmp_path / "s.jpg"), ".png", ".npy")

    ckpt = run / "checkpoints" / "last.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert_user_error(advnets("sample", run), "damaged")
    assert_user_error(advnets("train", "--resume", run), "damaged")
    assert_user_error(advnets("sample", tmp_path / "nope"), "not a run directory")


def test_dry_run():
    proc = advnets("train", "--dry-run")
    assert proc.returncode == 0 and "dry run ok: 2 steps" in proc.stdout, proc.stderr
