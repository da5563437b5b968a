"""Benchmark of the Parzen-window protocol of Table 1 (docs/design.md §2); prints one JSON object on stdout.

    PYTHONPATH=src python benchmarks/parzen.py                       # uniform [0, 1] data, 10k/10k/10k x 784
    PYTHONPATH=src python benchmarks/parzen.py --data /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \
        --test-data /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz   # docs/design.md: 356.8 +- 1.9
    python benchmarks/parzen.py --threads 2 --pairs 5    # also: blocks side by side against one caller, taking turns

Measured in one process: the full protocol (sigma chosen on the validation set from 10 sigmas, then the test set at
that sigma) and the float32 matmul lower bound (the same addmm calls at the same shapes, timed without the rest, the
blocks of points spread over the same `workers` threads as the protocol's), each the best of --repeat runs; the same
products made by one caller with all of torch's threads (matmul_bound_one_caller_seconds: how the bound was timed
before the protocol ran blocks side by side); the straightforward float64 implementation on a subset of points,
extrapolated linearly to the full sets; the largest difference between the two on that subset; memory. The machine
may be shared (timings then say little): the load average is recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import threading
import time

import numpy as np
import torch

from advnets.eval.parzen import (
    BATCH_SIZE,
    SAMPLE_CHUNK,
    block_workers,
    parzen_evaluate,
    parzen_log_likelihood,
    parzen_log_likelihood_reference,
    run_blocks,
    sample_chunks,
    sigma_grid,
)


def load_rows(path: str) -> np.ndarray:
    """(N, d) float32 in [0, 1] from a .npy file or an IDX file (uint8 pixels are divided by 255)."""
    if path.endswith(".npy"):
        arr = np.load(path)
    else:
        from advnets.data.idx import read_idx

        arr = read_idx(path)
    arr = arr.reshape(len(arr), -1)
    return (arr / 255.0 if arr.dtype == np.uint8 else arr).astype(np.float32)


class RssSampler:
    """Peak resident set size while running, sampled from /proc/self/statm every millisecond (Linux only)."""

    def __init__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _run(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self._rss())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def matmul_bound(samples: np.ndarray, n_points: list[int], batch_size: int, sample_chunk: int,
                 workers: int) -> tuple[float, float]:
    """Seconds of only the float32 addmm calls the fast path makes (same shapes, same count, the blocks of points spread
    over the same `workers` threads as the protocol spreads them: eval.parzen.run_blocks), and their GFLOP."""
    s = torch.from_numpy(samples - samples.mean(0))  # (n, d)
    sq = s.pow(2).sum(1)  # (n,)
    seconds, flops = 0.0, 0.0
    local = threading.local()  # one output block per thread
    for m in n_points:
        x = torch.rand(min(batch_size, m), s.shape[1])  # (B, d)
        chunks = sample_chunks(len(s), sample_chunk)

        def block(p0: int, x=x, chunks=chunks, m=m) -> None:
            if not hasattr(local, "out"):
                local.out = torch.empty(x.shape[0] * (chunks[0][1] - chunks[0][0]))
            xb = x[: min(batch_size, m - p0)]
            for s0, s1 in chunks:
                sc = s[s0:s1]
                e = local.out[: len(xb) * len(sc)].view(len(xb), len(sc))  # (B, C)
                torch.addmm(sq[s0:s0 + len(sc)], xb, sc.T, alpha=-2.0, out=e)

        t0 = time.perf_counter()
        run_blocks(block, range(0, m, batch_size), workers)
        seconds += time.perf_counter() - t0
        flops += 2.0 * len(s) * m * s.shape[1]
    return seconds, flops / 1e9


def compare_one_caller(samples, valid, test, sigmas, kw: dict, pairs: int) -> dict:
    """The protocol `pairs` times each way, taking turns in this process: its blocks side by side (as shipped) and all
    blocks made by one caller with all of torch's threads (eval.parzen.block_workers forced to 1), the median over
    the pairs of the ratio of the two times, and how far apart the two ways' numbers are: the same sigma, and the
    largest difference of a mean log-likelihood (validation per sigma, test). They need not be bit-identical: one
    caller's products use a multi-threaded matmul, the blocks a single-threaded one, and a BLAS may sum in another
    order in each."""
    from advnets.eval import parzen

    shipped, times, results = parzen.block_workers, {"side_by_side": [], "one_caller": []}, {}
    try:
        for _ in range(pairs):
            for way, seconds in times.items():
                parzen.block_workers = shipped if way == "side_by_side" else (lambda device, blocks: 1)
                results[way] = parzen_evaluate(samples, valid, test, sigmas, warn=False, **kw)
                seconds.append(results[way].seconds)
    finally:
        parzen.block_workers = shipped
    ratios = [a / b for a, b in zip(times["side_by_side"], times["one_caller"], strict=True)]
    a, b = results["side_by_side"], results["one_caller"]
    return {"side_by_side_over_one_caller": round(statistics.median(ratios), 3),
            **{f"{way}_seconds": [round(t, 3) for t in ts] for way, ts in times.items()},
            "same_sigma": a.sigma == b.sigma,
            "max_abs_diff_nats": float(np.abs(np.array([*a.valid_ll, a.test_mean]) -
                                              np.array([*b.valid_ll, b.test_mean])).max()),
            "same_results": (a.sigma, a.valid_ll, a.test_mean, a.test_stderr) ==
                            (b.sigma, b.valid_ll, b.test_mean, b.test_stderr)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-samples", type=int, default=10_000)
    ap.add_argument("--n-valid", type=int, default=10_000)
    ap.add_argument("--n-test", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=784, help="dimensions of the uniform data (ignored with --data)")
    ap.add_argument("--data", help=".npy or IDX file: samples from its first rows, validation from its last rows")
    ap.add_argument("--test-data", help=".npy or IDX file of test points (default: rows of --data after the samples)")
    ap.add_argument("--ref-points", type=int, default=500, help="points the float64 reference runs on (extrapolated)")
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    ap.add_argument("--sample-chunk", type=int, default=SAMPLE_CHUNK)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="runs of the protocol and of the bound; the best is kept")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's, one per physical core)")
    ap.add_argument("--pairs", type=int, default=0,
                    help="also run the protocol N times each way, taking turns: blocks side by side (as shipped) "
                         "and one caller with all threads; prints the median ratio of the times "
                         "(side_by_side_over_one_caller)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    if args.data:
        rows = load_rows(args.data)
        need = args.n_samples + args.n_valid + (0 if args.test_data else args.n_test)
        if len(rows) < need:
            ap.error(f"{args.data} has {len(rows)} rows, the three sets need {need} (use --n-... or --test-data)")
        samples, valid = rows[: args.n_samples], rows[len(rows) - args.n_valid:]
        test = (load_rows(args.test_data)[: args.n_test] if args.test_data
                else rows[args.n_samples: args.n_samples + args.n_test])
        data = f"{args.data} (+ {args.test_data})" if args.test_data else args.data
    else:
        samples, valid, test = (rng.random((n, args.dim), dtype=np.float32)
                                for n in (args.n_samples, args.n_valid, args.n_test))
        data = "uniform [0, 1], float32"
    sigmas = sigma_grid()
    kw = {"batch_size": args.batch_size, "sample_chunk": args.sample_chunk}
    parzen_log_likelihood(samples[:256], valid[:64], sigmas, **kw)  # warm-up: threads, allocator
    load_before = os.getloadavg()

    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with RssSampler() as rss:
        result = parzen_evaluate(samples, valid, test, sigmas, warn=False, **kw)
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    runs = [result.seconds] + [parzen_evaluate(samples, valid, test, sigmas, warn=False, **kw).seconds
                               for _ in range(args.repeat - 1)]
    workers = block_workers(torch.device("cpu"), -(-max(len(valid), len(test)) // args.batch_size))
    bounds = [matmul_bound(samples, [len(valid), len(test)], args.batch_size, args.sample_chunk, workers)
              for _ in range(args.repeat)]
    one_caller = [matmul_bound(samples, [len(valid), len(test)], args.batch_size, args.sample_chunk, 1)
                  for _ in range(args.repeat)]
    seconds, (mm_seconds, gflop) = min(runs), min(bounds)

    pairs = compare_one_caller(samples, valid, test, sigmas, kw, args.pairs) if args.pairs else None

    r = min(args.ref_points, len(valid), len(test))
    t0 = time.perf_counter()
    ref_valid = parzen_log_likelihood_reference(samples, valid[:r], sigmas)  # (10, r), distances once for all sigmas
    t_ref_valid = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref_test = parzen_log_likelihood_reference(samples, test[:r], result.sigma)  # (r,)
    t_ref_test = time.perf_counter() - t0
    ref_seconds = t_ref_valid * len(valid) / r + t_ref_test * len(test) / r
    fast_valid = parzen_log_likelihood(samples, valid[:r], sigmas, **kw)
    fast_test = parzen_log_likelihood(samples, test[:r], [result.sigma], **kw)[0]
    max_diff = float(max(np.abs(fast_valid - ref_valid).max(), np.abs(fast_test - ref_test).max()))

    print(json.dumps({
        "benchmark": "parzen_window_protocol",
        "data": data,
        "n_samples": len(samples), "n_valid": len(valid), "n_test": len(test), "dim": int(samples[0].size),
        "n_sigmas": len(sigmas), "batch_size": args.batch_size, "sample_chunk": args.sample_chunk,
        "seconds": round(seconds, 3),
        "seconds_all_runs": [round(t, 3) for t in runs],
        "matmul_bound_seconds": round(mm_seconds, 3),
        "matmul_bound_all_runs": [round(b[0], 3) for b in bounds],
        "matmul_gflop": round(gflop, 1),
        "matmul_gflops_per_s": round(gflop / mm_seconds, 1),
        "bound_over_seconds": round(mm_seconds / seconds, 3),
        "workers": workers,
        "matmul_bound_one_caller_seconds": round(min(b[0] for b in one_caller), 3),
        "reference_float64_seconds": round(ref_seconds, 1),
        "reference_note": f"numpy float64, explicit differences, distances once per point for all sigmas; measured on "
                          f"{r} validation + {r} test points ({t_ref_valid + t_ref_test:.1f} s) and extrapolated "
                          f"linearly to {len(valid)} + {len(test)}",
        "speedup_vs_reference": round(ref_seconds / seconds, 1),
        "max_abs_diff_vs_reference_nats": max_diff,
        "max_abs_diff_points": f"{r} validation points x {len(sigmas)} sigmas + {r} test points at the chosen sigma",
        "peak_rss_increase_mb": round((rss.peak - rss.start) / 2**20, 1),
        "ru_maxrss_increase_mb": round((maxrss_after - maxrss_before) / 1024, 1),
        "memory_note": "resident memory of the whole process during parzen_evaluate only, above its level at the start "
                       "(data already loaded): peak_rss_increase_mb samples /proc/self/statm every 1 ms; "
                       "ru_maxrss_increase_mb is how much the lifetime peak grew (0 if an earlier peak was higher)",
        "result": {"sigma": result.sigma, "on_edge": result.on_edge, "test_mean": round(result.test_mean, 3),
                   "test_stderr": round(result.test_stderr, 3),
                   "table_line": result.table_line("real images as samples" if args.data else "uniform noise")},
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "loadavg_1min_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        **({"pairs": pairs} if pairs else {}),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
