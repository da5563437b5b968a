"""Training speed against the torch thread count on a busy machine: each choice with and without a competing load.

The competing load is `--load` processes that spin (default: one per CPU this process may use), started before the
timed runs and stopped after. Each choice runs in a fresh process (OMP_WAIT_POLICY is read once, when the OpenMP
runtime loads with torch) and times paper-mnist's fused step for `--seconds`:

  one           1 thread
  all           one thread per CPU (torch's own default), OpenMP's default wait policy
  all-passive   the same with OMP_WAIT_POLICY=PASSIVE (waiting threads sleep instead of spinning)
  all-spin      the same with GOMP_SPINCOUNT=10000 (libgomp: spin ~10k iterations, then sleep)
  auto          what `advnets train` does by default: OMP_WAIT_POLICY=PASSIVE and advnets.threads.choose_threads()
                (one thread per CPU found idle)

Prints one JSON object: steps/s for each choice, idle and loaded, and each choice's ratio to `one` in the same
condition.

    python benchmarks/threads.py [--seconds 4] [--load N] [--choices one,all,all-passive,auto]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHOICES = ("one", "all", "all-passive", "all-spin", "auto")


def worker(seconds: float, choice: str) -> dict:
    """In a fresh process: set the threads as `choice` says, then time the fused step for `seconds`."""
    import torch

    from advnets.threads import choose_threads
    from train_throughput import make_trainer  # beside this script (its directory is on sys.path when it runs)

    cpus = len(os.sched_getaffinity(0))
    threads = {"one": 1, "all": cpus, "all-passive": cpus, "all-spin": cpus}.get(choice) or choose_threads()
    torch.set_num_threads(threads)
    trainer = make_trainer(Path("."), choice, True, torch.rand(2000, 1, 28, 28), None)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 3:
        trainer.state.train_steps(1)
        steps += 1
    return {"threads": threads, "steps_per_s": round(steps / (time.perf_counter() - start), 2)}


def run_choice(choice: str, seconds: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_NUM_THREADS")}
    if choice in ("all-passive", "auto"):
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if choice == "all-spin":
        env["GOMP_SPINCOUNT"] = "10000"
    out = subprocess.run([sys.executable, __file__, "--worker", choice, "--seconds", str(seconds)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per choice and condition")
    parser.add_argument("--load", type=int, default=None, help="spinning processes (default: one per usable CPU)")
    parser.add_argument("--choices", default=",".join(CHOICES))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.seconds, args.worker)))
        return
    choices = args.choices.split(",")
    load = args.load if args.load is not None else len(os.sched_getaffinity(0))
    results: dict[str, dict] = {}
    for condition, n in (("idle", 0), ("loaded", load)):
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
        try:
            time.sleep(0.5 if n else 0)
            results[condition] = {c: run_choice(c, args.seconds) for c in choices}
        finally:
            for p in spinners:
                p.kill()
                p.wait()
        if "one" in choices:
            one = results[condition]["one"]["steps_per_s"]
            for c in choices:
                results[condition][c]["vs_one"] = round(results[condition][c]["steps_per_s"] / one, 3)
    print(json.dumps({
        "benchmark": "threads", "networks": "paper-mnist fused step, batch 100",
        "usable_cpus": len(os.sched_getaffinity(0)), "competing_load_processes": load,
        "note": "the machine's other work adds to the load in both conditions",
        **results,
    }, indent=1))


if __name__ == "__main__":
    main()
