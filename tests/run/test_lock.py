"""One run directory, one writer: the OS lock on RUN/.lock (run/lock.py), in this process, against a live
process, a killed one, and two `advnets train` commands on one --out."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advnets.config import make_config
from advnets.errors import OutputError, RunError
from advnets.run.layout import read_metrics
from advnets.run.lock import RunLock, build_lock
from advnets.training import Trainer
from tests.cli.test_cli import assert_user_error
from tests.conftest import TINY, cli_sets

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}


def test_second_trainer_on_a_live_run_is_refused(tmp_path, digits_images, tiny_overrides):
    config = make_config(overrides={**tiny_overrides, "train.max_steps": 3})
    first = Trainer(config, tmp_path / "run", train_images=digits_images)
    with pytest.raises(RunError, match=rf"being trained by process {os.getpid()} on host {socket.gethostname()}"):
        Trainer(config, tmp_path / "run", resume=True, train_images=digits_images)
    with pytest.raises(RunError, match="being trained by"):
        Trainer(config, tmp_path / "run", train_images=digits_images)
    assert first.run().step == 3                      # the refused starts changed nothing
    longer = make_config(overrides={**tiny_overrides, "train.max_steps": 5})
    with Trainer(longer, tmp_path / "run", resume=True, train_images=digits_images) as again:
        assert again.run().step == 5                  # released at the end of run(): others may resume
    RunLock.acquire(tmp_path / "run").release()       # and at the end of the `with` block


def test_failed_start_releases_and_removes_what_it_created(tmp_path, digits_images, tiny_overrides):
    config = make_config(overrides={**tiny_overrides, "train.batch_size": 5000})
    with pytest.raises(Exception, match="fewer than one iteration"):
        Trainer(config, tmp_path / "new", train_images=digits_images)
    assert not (tmp_path / "new").exists()
    with pytest.raises(RunError, match="no such directory"):
        Trainer(None, tmp_path / "nothing", resume=True, train_images=digits_images)
    assert not (tmp_path / "nothing").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="in the way"):
        Trainer(config, tmp_path / "file", train_images=digits_images)
    with pytest.raises(OutputError, match="not a directory"):
        Trainer(config, tmp_path / "file" / "run", train_images=digits_images)


def test_a_killed_holder_blocks_nobody(tmp_path):
    run = tmp_path / "run"
    holder = ("import sys, time\nfrom advnets.run.lock import RunLock\n"
              "lock = RunLock.acquire(sys.argv[1])\nprint('locked', flush=True)\ntime.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", holder, str(run)], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunError, match=rf"process {child.pid} on host"):
            RunLock.acquire(run)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    lock = RunLock.acquire(run, create=False)         # the OS released the dead process's lock
    assert lock.held
    lock.release()


def test_a_symbolic_link_at_the_lock_path_is_not_followed(tmp_path):
    """The holder truncates and writes its lock file: a link planted there must not redirect that to another file."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").symlink_to(victim)
    with pytest.raises(OutputError, match="cannot write"):
        RunLock.acquire(tmp_path / "run", create=False)
    (tmp_path / "cache.lock").symlink_to(victim)
    with pytest.raises(OutputError, match="cannot write"), build_lock(tmp_path / "cache.lock", "a test's cache"):
        pass
    assert victim.read_text() == "keep me"


def test_two_train_commands_on_one_out(tmp_path):
    """The second command stops at once with one line; the first one is unharmed, checkpoints on SIGTERM and
    resumes."""
    run = tmp_path / "run"
    command = [sys.executable, "-m", "advnets", "train", "--dataset", "digits", "--out", str(run), "--no-progress",
               "--epochs", "1000", *cli_sets(TINY)]
    first = subprocess.Popen(command, env=ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 60
        while not (run / "metrics.jsonl").exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.1)                           # the first run is past its start and training
        others = [subprocess.Popen(second, env=ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)       # the same command, a resume, another model: all at once
                  for second in (command, [sys.executable, "-m", "advnets", "train", "--resume", str(run)],
                                 command + ["--set", "model.noise_dim=4"])]
        for other in others:
            out, err = other.communicate(timeout=120)
            assert_user_error(subprocess.CompletedProcess(other.args, other.returncode, out, err),
                              f"is being trained by process {first.pid}")
        first.send_signal(signal.SIGTERM)             # what schedulers and `docker stop` send
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130 and "interrupted (SIGTERM): checkpoint saved" in err, err
    assert "Traceback" not in err
    assert '"noise_dim": 8' in (run / "config.json").read_text()      # the other model wrote nothing
    steps = [r["step"] for r in read_metrics(run)]
    assert steps == sorted(steps)                     # one writer: no interleaved metrics
    trainer = Trainer(None, run, resume=True)         # the checkpoint SIGTERM wrote resumes
    assert trainer.g_updates >= steps[-1] and not trainer.from_scratch
