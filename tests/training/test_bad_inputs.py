"""Bad inputs to training through the Python API (advnets.train / Trainer) and faults during a run (a killed
DataLoader worker, a TensorBoard file that cannot grow, broken metrics lines): ConfigError / DataError (ValueErrors)
with the CLI's messages, or one line and exit 1 from the CLI; never a traceback from deep inside."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import advnets
from advnets import Trainer, make_config, train
from advnets.errors import AdvnetsError, ConfigError, DataError
from tests.conftest import TINY, cli_sets

SRC = str(Path(advnets.__file__).parents[1])            # this checkout's advnets, for subprocesses


def tiny(**train_values):
    config = make_config(overrides={**TINY, "train.batch_size": 10, "train.epochs": 1, "train.tensorboard": False})
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **train_values))


def images(n=20, shape=(1, 8, 8)):
    return np.random.default_rng(0).random((n, *shape), dtype=np.float32)


def conditional():
    config = tiny()
    return dataclasses.replace(config, model=dataclasses.replace(config.model, conditional=True))


# -- the Python API -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "message"), [
    ({"batch_size": 0}, "train.batch_size must be positive, got 0"),
    ({"seed": 2**64}, f"train.seed must be in 0..4294967295 (2**32 - 1), got {2**64}"),
    ({"lr_min": 1.0}, "train.lr_min must be <= train.lr"),
    ({"epochs": None}, "train.epochs must be a whole number, got None"),
    ({"epochs": 1.5}, "train.epochs must be a whole number, got 1.5"),
])
def test_a_config_built_in_python_is_checked_like_a_file(values, message):
    with pytest.raises(ConfigError) as info:
        train(tiny(**values), None, train_images=images())
    assert isinstance(info.value, ValueError) and isinstance(info.value, AdvnetsError)
    assert str(info.value).startswith(message)
    key, value = next(iter(values.items()))
    with pytest.raises(ConfigError) as parsed:                   # the message `--set` gets
        make_config(overrides={**TINY, f"train.{key}": value})
    assert str(parsed.value) == str(info.value)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"train_images": images()[:, 0, 0, :2]}, "train_images must be an (N, C, H, W) or (N, H, W) array, got shape "
                                               "(20, 2)"),
    ({"train_images": images()[:, 0, 0, 0]}, "got shape (20,)"),
    ({"train_images": images()[:, :, :, :, None]}, "got shape (20, 1, 8, 8, 1)"),
    ({"train_images": images(shape=(0, 8, 8))}, "got shape (20, 0, 8, 8)"),
    ({"train_images": np.array([["a"] * 4] * 20)}, "train_images must hold numbers"),
    ({"train_images": images(), "train_labels": np.zeros(5, np.int64)}, "train_labels must have shape (N,) = (20,)"),
    ({"train_images": images(), "train_labels": np.zeros((20, 2), np.int64)}, "got shape (20, 2)"),
])
def test_training_arrays_of_the_wrong_shape_are_data_errors(kwargs, message):
    with pytest.raises(DataError) as info:
        train(tiny(), None, **kwargs)
    assert isinstance(info.value, ValueError)
    assert message in str(info.value)


def test_conditional_labels_must_be_one_whole_class_per_image():
    with pytest.raises(DataError, match=r"train_labels must have shape \(N,\) = \(20,\), one class per image, got "
                                        r"shape \(20, 2\)"):
        train(conditional(), None, train_images=images(), train_labels=np.zeros((20, 2), np.int64))
    with pytest.raises(DataError, match="train_labels must be whole class numbers"):
        train(conditional(), None, train_images=images(), train_labels=np.full(20, 0.5))
    result = train(conditional(), None, train_images=images(), train_labels=np.arange(20.0) % 2)   # whole floats
    assert result.step == 2


def test_an_empty_run_directory_is_refused_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AdvnetsError, match="the run directory is an empty path"):
        Trainer(tiny(), "", train_images=images())
    assert list(tmp_path.iterdir()) == []


def test_networks_too_large_for_memory_are_refused_before_allocating():
    config = tiny()
    huge = dataclasses.replace(config, model=dataclasses.replace(config.model, generator_hidden=(10**8,)))
    with pytest.raises(ConfigError, match=r"model.generator_hidden \[100000000\] .* parameters: .* GiB, more than"):
        train(huge, None, train_images=images())


# -- faults during a run -------------------------------------------------------------------------------------------

def test_broken_metric_lines_do_not_stop_a_resume(tmp_path):
    run = tmp_path / "run"
    config = make_config(overrides={**TINY, "train.epochs": 1, "train.tensorboard": False})
    train(config, run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"kind": "step", "step": "abc", "epoch": 0}) + "\n")
        f.write(json.dumps({"kind": "step", "step": None, "epoch": 0}) + "\n")
        f.write("[" * 100_000 + "\n")
    result = train(dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=2)), run, resume=True)
    assert result.epoch == 2
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]


TENSORBOARD_ON_A_FULL_DISK = textwrap.dedent("""
    import resource, signal, sys, warnings
    import torch
    from advnets.training.tensorboard import TensorBoardReporter

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)        # as the CLI does: a write past the limit is EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    warnings.simplefilter("always")
    tb = TensorBoardReporter(sys.argv[1], flush_secs=0)
    for step in range(1, 101):
        tb.log({"kind": "step", "step": step, "epoch": 0, "d_loss": 1.0, "g_loss": 1.0})
        tb.samples(None, step, torch.rand(16, 1, 8, 8), 4)
    tb.close()
    print("trained on")
""")


def test_tensorboard_on_a_full_disk_is_one_warning_and_training_goes_on(tmp_path):
    """A file-size limit stands in for a full disk: the event file cannot grow past 4 KB. tensorboardX's own writer
    thread printed a traceback here and its queue then blocked the loop."""
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", TENSORBOARD_ON_A_FULL_DISK, str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "trained on"
    assert "Traceback" not in proc.stderr and "Exception" not in proc.stderr, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "TensorBoard logging is off" in line]
    assert len(warned) == 1 and "file-size limit" in warned[0], proc.stderr
    assert sum(p.stat().st_size for p in tmp_path.glob("events.out.tfevents.*")) <= 4096


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the worker processes through /proc")
def test_a_killed_dataloader_worker_is_one_line(tmp_path):
    from tests.training.test_streaming import write_folder

    write_folder(tmp_path / "images", n=64)
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "ADVNETS_DATA": str(tmp_path / "cache")}
    args = [*cli_sets({**TINY, "data.dataset": "folder", "data.data_dir": str(tmp_path / "images"),
                       "data.image_size": 8, "data.storage": "memmap", "data.workers": 2, "train.batch_size": 8,
                       "train.epochs": 100_000}), "--no-tensorboard", "--out", tmp_path / "run"]
    proc = subprocess.Popen([sys.executable, "-m", "advnets", "train", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (_children(proc.pid) and (tmp_path / "run" / "metrics.jsonl").exists()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
            time.sleep(0.2)
        os.kill(_children(proc.pid)[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("advnets: error: a process reading the training images (memmap: "), err
    assert "--resume" in last           # after PyTorch's report ("killed by signal", "exited unexpectedly") or EOFError
