"""How many threads torch should use: the CPUs this process may run on that other work leaves free.

OpenMP's parallel regions end in a barrier, so a step with two threads goes at the pace of the slower one; when
another process holds one of two CPUs, every barrier waits for a time slice and the step runs many times slower
than with one thread (benchmarks/threads.py; docs/performance.md). torch's default, one thread per CPU, assumes the
CPUs are idle. `choose_threads` instead counts the CPUs that were idle over a short sample of /proc/stat (Linux;
elsewhere it trusts the affinity mask) and never uses more threads than that.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time

from .errors import ConfigError

# torch is imported inside the functions that use it: the command line calls prefer_passive_wait before torch loads
# OpenMP, which reads OMP_WAIT_POLICY once, when it loads.

# A CPU counts as free when other processes used less than this share of it during the sample.
_BUSY_SHARE = 0.25


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask), or 0 .. os.cpu_count() - 1 where there is none."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:                       # not Linux
        return list(range(os.cpu_count() or 1))


def _cpu_times(path: str = "/proc/stat") -> dict[int, tuple[int, int]]:
    """{cpu: (idle ticks, total ticks)} from /proc/stat's per-CPU lines."""
    times = {}
    with open(path) as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *fields = line.split()
                ticks = [int(v) for v in fields[:8]]          # user nice system idle iowait irq softirq steal
                times[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))
    return times


def busy_shares(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]],
                cpus: list[int]) -> dict[int, float]:
    """Share of each CPU's time that was not idle between two /proc/stat samples (0 when no tick passed)."""
    shares = {}
    for c in cpus:
        if c in before and c in after:
            idle, total = after[c][0] - before[c][0], after[c][1] - before[c][1]
            shares[c] = 0.0 if total <= 0 else min(1.0, max(0.0, 1.0 - idle / total))
    return shares


def free_cpu_count(busy: dict[int, float], cpus: int, busy_share: float = _BUSY_SHARE) -> int:
    """CPUs left for us: those used less than `busy_share` by others; at least 1, at most `cpus`."""
    if not busy:
        return cpus
    return max(1, min(cpus, sum(share < busy_share for share in busy.values())))


def choose_threads(sample_seconds: float = 0.2) -> int:
    """The thread count for torch: one per usable CPU that stayed idle over `sample_seconds` (this process's own
    work during the sample is negligible: it sleeps)."""
    cpus = usable_cpus()
    try:
        before = _cpu_times()
        time.sleep(sample_seconds)
        after = _cpu_times()
    except (OSError, ValueError, IndexError):       # no /proc/stat (not Linux) or an unexpected format
        return len(cpus)
    return free_cpu_count(busy_shares(before, after, cpus), len(cpus))


def prefer_passive_wait(environ=os.environ) -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE unless the user chose a policy, if the OpenMP runtime is not loaded yet.

    OpenMP reads the policy once, when torch loads it, so this only works before `import torch`; returns whether
    it took effect. Waiting threads then sleep instead of spinning: with two threads on two CPUs and a competing
    load, the default (spinning) policy runs the MNIST step several times slower than one thread, and PASSIVE runs
    it faster than one thread (benchmarks/threads.py; docs/performance.md).
    """
    if "OMP_WAIT_POLICY" in environ or "torch" in sys.modules:
        return False
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


def check_thread_count(requested: int) -> int:
    """`requested` (--threads), if it is 1 .. the CPUs this process may run on. More threads than CPUs are refused,
    not clamped: each OpenMP barrier would then wait for time slices (see the module docstring), so such a count
    is never what was meant, and a typo (1000 for 10) should not silently become another setting."""
    cpus = len(usable_cpus())
    if not 1 <= requested <= cpus:
        raise ConfigError(f"--threads {requested}: this process may run on {cpus} CPU{'s' if cpus > 1 else ''}",
                          f"pass --threads 1 to {cpus}, or leave it out (one thread per idle CPU)")
    return requested


def set_torch_threads(requested: int | None = None, environ=os.environ) -> int:
    """Give torch `requested` threads, or, unless OMP_NUM_THREADS chose already, one per free CPU
    (`choose_threads`). Returns the count torch now uses."""
    import torch

    if requested is not None:
        torch.set_num_threads(check_thread_count(requested))
    elif not environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(choose_threads())
    return torch.get_num_threads()


@contextlib.contextmanager
def torch_threads(n: int):
    """torch's intra-op thread count set to `n` inside the block, the previous count restored after it (also on an
    error). The count is the process's: torch work on other threads meanwhile uses it too."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
