"""Timing helpers shared by the throughput benchmarks: a trainer's iterations, matrix products, the machine's
GFLOP/s. Each returns seconds (best of several passes where the machine's noise matters)."""
from __future__ import annotations

import time

import torch


def time_steps(trainer, steps: int) -> float:
    """Seconds per iteration of `trainer` (its perm set), wrapping around the epoch."""
    per_epoch = trainer.iterations_per_epoch()
    start = time.perf_counter()
    for _ in range(steps):
        if trainer.position >= per_epoch:
            trainer.position = 0
        trainer.iteration()
    return (time.perf_counter() - start) / steps


def time_gemms(shapes, repeats: int) -> float:
    """Seconds for one pass over all the products, best of `repeats` passes."""
    mats = [(torch.rand(mm, k), torch.rand(k, n)) for _, mm, k, n in shapes]
    outs = [torch.empty(mm, n) for _, mm, _, n in shapes]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for (a, b), out in zip(mats, outs):
            torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return best


def square_gflops(n: int = 2048) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(3):
        torch.mm(a, b)
    return 3 * 2 * n ** 3 / (time.perf_counter() - start) / 1e9
