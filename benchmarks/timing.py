"""Timing helpers shared by the throughput benchmarks: a trainer's iterations, matrix products, the machine's
GFLOP/s. Each returns seconds (best of several passes where the machine's noise matters)."""
from __future__ import annotations

import statistics
import time

import torch


def time_steps(trainer, steps: int) -> float:
    """Seconds per iteration of `trainer` (its perm set), wrapping around the epoch."""
    step = step_once(trainer)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


class GemmPass:
    """One pass over the products `shapes` ((name, M, K, N) each: (M, K) @ (K, N) into an (M, N) buffer), with the
    operands allocated once, so that timing a pass never includes the first touch of new memory. With `accumulate`,
    the products whose name contains it are added into their buffer as the fused step adds a weight gradient into
    its velocity (out <- 0.5 out - 0.1 a @ b: the buffer is read as well as written)."""

    def __init__(self, shapes, accumulate: str | None = None):
        self.mats = [(torch.rand(mm, k), torch.rand(k, n)) for _, mm, k, n in shapes]
        self.outs = [torch.zeros(mm, n) for _, mm, _, n in shapes]
        self.into = [accumulate is not None and accumulate in name for name, *_ in shapes]

    def __call__(self) -> None:
        for (a, b), out, into in zip(self.mats, self.outs, self.into):
            if into:
                torch.addmm(out, a, b, beta=0.5, alpha=-0.1, out=out)
            else:
                torch.mm(a, b, out=out)

    def times(self, repeats: int) -> list[float]:
        """Seconds of each of `repeats` passes."""
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            self()
            seconds.append(time.perf_counter() - start)
        return seconds


def step_once(trainer):
    """A function that runs one iteration of `trainer`, wrapping around the epoch."""
    return lambda: trainer.state.train_steps(1)


def paired_rounds(bound, step, rounds: int, per_round: int, extra=()) -> list[tuple[list[float], ...]]:
    """`rounds` rounds of `per_round` calls of `bound()` then `per_round` calls of `step()`: each round's seconds per
    call, (bound's, step's). Each callable in `extra` is called `per_round` times between the two, and its seconds
    follow the step's in the round's tuple (bound's, step's, extra[0]'s, ...).

    This is how the fraction of a bound is measured on a noisy machine: the two sides of a round see the same
    load, so the median over the rounds of bound-mean / step-mean (`paired_fraction`) does not move with a burst
    of other work. The best single call of the bound against the best round of the step (the estimate these
    benchmarks printed before) sets the extreme of many short passes against the extreme of a few long means, and
    on a machine with other tenants it moved about twice as much from run to run (README, Speed)."""
    result = []
    for _ in range(rounds):
        sides = tuple([] for _ in range(2 + len(extra)))
        for side, run in zip((sides[0], *sides[2:], sides[1]), (bound, *extra, step)):
            for _ in range(per_round):
                start = time.perf_counter()
                run()
                side.append(time.perf_counter() - start)
        result.append(sides)
    return result


def mean(seconds: list[float]) -> float:
    return sum(seconds) / len(seconds)


def paired_fraction(rounds: list[tuple[list[float], ...]], parts: tuple[int, ...] = (0,)) -> dict:
    """From `paired_rounds`: the median over the rounds of (bound's mean / step's mean) and its quartiles, and the
    same two sides compared the old way (best single bound call / best round of the step). `parts`: the sides whose
    means add up to the bound (default the bound's alone; (0, 2) adds the first `extra`'s)."""
    ratios = sorted(sum(mean(r[i]) for i in parts) / mean(r[1]) for r in rounds)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    best_step = min(mean(r[1]) for r in rounds)
    best_bound = min(min(r[0]) for r in rounds)
    return {"median": statistics.median(ratios), "quartiles": (quartiles[0], quartiles[2]),
            "best_pass_over_best_round": best_bound / best_step, "best_step": best_step,
            "median_step": statistics.median(mean(r[1]) for r in rounds), "best_bound_pass": best_bound}


def square_gflops(n: int = 2048) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(3):
        torch.mm(a, b)
    return 3 * 2 * n ** 3 / (time.perf_counter() - start) / 1e9


# The matrix products among the profiled ops: what the matmul bound counts (addmv: the bias sums, matrix x vector)
MATMUL_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::addmv", "aten::mv", "aten::mkldnn_convolution",
              "aten::convolution_backward")


def op_profile(step, steps: int, top: int = 15, products: bool = False) -> dict:
    """Where one call of `step()` spends its time, per ATen op (torch.profiler), averaged over `steps` calls.

    Self CPU time of each op (its own work, children excluded), ms per step, the `top` largest listed; the
    profiler adds a few microseconds per op, so the sum exceeds the unprofiled step time a little. With
    `products`, the same profile also records shapes and adds "products" (see `_products`)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=products) as prof:
        for _ in range(steps):
            step()
    ops = sorted(((e.key, e.self_cpu_time_total / 1e3 / steps, e.count / steps) for e in prof.key_averages()),
                 key=lambda e: -e[1])
    total = sum(ms for _, ms, _ in ops)
    matmul = sum(ms for name, ms, _ in ops if name in MATMUL_OPS)
    result = {
        "profiled_ms_per_step": round(total, 3),
        "matmul_ops_ms_per_step": round(matmul, 3),
        "other_ops_ms_per_step": round(total - matmul, 3),
        "other_share": round((total - matmul) / total, 3),
        "ops_per_step": round(sum(n for _, _, n in ops), 1),
        "top_ops": {name: {"ms_per_step": round(ms, 3), "share": round(ms / total, 3), "calls_per_step": round(n, 1)}
                    for name, ms, n in ops[:top]},
    }
    if products:
        result["products"] = _products(prof, steps)
    return result


def _products(prof, steps: int, repeats: int = 20) -> list[dict]:
    """Each matrix product (addmm / mm, grouped by shape) of a shape-recording profile of `steps` calls: its ms per
    call inside the step against the same (M, K) @ (K, N) product timed alone and hot (the mean of `repeats`
    calls after one unmeasured, contiguous operands, no bias or accumulation: a mean against a mean, as
    `paired_rounds` argues). A ratio above 1 is time lost in the products themselves (cold caches, transposed
    operands, accumulating into the velocity) rather than around them."""
    rows = []
    for e in prof.key_averages(group_by_input_shape=True):
        if e.key not in ("aten::addmm", "aten::mm"):
            continue
        (mm, k), (_, n) = e.input_shapes[1:3] if e.key == "aten::addmm" else e.input_shapes[:2]
        if mm * k * n < 100_000:                               # D's output layer: microseconds, noise
            continue
        product = GemmPass([("", mm, k, n)])
        product()
        hot_ms = sum(product.times(repeats)) / repeats * 1e3
        in_step = e.self_cpu_time_total / 1e3 / max(1, e.count)
        rows.append({"op": e.key, "product": f"{mm}x{k} @ {k}x{n}", "ms_in_step": round(in_step, 3),
                     "ms_hot": round(hot_ms, 3), "ratio": round(in_step / hot_ms, 2)})
    return sorted(rows, key=lambda r: -r["ms_in_step"])
