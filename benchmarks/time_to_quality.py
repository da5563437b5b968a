"""Quality per CPU-second: a preset trained for a fixed wall-clock budget, scored at several points along the way,
beside the same recipe through a plain autograd step, trained for the same budget in the same process (the two
take turns, one scoring interval each, so that a busy spell on the machine slows both alike).

Prints one JSON object and writes a PNG of quality against training seconds for both:
  runs.<name>.points[]    seconds (training time only: scoring is not counted), steps, Parzen test log-likelihood
                          (mean, standard error, sigma) and, on labelled data, classes captured, Frechet distance,
                          precision and recall on the real-data classifier's features (eval/sample_report.py)
  floor                   the same feature metrics for real test images against real valid images
The "autograd port" is advnets' own Trainer with the hand-written fused step switched off: the same networks,
initialisation, data order, noise and schedules, with both gradients taken by torch.autograd (the code a plain
PyTorch port of the paper's recipe would run). Both use one thread by default.

    python benchmarks/time_to_quality.py --dataset fashion-mnist [--budget 600] [--points 5] [--threads 1]
    python benchmarks/time_to_quality.py --replot RESULT.json --out PNG      # redraw the PNG of a saved run

Defaults: 10 minutes of training per variant; Parzen on 5,000 samples with sigma chosen on 2,000 valid images and
the log-likelihood on 2,000 test images (the paper's protocol uses 10,000 of each; pass --parzen-samples 10000
--parzen-points 10000 for it, at about 3x the scoring time).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
import torch

from advnets.config import make_config
from advnets.data import load_data_split
from advnets.eval.parzen import parzen_evaluate
from advnets.models import label_kwargs, sample_noise
from advnets.training import Trainer


@torch.no_grad()
def draw(trainer: Trainer, n: int, seed: int = 12345) -> np.ndarray:
    """n samples of the trainer's G in evaluation mode, from a noise stream of their own."""
    g, m = trainer.sampler, trainer.config.model
    rng = torch.Generator(device=trainer.device).manual_seed(seed)
    z = sample_noise(n, m.noise_dim, m.noise_prior, rng, trainer.device)
    labels = trainer.data.sample_classes(n, rng)
    g.eval()
    x = g(z, **label_kwargs(labels)).cpu().numpy()
    g.train()
    return x


def score(trainer: Trainer, splits: dict, classifier, args) -> dict:
    samples = draw(trainer, args.parzen_samples)
    flat = samples.reshape(len(samples), -1)
    parzen = parzen_evaluate(flat, splits["valid"].reshape(len(splits["valid"]), -1)[:args.parzen_points],
                             splits["test"].reshape(len(splits["test"]), -1)[:args.parzen_points], warn=False)
    out = {"parzen_ll": round(parzen.test_mean, 2), "parzen_stderr": round(parzen.test_stderr, 2),
           "parzen_sigma": round(parzen.sigma, 4)}
    if classifier is not None:
        from advnets.eval.sample_report import sample_report

        report = sample_report(samples[:args.feature_samples], classifier, splits["valid"][:args.feature_samples],
                               splits["test"][:args.feature_samples], splits["train_labels"])
        q, c = report["quality"], report["class_coverage"]
        out.update({"classes_captured": c["classes_captured"], "class_kl": c["kl"], "fd": round(q["fd"], 3),
                    "precision": round(q["precision"], 4), "recall": round(q["recall"], 4)})
        out["_floor"] = {"fd": round(q["floor"]["fd"], 3), "precision": round(q["floor"]["precision"], 4),
                         "recall": round(q["floor"]["recall"], 4),
                         "classes_captured": c["floor"]["classes_captured"]}
    return out


class Variant:
    """One trainer of the comparison, trained in slices so that the two variants alternate and share the machine's
    load (a busy spell slows both, not one)."""

    def __init__(self, name: str, config, fused: bool, splits: dict):
        self.name, self.spent, self.points = name, 0.0, []
        self.trainer = Trainer(config, None, train_images=splits["train"], train_labels=splits["train_labels"],
                               step=None if fused else "autograd")

    def train_until(self, target: float) -> None:
        """Train until `target` training seconds in all (checking the clock every 10 iterations)."""
        start = time.perf_counter()
        while self.spent + (time.perf_counter() - start) < target:
            self.trainer.state.train_steps(10)
        self.spent += time.perf_counter() - start


