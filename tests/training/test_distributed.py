"""Data parallelism (training/distributed.py) on 2 CPU processes with Gloo, launched by torchrun as a user would.

The 2-process runs (dist_worker.py, one torchrun launch for all cases) must end where the 1-process runs end, up to
float reduction order: after 20 updates each parameter differs by at most 2e-8 + 1e-6 of its size (measured: 1.5e-8
on weights near 0.05, 6e-8 on G's output biases near 7 -- a few float32 ulps), while they moved by 1e-3 .. 1e-1. Summing instead of averaging the gradients,
a rank using another rank's rows, or noise that depends on the world size would differ by about as much as the
parameters moved. The `memmap` case streams an image folder from its decoded cache through DataLoader workers
(data.storage=memmap, both ranks opening the cache at once) and is compared with the 1-process in-memory run.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from advnets.errors import ConfigError
from advnets.training import Trainer
from advnets.run.checkpoint import load_checkpoint
from advnets.training.distributed import Dist
from advnets.run.layout import CHECKPOINT
from tests.conftest import TINY, cli_sets
from tests.training import dist_worker
from tests.training.test_streaming import write_folder

ROOT = Path(__file__).resolve().parents[2]
# Rounding differs between 1 and 2 processes (each rank sums half the batch), and 20 steps at lr 0.5 amplify it.
# Measured largest |difference| - RTOL |p| over the parameters: fused 1.8e-8, autograd 3.2e-8 (the shared-backward
# step, whose D runs on the data and the samples as two calls of m / world_size rows each; 7.8e-9 with the two-pass
# step); parameters move by 0.03-0.1. A wrong average or a dropped rank would differ by ~1e-3.
ATOL, RTOL = 5e-8, 1e-6
CASES = list(dist_worker.CASES)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1",
            "ADVNETS_DIST_TIMEOUT": "60"}


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]


def _params(path: Path) -> dict[str, torch.Tensor]:
    payload = load_checkpoint(path)
    return {f"{net}.{k}": v for net in ("generator", "discriminator") for k, v in payload[net].items()}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """The memmap case's folder: FOLDER_SIZE random 8x8 RGB PNGs in 2 class subfolders."""
    return write_folder(tmp_path_factory.mktemp("pics"), n=dist_worker.FOLDER_SIZE)


RESUMED = ("fused", "memmap")            # trained half way by 1 process, then resumed by 2


