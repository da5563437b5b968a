"""The mode-collapse benchmarks (docs/design.md §4): the 2-D grid (25 modes) and ring (8 modes), the paper's recipe
(pack 1) against the remedy (the -remedy presets: packing, PacGAN, and top-k training of G), over several
seeds; prints one JSON object on stdout.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/modes.py                      # 10 seeds, presets' budgets
    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/modes.py --seeds 3 --jobs 2 --steps 4000 \
        --methods paper,pack2,pack4 --set train.lr=0.0005 --markdown table.md

Methods (`--methods`): paper (the `grid` / `ring` preset), remedy (the `grid-remedy` / `ring-remedy` preset as it is:
packing and top-k training, on the grid with 48,000 updates), pack2, pack4, pack2-wide, r1 (the paper's D with the R1
gradient penalty, train.gradient_penalty=1), pack2-r1 (packing with it), topk and pack2-topk (top-k training,
train.top_k=0.5). Each run but remedy trains the `grid` / `ring` preset (100,000 points drawn from the run's seed)
with train.seed = the seed, for `--steps` generator updates (default: the preset's number of updates), then measures
2,500 samples (noise seeded by the run's seed + 1000) as VEEGAN and PacGAN do: modes captured, the high-quality
fraction (within 3 sigma of the nearest mean), and the reverse KL of the high-quality samples' mode histogram to
uniform. Reported per dataset and method: mean and standard error (std / sqrt(n)) over the seeds of the three numbers
and of the wall seconds of a run, with the budget (steps, batch, examples seen) beside them, and the published numbers
(PacGAN Table 1, 10 trials; VEEGAN Table 1). A run whose G has no high-quality sample has no KL (NaN); the mean is
then over the runs that have one and `kl_runs` says how many. Runs are independent processes (`--jobs` at a time, one
thread each).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

# the methods compared: overrides of the preset. "paper": the preset as it is (the paper's Algorithm 1 with a maxout
# D); "packN": PacGAN's D judging N examples at once, with N times the batch so that D still sees as many packed rows
# per step as the paper's D sees examples (PacGAN's setup: 100 packed rows of N examples). pack2 is the packing of the
# remedy presets: at the presets' budgets pack4 kept the grid's 25 modes on more seeds but lost high quality (90.7%
# against 93.7% over seeds 10-19, README), and at 8,000 updates its D stayed at chance.
METHODS = {"paper": {}, "pack2": {"model.pack": 2, "train.batch_size": 200},
           "pack4": {"model.pack": 4, "train.batch_size": 400}}
# pack2 with wider nets, G 3 x 256 and D 2 x 256 maxout units (README: no more robust on the grid)
METHODS["pack2-wide"] = {**METHODS["pack2"], "model.generator_hidden": [256, 256, 256],
                         "model.discriminator_units": [256, 256]}
# The zero-centred gradient penalty on D at the data (R1, Mescheder et al. 2018; train.gradient_penalty), with the
# paper's D and with packing (README: on the grid it kept every mode on the seeds where pack2 alone starved some)
METHODS["r1"] = {"train.gradient_penalty": 1.0}
METHODS["pack2-r1"] = {**METHODS["pack2"], "train.gradient_penalty": 1.0}
# Top-k training (Sinha et al. 2020; train.top_k): G's update keeps the half of its samples (packed rows) that D rates
# highest, the kept share falling from all by 0.99 per epoch (500 updates at batch 200) to 0.5
METHODS["topk"] = {"train.top_k": 0.5}
METHODS["pack2-topk"] = {**METHODS["pack2"], "train.top_k": 0.5}
# "remedy": no overrides of the dataset's -remedy preset, the remedy as shipped (config/presets.py): pack 2 on both,
# and on the grid top-k training of G with 48,000 updates. Its default budget is that preset's.
METHODS["remedy"] = {}
PRESET_SUFFIX = {"remedy": "-remedy"}
# Every run also keeps the moving average of G's weights (train.generator_ema, Yazici et al. 2019), which changes
# nothing in training: each run is measured twice, G itself as METHOD and the average as METHOD+avg.
AVERAGE = 0.999
DEFAULT_METHODS = "paper,remedy"

# mean of 10 trials, grid / ring (docs/design.md §4)
PUBLISHED = {
    "PacGAN Table 1, GAN": {"grid": {"modes": 17.3, "high_quality": 0.948, "reverse_kl": 0.70},
                            "ring": {"modes": 6.3, "high_quality": 0.982, "reverse_kl": 0.45}},
    "PacGAN Table 1, PacGAN4": {"grid": {"modes": 24.8, "high_quality": 0.936, "reverse_kl": 0.04},
                                "ring": {"modes": 7.8, "high_quality": 0.959, "reverse_kl": 0.07}},
    "VEEGAN Table 1, VEEGAN": {"grid": {"modes": 24.6, "high_quality": 0.40},
                               "ring": {"modes": 8.0, "high_quality": 0.529}},
}
BUDGET_NOTE = "PacGAN: 400 epochs of 100,000 points at batch 100 (400,000 steps), on a GPU"
TARGET = {"grid": {"modes": 24.9, "high_quality": 0.95, "reverse_kl": 0.03},
          "ring": {"modes": 7.9, "high_quality": 0.95, "reverse_kl": 0.03}}


def one_run(job: tuple[str, str, int, int | None, list[str]]) -> list[dict]:
    """Train one (dataset, method, seed); measure its final G and the average of G; runs in a worker process."""
    import torch

    from advnets.config import make_config
    from advnets.data.mixtures import mixture_means, mixture_sigma
    from advnets.eval.coverage import mixture_coverage
    from advnets.models import sample_noise
    from advnets.training.trainer import Trainer

    dataset, method, seed, steps, extra = job
    torch.set_num_threads(1)
    preset = dataset + PRESET_SUFFIX.get(method, "")
    overrides = {"train.generator_ema": AVERAGE, **METHODS[method], "train.seed": seed, "train.tensorboard": False}
    if steps is None:                           # the preset's number of updates, at any batch size
        train = make_config(preset).train
        steps = train.epochs * (100_000 // train.batch_size)
    overrides.update({"train.max_steps": steps, "train.epochs": 10**6})
    config = make_config(preset, [f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
                                   for k, v in overrides.items()] + list(extra))
    started = time.perf_counter()
    trainer = Trainer(config, None)
    trainer.run()
    seconds = time.perf_counter() - started
    m = config.model
    out = []
    for name, g in ((method, trainer.generator), (method + "+avg", trainer.sampler)):
        with torch.no_grad():
            z = sample_noise(2500, m.noise_dim, m.noise_prior, torch.Generator().manual_seed(seed + 1000), "cpu")
            samples = g.eval()(z).reshape(-1, 2)
        cov = mixture_coverage(samples, mixture_means(dataset), mixture_sigma(dataset))
        out.append({"dataset": dataset, "method": name, "seed": seed, "steps": trainer.g_updates,
                    "batch_size": config.train.batch_size, "pack": m.pack, "seconds": round(seconds, 2),
                    "modes": cov["modes_captured"], "high_quality": cov["high_quality"],
                    "reverse_kl": cov["reverse_kl"]})
    return out


def mean_se(values) -> dict:
    """Mean and standard error (sample std / sqrt(n)) of the finite values, and their count."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return {"mean": None, "se": None, "n": 0}
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else None
    return {"mean": float(v.mean()), "se": se, "n": len(v)}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for dataset in sorted({r["dataset"] for r in runs}):
        for method in [name + suffix for name in METHODS for suffix in ("", "+avg")]:
            rs = [r for r in runs if r["dataset"] == dataset and r["method"] == method]
            if not rs:
                continue
            steps, batch = rs[0]["steps"], rs[0]["batch_size"]
            out.setdefault(dataset, {})[method] = {
                "runs": len(rs), "modes": mean_se([r["modes"] for r in rs]),
                "high_quality": mean_se([r["high_quality"] for r in rs]),
                "reverse_kl": mean_se([r["reverse_kl"] for r in rs]),
                "seconds": mean_se([r["seconds"] for r in rs]),
                "budget": {"steps": steps, "batch_size": batch, "examples_seen": steps * batch,
                           "pack": rs[0]["pack"]},
                "meets_target": _meets(dataset, rs)}
    return out


