"""The default thread count: the usable CPUs that other work leaves idle; OpenMP's passive wait set by the CLI."""
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from advnets import threads
from advnets.errors import ConfigError
from advnets.threads import (_cpu_times, busy_shares, choose_threads, free_cpu_count, prefer_passive_wait,
                             set_torch_threads, torch_threads)

STAT = """cpu  {a} 0 {b} {c} 0 0 0 0 0 0
cpu0 {a0} 0 0 {i0} 0 0 0 0 0 0
cpu1 {a1} 0 0 {i1} 5 0 0 0 0 0
intr 12345
"""


def _stat(tmp_path, name, a0, i0, a1, i1):
    path = tmp_path / name
    path.write_text(STAT.format(a=a0 + a1, b=0, c=i0 + i1, a0=a0, i0=i0, a1=a1, i1=i1))
    return _cpu_times(str(path))


def test_cpu_times_and_busy_shares_from_proc_stat(tmp_path):
    before = _stat(tmp_path, "s0", 100, 900, 100, 900)
    assert before == {0: (900, 1000), 1: (905, 1005)}         # idle counts iowait; the "cpu" total line is skipped
    after = _stat(tmp_path, "s1", 190, 910, 102, 998)         # cpu0: 90 of 100 ticks busy; cpu1: 2 of 100
    shares = busy_shares(before, after, [0, 1])
    assert shares == {0: pytest.approx(0.9), 1: pytest.approx(0.02)}
    assert free_cpu_count(shares, 2) == 1
    assert busy_shares(before, after, [1]) == {1: pytest.approx(0.02)}   # only the CPUs we may use count


def test_free_cpu_count_bounds():
    assert free_cpu_count({0: 0.0, 1: 0.1, 2: 0.2}, 3) == 3
    assert free_cpu_count({0: 0.9, 1: 1.0}, 2) == 1            # all busy: still one thread
    assert free_cpu_count({}, 4) == 4                          # nothing measured: the affinity mask decides
    assert busy_shares({0: (5, 10)}, {0: (5, 10)}, [0]) == {0: 0.0}   # no tick passed


def test_choose_threads_counts_the_idle_cpus_of_the_affinity_mask(monkeypatch):
    # Two /proc/stat samples, 100 ticks apart on every CPU: cpu0 90% busy, cpu1 and cpu3 idle, cpu2 30% busy.
    samples = iter([{0: (0, 0), 1: (0, 0), 2: (0, 0), 3: (0, 0)},
                    {0: (10, 100), 1: (100, 100), 2: (70, 100), 3: (98, 100)}])
    slept = []
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(threads, "time", SimpleNamespace(sleep=slept.append))
    monkeypatch.setattr(threads, "usable_cpus", lambda: [0, 1, 2, 3])
    assert choose_threads(sample_seconds=0.3) == 2                # cpu1 and cpu3: the others are over a quarter busy
    assert slept == [0.3]                                         # the two samples are `sample_seconds` apart
    samples = iter([{0: (0, 0), 1: (0, 0), 2: (0, 0), 3: (0, 0)},
                    {0: (10, 100), 1: (100, 100), 2: (70, 100), 3: (98, 100)}])
    monkeypatch.setattr(threads, "usable_cpus", lambda: [0, 2, 3])
    assert choose_threads() == 1                                  # cpu1 is idle but not ours


def test_choose_threads_without_proc_stat_trusts_the_affinity_mask(monkeypatch):
    def missing():
        raise FileNotFoundError("/proc/stat")

    monkeypatch.setattr(threads, "_cpu_times", missing)
    monkeypatch.setattr(threads, "time", SimpleNamespace(sleep=lambda seconds: None))
    monkeypatch.setattr(threads, "usable_cpus", lambda: [0, 1, 2])
    assert choose_threads() == 3


def test_set_torch_threads_honours_a_request_and_refuses_zero():
    before = torch.get_num_threads()
    try:
        assert set_torch_threads(1) == 1
        assert set_torch_threads(None, environ={"OMP_NUM_THREADS": "1"}) == 1   # the user's variable stands
        with pytest.raises(ConfigError):
            set_torch_threads(0)
    finally:
        torch.set_num_threads(before)


def test_torch_threads_sets_the_count_inside_and_restores_it_after_an_error():
    before = torch.get_num_threads()
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"), torch_threads(2):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before


def test_passive_wait_only_when_unset_and_before_torch():
    env = {}
    assert not prefer_passive_wait(env)                        # torch is loaded in this process: too late
    assert env == {}


def test_cli_sets_the_passive_wait_policy_before_torch_loads():
    src = Path(__file__).resolve().parents[1] / "src"
    code = ("import os, sys; from advnets.cli import main; code = main(['train', '--dry-run', '--threads', '1']); "
            "print(os.environ.get('OMP_WAIT_POLICY'), code)")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(src)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "PASSIVE 0"
    env["OMP_WAIT_POLICY"] = "ACTIVE"                           # a user's choice is kept
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.stdout.strip().splitlines()[-1] == "ACTIVE 0"
