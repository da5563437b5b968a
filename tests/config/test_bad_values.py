"""Bad values for `advnets train` (config/, device.py, threads.py, models/build.py, cli/train.py): each is one line
naming the problem, exit 1, no traceback, and nothing written; the same checks raise ConfigError (a ValueError) in
Python."""
from __future__ import annotations

import os
import subprocess

import pytest
import torch

from advnets.cli import main
from advnets.config import make_config, read_config_file
from advnets.errors import AdvnetsError, ConfigError, DataError


def run_main(capsys, *args) -> subprocess.CompletedProcess:
    """The CLI in this process: an exception the CLI does not turn into one line fails the test by itself."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def assert_one_line(proc, *fragments) -> str:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("advnets: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def dry_run(capsys, tmp_path, *args):
    """`advnets train --dry-run` with `args`, writing nothing outside tmp_path."""
    proc = run_main(capsys, "train", "--dry-run", "--threads", "1", "--no-tensorboard", *args)
    return proc


@pytest.mark.parametrize(("args", "fragments"), [
    (["--seed", str(2**64)], ["train.seed must be in 0..4294967295", str(2**64)]),
    (["--set", f"train.seed={2**63}"], ["train.seed must be in 0..4294967295"]),
    (["--set", "train.seed=-1"], ["train.seed must be in 0..4294967295"]),
    (["--set", "data.mixture_seed=-5"], ["data.mixture_seed must be null or in 0..4294967295"]),
    (["--set", f"train.lr={10**400}"], ["train.lr must be a finite number", "401 digits"]),
    (["--set", "train.lr=1e308"], ["train.lr must be at most 3.403e+38"]),
    (["--set", "train.lr_min=1e308"], ["train.lr_min must be <= train.lr", "1e+308", "0.1"]),
    (["--set", "train.lr=0.01", "--set", "train.lr_min=0.02"], ["train.lr_min must be <= train.lr"]),
    (["--set", "train.seed=null"], ["train.seed must be a whole number, got None"]),
    (["--set", "train.lr=null"], ["train.lr must be a number, got None"]),
    (["--set", "train.lr=" + "[" * 50_000 + "]" * 50_000], ["nested more than"]),
    (["--threads", "100000"], ["--threads 100000: this process may run on"]),
    (["--device", "cuda:99"], ["device 'cuda:99' was asked for but PyTorch sees"]),
    (["--device", "cuda:0"] if not torch.cuda.is_available() else ["--device", "cuda:99"], ["device 'cuda:"]),
    (["--set", "model.generator_hidden=1e8"], ["model.generator_hidden [100000000]", "parameters", "GiB"]),
    (["--set", "model.noise_dim=1e9"], ["model.noise_dim 1000000000", "parameters", "GiB"]),
    (["--out", ""], ["--out is an empty path"]),
    (["--config", " "], ["--config is an empty path"]),
])
def test_bad_train_values_are_one_line(capsys, tmp_path, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    proc = dry_run(capsys, tmp_path, *args)
    assert_one_line(proc, *fragments)
    assert list(tmp_path.iterdir()) == []                  # nothing written (no default run directory)


def test_epochs_null_is_refused_for_a_real_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = run_main(capsys, "train", "--set", "train.epochs=null", "--out", tmp_path / "run")
    assert_one_line(proc, "train.epochs must be a whole number, got None")
    assert not (tmp_path / "run").exists()


def test_threads_up_to_the_cpus_are_accepted(capsys, tmp_path):
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    before = torch.get_num_threads()
    try:
        proc = dry_run(capsys, tmp_path, "--threads", str(cpus), "--out", tmp_path / "run")
        assert proc.returncode == 0, proc.stderr
        assert_one_line(dry_run(capsys, tmp_path, "--threads", str(cpus + 1)), f"may run on {cpus} CPU")
    finally:
        torch.set_num_threads(before)


def test_resume_of_an_empty_path_does_not_resume_the_working_directory(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line(run_main(capsys, "train", "--resume", ""), "--resume is an empty path")
    assert list(tmp_path.iterdir()) == []


# -- config files: bounded reading --------------------------------------------------------------------------------

def _alias_bomb(path, width: int = 1000) -> None:
    """A YAML value whose aliases expand to width**2 numbers (under 10 KB of text, within the depth limit)."""
    row = "[" + ", ".join(["1"] * width) + "]"
    path.write_text("train:\n  adam_betas: [&a " + row + ", &b [" + ", ".join(["*a"] * width) + "]]\n")


@pytest.mark.parametrize(("name", "write", "fragment"), [
    ("deep.json", lambda p: p.write_text('{"train": {"lr": ' + "[" * 100_000 + "]" * 100_000 + "}}"),
     "nested more than 6 levels deep"),
    ("deep.yaml", lambda p: p.write_text("train:\n  lr: " + "[" * 100_000 + "]" * 100_000 + "\n"),
     "nested more than 6 levels deep"),
    ("bomb.yaml", _alias_bomb, "more than 10,000 values"),
    ("latin1.json", lambda p: p.write_bytes(b'{"train": {"device": "\xff"}}'), "is not UTF-8 text (byte 0xff"),
    ("huge.json", lambda p: p.write_text('{"train": {}}' + " " * (2 << 20)), "larger than 1 MiB"),
])
def test_bad_config_files_are_one_line(capsys, tmp_path, name, write, fragment):
    path = tmp_path / name
    write(path)
    assert_one_line(dry_run(capsys, tmp_path, "--config", path), str(path), fragment)
    with pytest.raises(ConfigError, match="nested|values|UTF-8|MiB"):
        read_config_file(path)


def test_a_run_config_json_that_is_not_utf8_is_one_line(capsys, tmp_path):
    from tests.conftest import TINY, cli_sets

    run = tmp_path / "run"
    assert run_main(capsys, "train", *cli_sets({**TINY, "train.epochs": 1}), "--no-tensorboard",
                    "--out", run).returncode == 0
    (run / "config.json").write_bytes((run / "config.json").read_bytes().replace(b'"digits"', b'"dig\xe9ts"'))
    (run / "checkpoints" / "last.pt").unlink()          # nothing else to recover the config from
    line = assert_one_line(run_main(capsys, "train", "--resume", run, "--epochs", "2"), "config.json")
    assert "UTF-8" in line or "damaged" in line or "recover" in line


def test_a_config_with_an_anchor_used_a_few_times_still_reads(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("train:\n  adam_betas: &b [0.5, 0.999]\n  momentum_ramp_epochs: [1, 250]\n")
    assert read_config_file(path).train.adam_betas == (0.5, 0.999)


# -- Python: the same messages, as ValueErrors --------------------------------------------------------------------

def test_config_and_data_errors_are_value_errors_and_advnets_errors():
    for cls in (ConfigError, DataError):
        assert issubclass(cls, ValueError) and issubclass(cls, AdvnetsError)
    with pytest.raises(ValueError, match="train.lr_min must be <= train.lr"):
        make_config(overrides={"train.lr_min": 1e308})
    with pytest.raises(AdvnetsError, match="train.seed must be in 0..4294967295"):
        make_config(overrides={"train.seed": 2**64})
    assert make_config(overrides={"train.seed": 2**32 - 1, "train.lr_min": 0.1}).train.seed == 2**32 - 1