def _half_one_process_runs(out: Path, folder: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADVNETS_DATA", str(out / "cache-one"))           # the 2-process run decodes into its own
        for key in RESUMED:
            shutil.rmtree(out / f"one-{key}", ignore_errors=True)
            Trainer(dist_worker.config(key, dist_worker.STEPS // 2, folder), out / f"one-{key}").run()


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory, image_folder):
    """OUT with the 2-process runs of every case; OUT/one-fused and OUT/one-memmap were trained half way by 1
    process, then resumed by 2 processes; OUT/half-fused trained half way by 2 processes."""
    out = tmp_path_factory.mktemp("dist")
    cases = [*CASES, "half-fused", *(f"resume-{key}" for key in RESUMED), "nan"]
    for _attempt in range(3):
        _half_one_process_runs(out, image_folder)
        done = subprocess.run(_torchrun(str(ROOT / "tests" / "training" / "dist_worker.py"), str(out),
                                        str(image_folder), *cases),
                              env={**_env(), "ADVNETS_DATA": str(out / "cache")}, capture_output=True, text=True,
                              timeout=300, check=False)
        # Seen twice in clean-clone CI runs on a loaded 2-core machine, never alone: a Gloo worker aborted in C++
        # ("terminate called without an active exception", SIGABRT) with no Python error. Its suspected cause, the
        # group's Gloo threads outliving destroy_process_group into interpreter exit, is fixed (Dist.from_env) and
        # tested (test_the_process_group_is_freed_when_a_rank_leaves); the abort itself was never reproduced, so
        # that abort (and only it) is still retried from scratch. Any other failure, or a wrong result, fails.
        if done.returncode == 0 or "terminate called without an active exception" not in done.stderr:
            break
        for case in cases:
            if not case.startswith("resume-"):
                shutil.rmtree(out / case, ignore_errors=True)
    assert done.returncode == 0, done.stderr[:1500] + "\n...\n" + done.stderr[-1500:]
    return out


@pytest.fixture(scope="module")
def one_process_runs(tmp_path_factory, image_folder):
    """{case: (run directory, initial parameters)} of the 1-process runs, every one holding its data in memory."""
    out, runs = tmp_path_factory.mktemp("one"), {}
    torch.set_num_threads(1)
    for case in CASES:
        memory = "memory" if case == "memmap" else None
        trainer = Trainer(dist_worker.config(case, folder=image_folder, storage=memory), out / case)
        assert trainer.data.storage == "memory"
        init = {f"{net}.{k}": v.clone() for net in ("generator", "discriminator")
                for k, v in getattr(trainer, net).state_dict().items()}
        trainer.run()
        runs[case] = (out / case, init)
    return runs


def _assert_same_run(two: Path, one: Path, init: dict[str, torch.Tensor]) -> None:
    a, b = _params(two / CHECKPOINT), _params(one / CHECKPOINT)
    moved = max((b[k] - init[k]).abs().max().item() for k in b)
    assert moved > 1e-3                                          # the parameters did move
    for key in b:
        diff = (a[key] - b[key]).abs().max().item()
        assert torch.allclose(a[key], b[key], rtol=RTOL, atol=ATOL), \
            f"{key}: 2 processes vs 1 differ by {diff:.3g} (moved {moved:.3g})"


@pytest.mark.parametrize("case", CASES)
def test_two_processes_end_where_one_process_ends(two_process_runs, one_process_runs, case):
    one, init = one_process_runs[case]
    _assert_same_run(two_process_runs / case, one, init)
    payload = load_checkpoint(two_process_runs / case / CHECKPOINT)
    assert payload["world_size"] == 2 and len(payload["rank_rng"]) == 2 and payload["g_updates"] == 20
    # the 2-process run logged the global minibatch's means (not rank 0's half), as the 1-process run did
    lines = [json.loads(line) for line in (two_process_runs / case / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(line) for line in (one / "metrics.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["step"]) for r in lines] == [(r["kind"], r["step"]) for r in ref]
    assert [r["step"] for r in lines if r["kind"] == "step"] == [5, 10, 15, 20]      # then the partial epoch's line
    for stat in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert [r[stat] for r in lines] == pytest.approx([r[stat] for r in ref], abs=2e-6)


def test_resume_across_world_sizes(two_process_runs, one_process_runs, tmp_path):
    for key in RESUMED:                                                   # 1 process, then 2 (mid-epoch: memmap)
        one, init = one_process_runs[key]
        _assert_same_run(two_process_runs / f"one-{key}", one, init)
        assert load_checkpoint(two_process_runs / f"one-{key}" / CHECKPOINT)["world_size"] == 2
    one, init = one_process_runs["fused"]
    half = two_process_runs / "half-fused"                                # 2 processes, then 1
    assert load_checkpoint(half / CHECKPOINT)["world_size"] == 2
    Trainer(dist_worker.config("fused"), half, resume=True).run()
    _assert_same_run(half, one, init)
    assert load_checkpoint(half / CHECKPOINT)["world_size"] == 1


def test_a_nan_on_one_rank_stops_every_rank(two_process_runs):
    for rank in (0, 1):
        message = (two_process_runs / f"nan_rank{rank}.txt").read_text()
        assert message.startswith("DivergedError: training diverged"), message


def test_the_process_group_is_freed_when_a_rank_leaves(two_process_runs):
    """No Gloo thread (pt_gloo_runloop, gloo_tcp_loop) outlives Dist.close into interpreter exit, although the
    trainer's optimisers imported torch._dynamo after the group was made (see Dist.from_env)."""
    for rank in (0, 1):
        left = json.loads((two_process_runs / f"threads_rank{rank}.json").read_text())
        assert left == {"dynamo imported": True, "gloo threads": []}


def test_batch_must_split_over_the_ranks():
    with pytest.raises(ConfigError, match="does not split over 3 processes"):
        Dist(rank=0, world_size=3).local_batch(20)
    assert Dist(rank=1, world_size=4).rows(20) == slice(5, 10)


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def _rank_of(pid: int) -> int | None:
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
    return int(env[b"RANK"]) if b"RANK" in env else None


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the ranks' processes through /proc")
def test_a_killed_rank_ends_the_run_before_any_timeout_and_it_resumes(tmp_path):
    # The collectives' timeout is an hour here: a run that ends at all once a rank is killed (the 300 s below guard
    # against hanging and bound nothing) ends because the loss was seen, not because a collective timed out.
    run = tmp_path / "run"
    cmd = _torchrun("-m", "advnets", "train", *cli_sets(TINY), "--epochs=1000", "--device=cpu", "--no-progress",
                    f"--out={run}")
    proc = subprocess.Popen(cmd, env={**_env(), "ADVNETS_DIST_TIMEOUT": "3600"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (run / CHECKPOINT).exists():                  # the first epoch's checkpoint
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.2)
        victim = next(p for p in _children(proc.pid) if _rank_of(p) == 1)
        os.kill(victim, signal.SIGKILL)
        try:
            _, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            pytest.fail("the run was still going 300 s after a rank was killed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    ours = [line for line in err.splitlines() if line.startswith("advnets: error:")]
    assert len(ours) <= 1 and all("lost contact" in line for line in ours), err[-2000:]
    epoch = load_checkpoint(run / CHECKPOINT)["epoch"]
    done = subprocess.run([sys.executable, "-m", "advnets", "train", "--resume", str(run), f"--epochs={epoch + 1}",
                           "--no-progress"], env=_env(), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming at epoch {epoch}" in done.stdout
    assert load_checkpoint(run / CHECKPOINT)["epoch"] == epoch + 1
