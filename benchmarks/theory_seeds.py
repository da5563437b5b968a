"""How robust is the section-4 experiment? Run `advnets.toy1d.run_experiment` for several seeds and print JSON.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/theory_seeds.py --quick          # seeds 0-9, ~3 min
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/theory_seeds.py --seeds 0-4      # the full settings
    ... --perturb 1e-7     # multiply every initial weight by (1 + 1e-7 N(0, 1)): another CPU's rounding

Per seed: the final JSD (the mean over the last `final_window` of training, and the last measurement), C(G)
+ log 4 at the end (mean and last), the Proposition 1 gaps (|D - D*| averaged under (p_data + p_g) / 2,
before and after D is trained alone, and the max over the 99% region), Theorem 1's gap, pass/fail of each
check of the report and the seconds; then how many seeds pass every check. The perturbation is applied here,
by wrapping the Trainer's constructor: the library has no such hook.
"""
from __future__ import annotations

import argparse
import importlib
import json
import time

import torch


def parse_seeds(text: str) -> list[int]:
    """'0-9' or '0,3,5' -> a list of seeds."""
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def perturb_initial_weights(relative: float, seed: int = 12345) -> None:
    """Multiply G's and D's initial weights by (1 + relative N(0, 1)) in every Trainer built from now on."""
    train = importlib.import_module("advnets.training.trainer")
    original = train.Trainer.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        rng = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in list(self.generator.parameters()) + list(self.discriminator.parameters()):
                p.mul_(1.0 + relative * torch.randn(p.shape, generator=rng, dtype=torch.float64).to(p.dtype))

    train.Trainer.__init__ = init


def seed_row(seed: int, quick: bool) -> dict:
    from advnets.theory.experiment import run_experiment

    started = time.perf_counter()
    rep = run_experiment(seed=seed, quick=quick).report
    p1, t1, conv = rep["proposition_1"], rep["theorem_1"], rep["convergence"]
    log4 = -t1["minus_log4"]
    return {"seed": seed, "ok": rep["ok"],
            "ok_checks": {k: rep[k]["ok"] for k in ("proposition_1", "theorem_1", "convergence")},
            "jsd_final_mean": conv["jsd_final_mean"], "jsd_final_last": conv["jsd_final"],
            "c_g_plus_log4_mean": round(t1["c_g_final_mean"] + log4, 5),
            "c_g_plus_log4_last": round(t1["c_g_final"] + log4, 5),
            "d_data_final_mean": conv["d_data_final_mean"], "d_samples_final_mean": conv["d_samples_final_mean"],
            "prop1_mean_gap_before": p1["mean_gap_before"], "prop1_mean_gap": p1["mean_gap"],
            "prop1_max_gap": p1["max_gap"], "theorem1_gap": t1["gap"],
            "stage_a_iteration": p1["g_at_iteration"], "seconds": round(time.perf_counter() - started, 1)}


def spread(rows: list[dict], key: str) -> dict:
    values = sorted(row[key] for row in rows)
    return {"min": values[0], "median": values[len(values) // 2], "max": values[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the tests' settings (default: the full ones)")
    parser.add_argument("--seeds", default="0-9", help="'0-9' or '0,3,5' (default 0-9)")
    parser.add_argument("--perturb", type=float, default=0.0, help="relative noise on the initial weights")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.perturb:
        perturb_initial_weights(args.perturb)
    rows = [seed_row(seed, args.quick) for seed in parse_seeds(args.seeds)]
    from advnets.theory.experiment import TOLERANCES

    keys = ("jsd_final_mean", "c_g_plus_log4_mean", "d_data_final_mean", "d_samples_final_mean",
            "prop1_mean_gap_before", "prop1_mean_gap", "prop1_max_gap", "theorem1_gap")
    print(json.dumps({"settings": "quick" if args.quick else "full", "perturb": args.perturb,
                      "threads": args.threads, "tolerances": TOLERANCES, "seeds": rows,
                      "passing": sum(row["ok"] for row in rows), "of": len(rows),
                      "spread": {key: spread(rows, key) for key in keys}}, indent=1))


if __name__ == "__main__":
    main()
