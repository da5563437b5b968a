"""torch.compile of the fused paper-mnist step against the step as shipped (eager), in one process.

Both compute one simultaneous update's gradients (into .grad) on the same minibatch, noise and masks. Prints one JSON
object:
  compile_seconds        wall time of the first compiled call (tracing, code generation, the C++ compiler)
  max_abs_grad_diff      the largest |compiled - eager| over all parameters' gradients; bit_identical: whether 0
  time_ratio             compiled step time / eager step time: the median over --rounds paired rounds
                         (timing.paired_rounds: --steps of each side per round), with its quartiles
  eager_ms, compiled_ms  each side's best round, ms per step
  control_time_ratio     the same paired measurement of eager against eager, in the same run: what the
                         measurement itself gives when nothing differs (the second side of a round runs on caches
                         the first side left)

    python benchmarks/compile_step.py [--mode default | max-autotune-no-cudagraphs] [--rounds 80] [--steps 5]

Needs a C++ compiler (Inductor builds its CPU kernels with it). The step as shipped stays eager: README, Speed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from advnets.training.step_fused import simultaneous_grads_fused

# modules beside this script (its directory is on sys.path when it runs)
from timing import paired_rounds
from train_throughput import make_trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="default", help="torch.compile mode (default | max-autotune-no-cudagraphs)")
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument("--steps", type=int, default=5, help="steps of each side per round")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(Path(tmp), "fused", True, torch.rand(4000, 1, 28, 28), None)
    algorithm, g, d = trainer.algorithm, trainer.generator, trainer.discriminator
    perm = trainer.state.progress.order(trainer.state.rng, len(trainer.data))
    (x, _), z = algorithm.batch(perm, 0), algorithm.batch_noise()
    masks = algorithm.masks(2 * trainer.config.train.batch_size)
    params = [*g.parameters(), *d.parameters()]

    def eager():
        simultaneous_grads_fused(g, d, x, z, masks, "non-saturating")

    eager()
    reference = [p.grad.clone() for p in params]
    compiled_fn = torch.compile(simultaneous_grads_fused, dynamic=False,
                                mode=None if args.mode == "default" else args.mode)

    def compiled():
        compiled_fn(g, d, x, z, masks, "non-saturating")

    start = time.perf_counter()
    compiled()
    compile_seconds = time.perf_counter() - start
    diff = max((p.grad - r).abs().max().item() for p, r in zip(params, reference))
    rounds = paired_rounds(eager, compiled, args.rounds, args.steps)
    ratios = sorted(sum(c) / sum(e) for e, c in rounds)
    quartiles = statistics.quantiles(ratios, n=4)
    control = statistics.median(sum(b) / sum(a) for a, b in paired_rounds(eager, eager, args.rounds, args.steps))
    print(json.dumps({
        "benchmark": "compile_step", "mode": args.mode, "threads": args.threads, "torch": torch.__version__,
        "compile_seconds": round(compile_seconds, 1),
        "max_abs_grad_diff": diff, "bit_identical": diff == 0.0,
        "time_ratio": round(statistics.median(ratios), 3),
        "time_ratio_quartiles": [round(quartiles[0], 3), round(quartiles[2], 3)],
        "control_time_ratio": round(control, 3),
        "eager_ms": round(min(sum(e) / len(e) for e, _ in rounds) * 1e3, 2),
        "compiled_ms": round(min(sum(c) / len(c) for _, c in rounds) * 1e3, 2),
        "rounds": args.rounds, "steps_per_round": args.steps,
    }, indent=1))


if __name__ == "__main__":
    main()