def _meets(dataset: str, rs: list[dict]) -> bool:
    t = TARGET[dataset]
    kl = mean_se([r["reverse_kl"] for r in rs])
    return (float(np.mean([r["modes"] for r in rs])) >= t["modes"]
            and float(np.mean([r["high_quality"] for r in rs])) >= t["high_quality"]
            and kl["n"] == len(rs) and kl["mean"] <= t["reverse_kl"])


def plus_minus(stat: dict, scale: float = 1.0, digits: int = 2) -> str:
    """A `mean_se` figure as 'mean ± se' (the mean alone with one value; n/a with none), times `scale`."""
    if stat["mean"] is None:
        return "n/a"
    se = "" if stat["se"] is None else f" ± {stat['se'] * scale:.{digits}f}"
    return f"{stat['mean'] * scale:.{digits}f}{se}"


def markdown(summary: dict) -> str:
    """The README table: ours (mean ± s.e., with the budget) beside the published numbers."""
    lines = ["| dataset | method | modes | high quality % | reverse KL | budget (steps × batch) | wall s / run |",
             "|---|---|---|---|---|---|---|"]
    for dataset, methods in summary.items():
        for method, s in methods.items():
            b = s["budget"]
            kl = plus_minus(s["reverse_kl"], digits=3) + ("" if s["reverse_kl"]["n"] == s["runs"]
                                                   else f" ({s['reverse_kl']['n']} of {s['runs']} runs)")
            lines.append(f"| {dataset} | advnets {method} ({s['runs']} seeds) | {plus_minus(s['modes'], digits=1)} | "
                         f"{plus_minus(s['high_quality'], 100, 1)} | {kl} | {b['steps']:,} × {b['batch_size']} | "
                         f"{plus_minus(s['seconds'], digits=0)} |")
        for name, numbers in PUBLISHED.items():
            p = numbers[dataset]
            kl = f"{p['reverse_kl']:.2f}" if "reverse_kl" in p else "–"
            lines.append(f"| {dataset} | {name} (10 trials) | {p['modes']} | {p['high_quality'] * 100:.1f} | {kl} | "
                         f"{'400,000 × 100' if name.startswith('PacGAN') else 'see paper'} | – |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default 10)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="generator updates per run (default: the preset's: 32,000 for the grid, "
                                             "48,000 for grid-remedy, 24,000 for the ring)")
    p.add_argument("--datasets", default="grid,ring")
    p.add_argument("--methods", default=DEFAULT_METHODS, help=f"of {', '.join(METHODS)} (default {DEFAULT_METHODS})")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config overrides")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, one process and one thread each")
    p.add_argument("--markdown", help="also write the README table to this file")
    args = p.parse_args(argv)
    unknown = sorted(set(args.methods.split(",")) - set(METHODS))
    if unknown:
        p.error(f"unknown method {', '.join(unknown)}: choose from {', '.join(METHODS)}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(d, m, s, args.steps, args.set) for d in args.datasets.split(",") for m in args.methods.split(",")
            for s in seeds]
    started = time.perf_counter()
    runs = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for pair in pool.map(one_run, jobs):                  # in job order; each run's line as soon as it is in
            runs += pair
            for r in pair:
                print(json.dumps(r), file=sys.stderr, flush=True)
    summary = summarise(runs)
    result = {"benchmark": "modes", "summary": summary, "published": PUBLISHED, "published_budget": BUDGET_NOTE,
              "target": TARGET, "runs": runs, "overrides": args.set, "jobs": args.jobs,
              "total_seconds": round(time.perf_counter() - started, 1),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_average": os.getloadavg(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}}
    if args.markdown:
        from advnets.fileio import atomic_write_text

        atomic_write_text(args.markdown, markdown(summary))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
