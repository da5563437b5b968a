"""No hang, no silent crash: a stopped rank of a distributed run (training/heartbeat.py), the loser of a race for a
run's lock (run/lock.py); tests/test_fileio_faults.py has the full disk and the killed writers' temporaries. Real
processes, real signals, real files; the timeouts below are hang guards, not measurements.

Run as a script (`torchrun ... test_hangs.py OUT busy`), this file is the rank of the busy-rank case.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from advnets.errors import ConfigError
from advnets.run.layout import CHECKPOINT
from advnets.training.distributed import Dist
from advnets.training.heartbeat import HEARTBEAT_ENV, Heartbeat
from tests.conftest import TINY, cli_sets
from tests.training.test_distributed import _children, _rank_of

ROOT = Path(__file__).resolve().parents[2]
HAS_PROC = Path("/proc/self/task").exists()


def _env(**extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1", **extra}


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] not in "ZX"
    except OSError:
        return False


# ----- a stopped rank

@pytest.mark.skipif(not HAS_PROC, reason="finds the ranks' processes through /proc")
def test_a_stopped_rank_is_named_in_one_line_long_before_the_collective_timeout(tmp_path):
    """SIGSTOP rank 1 of a torchrun training run: rank 0, waiting for it in an all-reduce whose timeout is an hour,
    ends with one line naming rank 1, after the heartbeat's limit (5 s here) rather than the hour."""
    run = tmp_path / "run"
    cmd = _torchrun("-m", "advnets", "train", *cli_sets(TINY), "--epochs=1000", "--device=cpu", "--no-progress",
                    f"--out={run}")
    proc = subprocess.Popen(cmd, env=_env(ADVNETS_DIST_TIMEOUT="3600", **{HEARTBEAT_ENV: "5"}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ranks, stopped = {}, None
    try:
        deadline = time.monotonic() + 300
        while not (run / CHECKPOINT).exists():                  # the first epoch's checkpoint: both ranks train
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.2)
        ranks = {_rank_of(p): p for p in _children(proc.pid)}
        stopped = ranks[1]
        os.kill(stopped, signal.SIGSTOP)
        deadline = time.monotonic() + 240                       # a hang guard: the heartbeat's limit is 5 s
        while _alive(ranks[0]):
            if time.monotonic() > deadline:
                pytest.fail("rank 0 was still waiting 240 s after rank 1 was stopped")
            time.sleep(0.2)
        os.kill(stopped, signal.SIGKILL)                        # (torchrun would take 30 s to do it)
        _, err = proc.communicate(timeout=120)
    finally:
        for pid in ranks.values():                              # a rank left alone would wait for an hour
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    ours = [line for line in err.splitlines() if line.startswith("advnets: error:")]
    assert len(ours) == 1, err[-3000:]
    assert f"rank 1 of 2 (process {stopped} on host" in ours[0] and "no sign of life" in ours[0], ours


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf"])
def test_the_heartbeat_limit_must_be_a_number_of_seconds(monkeypatch, value):
    monkeypatch.setenv(HEARTBEAT_ENV, value)
    with pytest.raises(ConfigError, match=f"{HEARTBEAT_ENV}=.* is not a number of seconds"):
        Heartbeat.start(0, 2)


BUSY_S = 8.0                                # rank 0's busy spell in the busy case, 4 times the heartbeat's limit


def _busy_rank(out: Path) -> None:
    """One rank of the busy case: rank 0 computes in its main thread (holding the GIL, as a checkpoint's pickling
    or an evaluation would) for BUSY_S seconds while rank 1 waits for it in an all-reduce."""
    torch.set_num_threads(1)
    dist = Dist.from_env(torch.device("cpu"))
    try:
        assert dist.heartbeat is not None
        if dist.rank == 0:
            end, n = time.monotonic() + BUSY_S, 0
            while time.monotonic() < end:
                n += sum(range(1000)) > 0
        t = torch.full((3,), float(dist.rank + 1))
        dist.all_reduce_mean([t])
        (out / f"rank{dist.rank}.txt").write_text(repr(t.tolist()))
    except BaseException:
        dist.close(barrier=False)
        raise
    dist.close()


def _gather_rank(out: Path) -> None:
    """One rank of the gather case: rank 1 stops itself before the gather that every checkpoint starts with, which
    rank 0 waits for without the slices of an all-reduce (gather_object has no asynchronous form)."""
    dist = Dist.from_env(torch.device("cpu"))
    if dist.rank == 1:
        os.kill(os.getpid(), signal.SIGSTOP)
    (out / f"rank{dist.rank}.txt").write_text(repr(dist.gather(dist.rank)))
    dist.close()


@pytest.mark.skipif(not HAS_PROC, reason="finds the ranks' processes through /proc")
def test_a_rank_stuck_outside_a_sliced_wait_still_ends_with_the_line(tmp_path):
    # (a limit of 6 s: rank 0 must be in the gather before it runs out, or its sliced check would raise first)
    proc = subprocess.Popen(_torchrun(__file__, str(tmp_path), "gather"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(ADVNETS_DIST_TIMEOUT="3600",
                                                                       **{HEARTBEAT_ENV: "6"}))
    ranks = {}
    try:
        deadline = time.monotonic() + 240                       # a hang guard
        while len(ranks) < 2 or Path(f"/proc/{ranks[1]}/stat").read_text().split(") ")[-1][0] != "T":
            assert time.monotonic() < deadline and proc.poll() is None, "rank 1 did not stop itself"
            time.sleep(0.2)
            ranks = {_rank_of(p): p for p in _children(proc.pid)}
        while _alive(ranks[0]):
            if time.monotonic() > deadline:
                pytest.fail("rank 0 was still waiting 240 s after rank 1 stopped")
            time.sleep(0.2)
    finally:
        for pid in ranks.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if "no sign of life" in line]
    assert len(lines) == 1 and lines[0].startswith(f"rank 1 of 2 (process {ranks[1]} on host"), err[-3000:]
    assert not (tmp_path / "rank0.txt").exists()


def test_a_busy_rank_is_not_taken_for_a_stopped_one(tmp_path):
    done = subprocess.run(_torchrun(__file__, str(tmp_path), "busy"),
                          env=_env(ADVNETS_DIST_TIMEOUT="600", **{HEARTBEAT_ENV: str(BUSY_S / 4)}),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no sign of life" not in done.stderr
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}.txt").read_text() == "[1.5, 1.5, 1.5]"


# ----- a race for a new run directory's lock

# A racer: for each round R, waits for BASE/goR, then takes the lock of the new directory BASE/runR; writes
# BASE/R.PID ("won" or the error line) and, if it won, holds the lock until BASE/doneR appears.
RACER = """
import os, sys, time
from pathlib import Path
from advnets.errors import AdvnetsError
from advnets.run.lock import RunLock
base, rounds = Path(sys.argv[1]), int(sys.argv[2])
def say(r, text):
    (base / f"tmp{r}.{os.getpid()}").write_text(text)
    os.replace(base / f"tmp{r}.{os.getpid()}", base / f"{r}.{os.getpid()}")
for r in range(rounds):
    while not (base / f"go{r}").exists():
        time.sleep(0.0005)
    try:
        lock = RunLock.acquire(base / f"run{r}")
    except AdvnetsError as exc:
        say(r, str(exc))
        continue
    say(r, "won")
    while not (base / f"done{r}").exists():
        time.sleep(0.002)
    lock.release()
"""
RACERS, ROUNDS = 4, 25


def _results(base: Path, r: int, pids: list[int]) -> dict[int, str]:
    deadline = time.monotonic() + 120                        # a hang guard
    while not all((base / f"{r}.{pid}").exists() for pid in pids):
        assert time.monotonic() < deadline, f"round {r}: the racers did not all answer"
        time.sleep(0.005)
    return {pid: (base / f"{r}.{pid}").read_text() for pid in pids}


def test_the_loser_of_a_race_for_a_new_run_is_told_who_holds_it(tmp_path):
    """RACERS processes take the lock of the same new run directory at once, ROUNDS times: every time one wins
    and every other is told the winner's process id (not that "a file of that name is in the way", which is what
    the loser of the race to make the directory used to hear, nor "another process")."""
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), str(ROUNDS)], env=_env())
              for _ in range(RACERS)]
    try:
        pids = [p.pid for p in racers]
        for r in range(ROUNDS):
            (tmp_path / f"go{r}").touch()
            said = _results(tmp_path, r, pids)
            winners = [pid for pid, text in said.items() if text == "won"]
            assert len(winners) == 1, said
            for pid, text in said.items():
                if pid != winners[0]:
                    assert text.startswith(f"{tmp_path / f'run{r}'} is being trained by process {winners[0]} on "
                                           "host"), (r, text)
            (tmp_path / f"done{r}").touch()
        for racer in racers:
            assert racer.wait(timeout=60) == 0
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    {"busy": _busy_rank, "gather": _gather_rank}[sys.argv[2]](Path(sys.argv[1]))