def plot(result: dict, out: str) -> None:
    """The PNG of this benchmark's JSON `result`: Parzen (and, with a floor, the Frechet distance) against training
    seconds, one line per variant. `python benchmarks/time_to_quality.py --replot RESULT.json` redraws it."""
    from matplotlib.figure import Figure

    runs, floor, threads = result["runs"], result["floor"], result["threads"]

    panels = [("parzen_ll", "Parzen test log-likelihood", "higher is better")]
    if floor is not None:
        panels.append(("fd", "Frechet distance on classifier features", "lower is better"))
    fig = Figure(figsize=(7 * len(panels), 4.2))
    for i, (key, label, better) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for name, run in runs.items():
            xs, ys = [p["seconds"] for p in run["points"]], [p[key] for p in run["points"]]
            err = [p["parzen_stderr"] for p in run["points"]] if key == "parzen_ll" else None
            ax.errorbar(xs, ys, err, marker="o", capsize=3, label=f"{name} ({run['points'][-1]['steps']} steps)")
        if key == "fd":
            ax.axhline(floor["fd"], color="grey", ls="--", label=f"real test vs valid ({floor['fd']})")
        ax.set_xlabel(f"training seconds ({threads} thread{'s' if threads > 1 else ''})")
        ax.set_ylabel(label)
        ax.set_title(better, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{result['preset']} on {result['dataset']}, seed {result['seed']}: quality against CPU time")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper-mnist")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds per variant (default 600)")
    parser.add_argument("--points", type=int, default=5, help="scoring points along the budget (default 5)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="train.seed of both variants (default 0)")
    parser.add_argument("--parzen-samples", type=int, default=5000)
    parser.add_argument("--parzen-points", type=int, default=2000, help="valid and test points for Parzen")
    parser.add_argument("--feature-samples", type=int, default=2000, help="samples for the feature metrics")
    parser.add_argument("--no-features", action="store_true", help="Parzen only (no classifier)")
    parser.add_argument("--out", default="time_to_quality.png", help="the PNG of quality against seconds")
    parser.add_argument("--replot", metavar="JSON", help="only redraw the PNG (--out) from this benchmark's JSON")
    args = parser.parse_args()
    if args.replot:
        with open(args.replot) as f:
            plot(json.load(f), args.out)
        return
    torch.set_num_threads(args.threads)
    config = make_config(args.preset, {"data.dataset": args.dataset, "train.device": "cpu", "train.epochs": 10**6,
                                       "train.tensorboard": False, "train.seed": args.seed})
    train, valid, test = (load_data_split(config.data, s) for s in ("train", "valid", "test"))
    splits = {"train": train.images, "train_labels": train.labels, "valid": valid.images, "test": test.images}
    classifier = None
    if not args.no_features and train.labels is not None:
        from advnets.eval.classifier import load_or_train_classifier

        classifier = load_or_train_classifier(config.data)
    variants = [Variant("advnets", config, True, splits), Variant("autograd port", config, False, splits)]
    for k in range(args.points):
        for v in variants:
            v.train_until(args.budget * (k + 1) / args.points)
            v.points.append({"seconds": round(v.spent, 1), "steps": v.trainer.g_updates,
                             **score(v.trainer, splits, classifier, args)})
            print(f"{v.name}: {v.points[-1]}", file=sys.stderr, flush=True)
    runs = {v.name: {"points": v.points} for v in variants}
    floor = None
    for run in runs.values():
        for p in run["points"]:
            floor = p.pop("_floor", floor)
    result = {"benchmark": "time_to_quality", "preset": args.preset, "dataset": args.dataset,
              "budget_seconds": args.budget, "threads": args.threads, "seed": args.seed, "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(),
              "parzen": {"samples": args.parzen_samples, "valid": args.parzen_points, "test": args.parzen_points},
              "runs": runs, "floor": floor, "png": args.out}
    plot(result, args.out)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
