"""Would a blocked momentum update be faster? The fused step writes each weight gradient straight into the velocity
(v <- momentum * v - lr * g, one addmm) and then runs p += v; this times that against doing both in row blocks, so
that each block of v is still in L2 for its update, and against the bare product (the matmul bound's view), on the
weight-gradient shapes of paper-mnist at batch 100. One thread; prints one JSON object (ms, best of --repeats, the
three variants interleaved so that the machine's noise hits all alike).

    python benchmarks/blocked_update.py [--repeats 30] [--chunks 32,64,128,256]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

# (rows, inner, columns) of each weight gradient, out_features x (batch) @ (batch) x in_features
SHAPES = {"G1": (1200, 100, 1200), "G2": (784, 100, 1200), "D0": (1200, 200, 784), "D1": (1200, 200, 240)}


def timed(shape: tuple[int, int, int], chunk: int, repeats: int) -> dict[str, float]:
    rows, inner, cols = shape
    a, b = torch.rand(rows, inner), torch.rand(inner, cols)
    v, p, out = torch.rand(rows, cols), torch.rand(rows, cols), torch.empty(rows, cols)

    def bare():
        torch.mm(a, b, out=out)

    def current():                                   # what training/step_fused.py + MomentumSGD do
        torch.addmm(v, a, b, beta=0.5, alpha=-0.1, out=v)
        p.add_(v)

    def blocked():
        for s in range(0, rows, chunk):
            vs = v[s:s + chunk]
            torch.addmm(vs, a[s:s + chunk], b, beta=0.5, alpha=-0.1, out=vs)
            p[s:s + chunk].add_(vs)

    best = {"bare": float("inf"), "current": float("inf"), "blocked": float("inf")}
    for _ in range(repeats):
        for name, f in (("bare", bare), ("current", current), ("blocked", blocked)):
            start = time.perf_counter()
            f()
            best[name] = min(best[name], time.perf_counter() - start)
    return {k: round(s * 1e3, 3) for k, s in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--chunks", default="32,64,128,256")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    for chunk in (int(c) for c in args.chunks.split(",")):
        per = {name: timed(shape, chunk, args.repeats) for name, shape in SHAPES.items()}
        total = {k: round(sum(r[k] for r in per.values()), 3) for k in ("bare", "current", "blocked")}
        results[f"rows_per_block_{chunk}"] = {"total_ms": total,
                                               "blocked_vs_current": round(total["blocked"] / total["current"], 3),
                                               "layers_ms": per}
    print(json.dumps({"benchmark": "blocked_update", "threads": 1, "torch": torch.__version__, **results}, indent=1))


if __name__ == "__main__":
    main()
