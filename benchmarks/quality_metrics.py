"""Benchmark of advnets.eval.feature_metrics on N real x N fake random features; prints one JSON object on stdout.

    PYTHONPATH=src python benchmarks/quality_metrics.py                  # 10k x 10k, dimension 128, 1 thread
    PYTHONPATH=src python benchmarks/quality_metrics.py --threads 2

Measured in one process, in this order: `quality_metrics` (FD, KID with 100 subsets of 1,000, precision/recall
k = 3, density/coverage k = 5) and each of its parts; the peak resident memory they added (ru_maxrss after minus
before, so measured first, before anything large is allocated); then the baseline, one N x N float64 product
x @ y.T of the same features (what any exact k-NN metric must compute at least three times), and the ratio of
the two times. The machine may be shared: the load average is recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

import numpy as np
import torch

from advnets.eval.feature_metrics import (
    BLOCK_ELEMENTS,
    density_coverage,
    frechet_distance,
    kernel_distance,
    precision_recall,
    quality_metrics,
)


def max_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss           # KiB on Linux
    return kib / 1024


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="real and fake features each")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    real = rng.normal(size=(args.n, args.dim)).astype(np.float32)
    fake = (rng.normal(size=(args.n, args.dim)) * 1.1 + 0.05).astype(np.float32)
    quality_metrics(real[:200], fake[:200], kid_subsets=2, kid_subset_size=100)   # warm-up: thread pools, imports

    rss_before = max_rss_mib()
    metrics, total = timed(quality_metrics, real, fake)
    rss_peak = max_rss_mib()
    _, fd_s = timed(frechet_distance, real, fake)
    _, kid_s = timed(kernel_distance, real, fake)
    _, pr_s = timed(precision_recall, real, fake, 3)
    _, dc_s = timed(density_coverage, real, fake, 5)

    x, y = torch.from_numpy(real).double(), torch.from_numpy(fake).double()
    _, baseline = timed(torch.matmul, x, y.T)                          # (N, N) float64, 0.8 GB at 10k
    result = {
        "n_real": args.n, "n_fake": args.n, "dim": args.dim, "threads": torch.get_num_threads(),
        "quality_metrics_seconds": round(total, 3),
        "parts_seconds": {"fd": round(fd_s, 3), "kid_100x1000": round(kid_s, 3), "precision_recall_k3": round(pr_s, 3),
                          "density_coverage_k5": round(dc_s, 3)},
        "peak_rss_added_mib": round(rss_peak - rss_before, 1),
        "block_mib": BLOCK_ELEMENTS * 8 / 2**20,
        "baseline_one_NxN_float64_product_seconds": round(baseline, 3),
        "ratio_to_baseline": round(total / baseline, 2),
        "metrics": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()},
        "torch": torch.__version__, "numpy": np.__version__, "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
