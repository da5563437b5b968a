"""Data-parallel scaling on this machine: samples/s of 1 and 2 ranks (torchrun, Gloo, 1 thread per rank), the
all-reduce time per step and its share, and the scaling efficiency, for the MLP (paper-mnist, fused step) and the
convolutional (paper-cifar10-conv, autograd step) presets.

    python benchmarks/scaling.py [--presets paper-mnist paper-cifar10-conv] [--steps 20] [--ranks 1 2]

Prints one JSON object: per preset and world size N,
  samples_per_s        global minibatch rows per second (train.batch_size x iterations/s), rank 0's clock
  step_ms              milliseconds per iteration
  allreduce_ms         of which in Dist.all_reduce_mean (both players' all-reduces; includes waiting for the slower
                       rank), and allreduce_share = allreduce_ms / step_ms
  random_ms            of which drawing the noise, masks and sampled classes (every rank draws the whole global
                       minibatch's, distributed.py), and random_share
  efficiency           samples_per_s(N) / (N x samples_per_s(1)): 1 is perfect scaling
The data are random images of the preset's shape (speed does not depend on pixel values). Each rank runs one thread,
so N ranks need N free cores: on a shared or small machine the numbers say more about the machine than the code.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(preset: str, steps: int, out: Path) -> None:
    """Under torchrun (or alone): time `steps` iterations after 3 of warm-up; rank 0 writes the JSON to `out`."""
    import torch

    from advnets.config import make_config
    from advnets.training import Trainer
    from advnets.training.algorithm1 import Algorithm1
    from advnets.training.distributed import Dist

    torch.set_num_threads(1)
    timers = {"allreduce": 0.0, "random": 0.0}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timers[name] += time.perf_counter() - start
        return wrapper

    Dist.all_reduce_mean = timed("allreduce", Dist.all_reduce_mean)
    for name in ("_noise", "_masks", "_classes"):
        setattr(Algorithm1, name, timed("random", getattr(Algorithm1, name)))
    dist = Dist.from_env(torch.device("cpu"))
    cfg = make_config(preset, {"train.device": "cpu", "data.dataset": "digits"})
    shape = (3, 32, 32) if cfg.model.architecture == "conv" or "cifar" in preset else (1, 28, 28)
    images = torch.rand((4 * cfg.train.batch_size, *shape), generator=torch.Generator().manual_seed(0))
    if cfg.data.contrast_normalize:
        images = images * 2 - 1
    trainer = Trainer(cfg, None, train_images=images, dist=dist)
    run = trainer.state.train_steps

    run(3)
    timers.update(allreduce=0.0, random=0.0)
    start = time.perf_counter()
    run(steps)
    seconds = time.perf_counter() - start
    if dist.writes:
        step = seconds / steps
        out.write_text(json.dumps({
            "world_size": dist.world_size, "step": trainer.algorithm.step.name, "batch_size": cfg.train.batch_size,
            "samples_per_s": round(cfg.train.batch_size / step, 1), "step_ms": round(1e3 * step, 3),
            "allreduce_ms": round(1e3 * timers["allreduce"] / steps, 3),
            "allreduce_share": round(timers["allreduce"] / seconds, 3),
            "random_ms": round(1e3 * timers["random"] / steps, 3),
            "random_share": round(timers["random"] / seconds, 3)}))
    dist.close()


def launch(preset: str, ranks: int, steps: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        args = [str(Path(__file__).resolve()), "--worker", preset, "--steps", str(steps), "--out", str(out)]
        cmd = [sys.executable, *args] if ranks == 1 else \
            [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", *args]
        subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        return json.loads(out.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["paper-mnist", "paper-cifar10-conv"])
    p.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.steps, Path(args.out))
    import platform

    import torch

    report = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "torch": torch.__version__, "backend": "gloo", "threads_per_rank": 1, "steps": args.steps,
              "presets": {}}
    for preset in args.presets:
        runs = {n: launch(preset, n, args.steps) for n in args.ranks}
        base = runs[min(runs)]["samples_per_s"] / min(runs)
        for n, r in runs.items():
            r["efficiency"] = round(r["samples_per_s"] / (n * base), 3)
        report["presets"][preset] = {str(n): r for n, r in runs.items()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
