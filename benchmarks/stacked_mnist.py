"""The Stacked MNIST benchmark (data/stacked.py; docs/mode-collapse.md): 1,000 modes, one per digit triple. The paper's
recipe (the `stacked-mnist` preset) against the remedy (`stacked-mnist-remedy`), over several seeds; prints one JSON
object on stdout.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/stacked_mnist.py                  # 10 seeds, presets' budgets
    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/stacked_mnist.py --seeds 3 --jobs 2 \
        --methods remedy,remedy-d-half,remedy-d-quarter --markdown table.md

Each run trains its preset with train.seed = the seed (the stacking is drawn from that seed too: data.stack_seed is
null), for `--steps` generator updates (default: the preset's), then reads 26,000 samples of the run's sampler (the
average of G's weights where the preset keeps one; noise seeded by the seed + 1000) with the source digits'
classifier, channel by channel, as VEEGAN and PacGAN do: modes captured (triples seen at least once, of 1,000), the KL
of the samples' triple histogram to the data's triple distribution (eval/stacked_coverage.py), and the KL to uniform
(the papers' number). Beside them: the same numbers for 26,000 real stacks of held-out digits (the floor a perfect
generator reaches with this classifier). Reported per method: mean and standard error (std / sqrt(n)) over the seeds,
wall seconds and steps per run, and the published rows (PacGAN Tables 2 and 3). Runs are independent processes
(`--jobs` at a time, one thread each). `--measure RUN_DIR ...` trains nothing: it reads finished runs of one method
trained elsewhere (`advnets train --preset stacked-mnist-remedy --seed S`, or kept by `--runs`) the same way, after
checking that each holds that method's settings.

Methods: paper (the `stacked-mnist` preset), remedy (`stacked-mnist-remedy`), and remedy-d-half / remedy-d-quarter:
the remedy with D's maxout layers a half and a quarter as wide (PacGAN Table 3 shrinks D against G the same way).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, NamedTuple

# beside this script (its directory is on sys.path when it runs): the 2-D benchmark's statistics and their format
from modes import mean_se, plus_minus

SAMPLES = 26_000        # VEEGAN and PacGAN read 26,000 samples
PRESETS = {"paper": "stacked-mnist", "remedy": "stacked-mnist-remedy",
           "remedy-d-half": "stacked-mnist-remedy", "remedy-d-quarter": "stacked-mnist-remedy"}
D_SHRINK = {"remedy-d-half": 2, "remedy-d-quarter": 4}
DEFAULT_METHODS = "paper,remedy"

# mean over trials (PacGAN Table 2: VEEGAN's D; Table 3: the unrolled-GAN setting with D 1/2 or 1/4 of G)
PUBLISHED = {
    "DCGAN (PacGAN Table 2)": {"modes": 99.0, "kl": 3.40},
    "ALI (PacGAN Table 2)": {"modes": 16.0, "kl": 5.40},
    "Unrolled GAN (PacGAN Table 2)": {"modes": 48.7, "kl": 4.32},
    "VEEGAN (PacGAN Table 2)": {"modes": 150.0, "kl": 2.95},
    "PacDCGAN2 (PacGAN Table 2)": {"modes": 1000.0, "kl": 0.06},
    "PacDCGAN4 (PacGAN Table 2)": {"modes": 1000.0, "kl": 0.07},
    "DCGAN, D 1/2 of G (PacGAN Table 3)": {"modes": 628.0, "kl": 2.58},
    "Unrolled GAN 10 steps, D 1/2 (PacGAN Table 3)": {"modes": 817.0, "kl": 1.43},
    "PacDCGAN3, D 1/2 (PacGAN Table 3)": {"modes": 867.0, "kl": 0.90},
    "DCGAN, D 1/4 of G (PacGAN Table 3)": {"modes": 31.0, "kl": 5.99},
    "PacDCGAN4, D 1/4 (PacGAN Table 3)": {"modes": 667.0, "kl": 1.81},
}
TARGET = {"modes": 999.5, "kl": 0.05, "seconds": 1200}


def method_config(method: str, seed: int, steps: int | None, extra: list[str]):
    """The config of one run: the method's preset with the seed, `steps` updates and the extra overrides; for the
    remedy-d-* methods D's maxout layers then narrowed (after the extra overrides, which may set their widths)."""
    from advnets.config import make_config

    sets = {"train.seed": seed, "train.tensorboard": False, "train.coverage_every_epochs": 0}   # measured after
    if steps is not None:
        sets.update({"train.max_steps": steps, "train.epochs": 10**6})
    overrides = [f"{k}={json.dumps(v)}" for k, v in sets.items()] + list(extra)
    config = make_config(PRESETS[method], overrides)
    if method in D_SHRINK:
        units = [max(1, u // D_SHRINK[method]) for u in config.model.discriminator_units]
        config = make_config(PRESETS[method], overrides + [f"model.discriminator_units={json.dumps(units)}"])
    return config


def one_run(job: tuple[str, int, int | None, list[str], str | None, str | None]) -> dict:
    """Train one (method, seed) and read SAMPLES samples of its sampler; runs in a worker process. With a grid
    folder, the first 100 samples also go to GRIDS/METHOD_seedS.png (RGB: channel 0 red); with a runs folder, the
    run is kept as the run directory RUNS/METHOD_seedS (else nothing is written)."""
    import torch

    from advnets.training.trainer import Trainer

    method, seed, steps, extra, grids, runs = job
    torch.set_num_threads(1)
    config = method_config(method, seed, steps, extra)
    started = time.perf_counter()
    trainer = Trainer(config, os.path.join(runs, f"{method}_seed{seed}") if runs else None)
    trainer.run()
    seconds = time.perf_counter() - started
    return measure(trainer.sampler.eval(), config, method, seed, trainer.g_updates, seconds, grids)


def measure(sampler, config, method: str, seed: int, steps: int, seconds: float, grids: str | None) -> dict:
    """One run's row: SAMPLES samples of `sampler` (noise seeded by the seed + 1000) read by the source digits'
    classifier, channel by channel; with a grid folder, the first 100 also go to GRIDS/METHOD_seedS.png."""
    import torch

    from advnets.data.registry import load_stacked_labels
    from advnets.eval.classifier import load_or_train_classifier
    from advnets.eval.stacked_coverage import stacked_coverage, stacked_mode_frequencies
    from advnets.models import sample_noise

    m = config.model
    with torch.no_grad():
        z = sample_noise(SAMPLES, m.noise_dim, m.noise_prior, torch.Generator().manual_seed(seed + 1000), "cpu")
        samples = torch.cat([sampler(b) for b in z.split(1000)])
    if grids:
        from advnets.figures.image_grid import save_grid

        save_grid(samples[:100], os.path.join(grids, f"{method}_seed{seed}.png"), nrow=10, scale=2)
    classifier = load_or_train_classifier(config.data)
    frequencies = stacked_mode_frequencies(load_stacked_labels(config.data, run_seed=seed))
    cov = stacked_coverage(classifier.predict(samples), frequencies)
    return {"method": method, "seed": seed, "steps": steps, "batch_size": config.train.batch_size,
            "d_units": list(m.discriminator_units), "seconds": round(seconds, 1),
            "modes": cov["modes_captured"], "kl": cov["kl"], "kl_uniform": cov["kl_uniform"]}


class Kept(NamedTuple):
    """What measuring needs of a run trained elsewhere: its G (the average when it kept one), config, updates and
    training seconds. D is not kept, so many checked runs held at once cost G's weights only."""
    generator: Any
    config: Any
    step: int
    seconds: float


def check_kept(run_dir: str, method: str, steps: int | None, extra: list[str]) -> Kept:
    """A run trained elsewhere (`--runs`, or `advnets train --preset P --seed S`) loaded for measuring, with its
    training seconds: it must hold the method's settings for its seed (up to the ones a resume may change, such as
    TensorBoard or the coverage lines) and have finished its epochs (or its `steps` updates). Its seconds are its
    epochs' training time as metrics.jsonl records it (without the start-up and the end-of-run checkpoint one_run's
    clock includes). A folder that holds no readable run, or another run, exits with one line saying why."""
    from advnets import load_run
    from advnets.errors import AdvnetsError
    from advnets.run.layout import changed_settings, read_metrics

    try:
        run = load_run(run_dir, device="cpu")
    except AdvnetsError as exc:
        raise SystemExit(f"stacked_mnist.py: {exc}") from None
    expected = method_config(method, run.config.train.seed, steps, extra)
    changed = changed_settings(expected, run.config)
    if changed:
        raise SystemExit(f"stacked_mnist.py: {run_dir} differs from the {method} settings (the method's -> the "
                         f"run's: {changed}); pass --methods, --steps and --set as it was trained")
    unit, done, planned = ("update", run.step, steps) if steps else ("epoch", run.epoch, expected.train.epochs)
    if done < planned:
        raise SystemExit(f"stacked_mnist.py: {run_dir} stopped at {unit} {done} of {planned}; "
                         "finish it with `advnets train --resume`")
    seconds = sum(r.get("seconds") or 0.0 for r in read_metrics(run_dir) if r.get("kind") == "epoch")
    return Kept(run.generator, run.config, run.step, seconds)


def measure_kept(kept: Kept, method: str, grids: str | None) -> dict:
    """The row of a run trained elsewhere, as check_kept loaded it, measured as one_run measures its own."""
    import torch

    torch.set_num_threads(1)
    return measure(kept.generator, kept.config, method, kept.config.train.seed, kept.step, kept.seconds, grids)


def summarise(runs: list[dict]) -> dict:
    out = {}
    for method in PRESETS:
        rs = [r for r in runs if r["method"] == method]
        if rs:
            s = {key: mean_se([r[key] for r in rs]) for key in ("modes", "kl", "kl_uniform", "seconds", "steps")}
            s.update(runs=len(rs), batch_size=rs[0]["batch_size"], d_units=rs[0]["d_units"],
                     meets_target=bool(s["modes"]["mean"] >= TARGET["modes"] and s["kl"]["n"] == len(rs)
                                       and s["kl"]["mean"] <= TARGET["kl"]
                                       and max(r["seconds"] for r in rs) <= TARGET["seconds"]))
            out[method] = s
    return out


def real_floor(seed: int = 0) -> dict:
    """Modes and KLs of SAMPLES real stacks of held-out digits, read by the same classifier."""
    from advnets.config import make_config
    from advnets.data.registry import load_stacked_labels, load_stacked_test
    from advnets.eval.classifier import load_or_train_classifier
    from advnets.eval.stacked_coverage import stacked_coverage, stacked_mode_frequencies

    data = make_config(PRESETS["remedy"]).data
    _, real = load_stacked_test(data, SAMPLES, run_seed=seed)
    frequencies = stacked_mode_frequencies(load_stacked_labels(data, run_seed=seed))
    cov = stacked_coverage(load_or_train_classifier(data).predict(real.images), frequencies)
    return {"modes": cov["modes_captured"], "kl": cov["kl"], "kl_uniform": cov["kl_uniform"], "n": cov["n"]}


def markdown(summary: dict, floor: dict) -> str:
    """The docs table: ours (mean ± s.e., with the budget) beside the published rows."""
    lines = ["| method | modes (of 1,000) | KL to data | KL to uniform | steps × batch | wall s / run (1 core) |",
             "|---|---|---|---|---|---|"]
    for method, s in summary.items():
        cells = [plus_minus(s["modes"], digits=1), plus_minus(s["kl"], digits=3), plus_minus(s["kl_uniform"], digits=3),
                 f"{s['steps']['mean']:,.0f} × {s['batch_size']}", plus_minus(s["seconds"], digits=0)]
        lines.append(f"| advnets {method} ({s['runs']} seed{'s' * (s['runs'] != 1)}, D {s['d_units']}) | "
                     + " | ".join(cells) + " |")
    lines.append(f"| real held-out stacks (the classifier's floor) | {floor['modes']} | {floor['kl']:.3f} | "
                 f"{floor['kl_uniform']:.3f} | – | – |")
    for name, p in PUBLISHED.items():
        lines.append(f"| {name} | {p['modes']} | – | {p['kl']:.2f} | – | – |")
    return "\n".join(lines) + "\n"


def _combine(paths: list[str], markdown_path: str | None) -> int:
    """One summary of the runs in several JSON outputs of this script (e.g. methods run on different cores)."""
    results = []
    for path in paths:
        with open(path) as f:
            results.append(json.load(f))
    runs = [r for result in results for r in result["runs"]]
    summary, floor = summarise(runs), results[0]["real_floor"]
    if markdown_path:
        from advnets.fileio import atomic_write_text

        atomic_write_text(markdown_path, markdown(summary, floor))
    print(json.dumps({"benchmark": "stacked_mnist", "summary": summary, "real_floor": floor, "combined": paths,
                      "runs": runs, "published": PUBLISHED, "target": TARGET}, indent=1))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default 10)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="generator updates per run (default: the preset's)")
    p.add_argument("--methods", default=DEFAULT_METHODS, help=f"of {', '.join(PRESETS)} (default {DEFAULT_METHODS})")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config overrides")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, one process and one thread each")
    p.add_argument("--markdown", help="also write the docs table to this file")
    p.add_argument("--grids", metavar="DIR", help="write each run's first 100 samples to DIR/METHOD_seedS.png")
    p.add_argument("--runs", metavar="DIR", help="keep each run as the run directory DIR/METHOD_seedS (for "
                                                   "`advnets eval`, `advnets sample`, stacked_classifier_check.py)")
    p.add_argument("--combine", nargs="+", metavar="JSON", help="no training: merge the runs of earlier outputs of "
                                                               "this script into one summary (and --markdown table)")
    p.add_argument("--measure", nargs="+", metavar="RUN_DIR", help="no training: measure finished runs trained "
                   "elsewhere (by --runs, or `advnets train --preset P --seed S`) as the benchmark measures its own; "
                   "--methods names their one method, --set their extra settings")
    args = p.parse_args(argv)
    if args.combine:
        return _combine(args.combine, args.markdown)
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(PRESETS))
    if unknown:
        p.error(f"unknown method {', '.join(unknown)}: choose from {', '.join(PRESETS)}")
    if args.measure and len(methods) != 1:
        p.error("--measure reads runs of one method: name it with --methods")
    # every kept run loaded and checked once, before the classifier's cost: a wrong folder is told at once
    kept = [check_kept(run_dir, methods[0], args.steps, args.set) for run_dir in args.measure or []]
    from advnets.config import make_config
    from advnets.eval.classifier import load_or_train_classifier

    load_or_train_classifier(make_config(PRESETS["remedy"]).data)       # trained once, before the workers read it
    started = time.perf_counter()
    runs = []
    if args.measure:
        for run in kept:
            runs.append(measure_kept(run, methods[0], args.grids))
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    else:
        jobs = [(m, s, args.steps, args.set, args.grids, args.runs)
                for m in methods for s in range(args.first_seed, args.first_seed + args.seeds)]
        with ProcessPoolExecutor(args.jobs) as pool:
            for r in pool.map(one_run, jobs):                   # in job order; each run's line as soon as it is in
                runs.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
    summary, floor = summarise(runs), real_floor()
    result = {"benchmark": "stacked_mnist", "summary": summary, "real_floor": floor, "published": PUBLISHED,
              "target": TARGET, "runs": runs, "overrides": args.set, "jobs": args.jobs,
              "total_seconds": round(time.perf_counter() - started, 1),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_average": os.getloadavg(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}}
    if args.markdown:
        from advnets.fileio import atomic_write_text

        atomic_write_text(args.markdown, markdown(summary, floor))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
