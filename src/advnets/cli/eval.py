"""`advnets eval`: the Parzen-window log-likelihood (Table 1), the memorisation check, class accuracy."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import AdvnetsError
from .common import ProgressBar, add_run_arguments, log, positive, run_split


def cmd_eval(args: argparse.Namespace) -> int:
    import warnings

    from ..eval.parzen import SigmaOnEdgeWarning, parzen_evaluate
    from ..fileio import write_json
    from ..run.loaded import load_run

    sigmas = _sigmas(args)
    for flag in ("n_samples", "sigma_num", "per_class"):
        positive("--" + flag.replace("_", "-"), getattr(args, flag))
    run = load_run(args.run, args.checkpoint, args.device, average=not args.raw_generator)
    out_dir = Path(args.run) / "eval"
    report = {"run": str(args.run), "epoch": run.epoch, "step": run.step, "dataset": run.config.data.dataset}
    if args.nearest:
        from ..eval.neighbours import memorisation_report

        train = run_split(run, "train", args)
        report["nearest"] = memorisation_report(run.sample(1000, seed=args.seed + 1), train,
                                                run_split(run, "valid", args)[:1000], device=run.device)
        n = report["nearest"]
        log.info(f"mean L2 distance to the nearest training example: samples {n['samples_mean_nn_distance']:.3f}, "
                 f"held-out images {n['held_out_mean_nn_distance']:.3f} (ratio {n['ratio']:.3f})")
    if args.class_accuracy:
        _class_accuracy(run, args, out_dir)
    if args.quality:
        _quality(run, args, out_dir)
    if args.coverage:
        _mixture_coverage(run, args, out_dir)
    if args.parzen or not (args.nearest or args.class_accuracy or args.quality or args.coverage):
        valid, test = run_split(run, "valid", args), run_split(run, "test", args)
        samples = run.sample(args.n_samples, seed=args.seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SigmaOnEdgeWarning)
            result = parzen_evaluate(samples, valid, test, sigmas, device=run.device)
        for w in caught:
            print(f"advnets: warning: {w.message}", file=sys.stderr)
        log.info(result.table_line(dataset=run.config.data.dataset))
        parzen = {k: v for k, v in report.items() if k != "nearest"} | result.to_dict()
        write_json(out_dir / "parzen.json", parzen)
        log.info(f"wrote {out_dir / 'parzen.json'}")
    if args.nearest:
        write_json(out_dir / "nearest.json", report)
    return 0


def _sigmas(args: argparse.Namespace):
    """The Parzen widths to try: --sigmas, else the log-spaced grid; positive finite numbers."""
    import math

    import numpy as np

    from ..eval.parzen import sigma_grid

    if args.sigmas:
        try:
            values = [float(v) for v in args.sigmas.split(",") if v.strip()]
        except ValueError:
            raise AdvnetsError(f"--sigmas must be comma-separated numbers, got '{args.sigmas}'",
                               "e.g. --sigmas 0.1,0.2,0.3") from None
    else:
        values = [args.sigma_low, args.sigma_high]
    if not values or not all(math.isfinite(v) and v > 0 for v in values) or (not args.sigmas and
                                                                             args.sigma_low > args.sigma_high):
        raise AdvnetsError(f"Parzen widths must be positive finite numbers (low <= high), got "
                           f"{args.sigmas or f'{args.sigma_low}..{args.sigma_high}'}")
    return np.array(values) if args.sigmas else sigma_grid(args.sigma_low, args.sigma_high, max(args.sigma_num, 1))


def _mixture_coverage(run, args: argparse.Namespace, out_dir: Path) -> dict:
    """Modes captured, high-quality fraction and reverse KL of a 2-D run (always together), written to
    RUN/eval/coverage.json."""

    from ..eval.mixture_runs import run_mixture_coverage
    from ..fileio import write_json

    _, cov = run_mixture_coverage(run, args.coverage_samples, args.seed)
    report = {"run": str(args.run), "epoch": run.epoch, "step": run.step, "pack": run.config.model.pack,
              "seed": args.seed, **cov}
    write_json(out_dir / "coverage.json", report)
    log.info(f"{cov['dataset']}: {cov['modes_captured']}/{cov['modes']} modes captured, {cov['high_quality']:.1%} high "
             f"quality (within 3 sigma = {3 * cov['sigma']:g} of a mean), reverse KL {cov['reverse_kl']:.4f} "
             f"({cov['n']} samples, step {run.step})")
    log.info(f"wrote {out_dir / 'coverage.json'}")
    return report


def _class_accuracy(run, args: argparse.Namespace, out_dir: Path) -> dict:
    """How often the package's classifier, trained on the real training split, recognises the class G was asked
    for; written to RUN/eval/class_accuracy.json."""

    from ..eval.classifier import class_accuracy
    from ..fileio import write_json
    from ..models import class_rows

    if not run.num_classes:
        raise AdvnetsError(f"{args.run} is not a conditional run: its samples have no intended class",
                           "train with --conditional, or drop --class-accuracy")
    d = run.config.data
    classifier = _classifier(run, args)
    if classifier.num_classes < run.num_classes:
        raise AdvnetsError(f"the run has {run.num_classes} classes but {d.dataset}'s labels only "
                           f"{classifier.num_classes}", "pass the --data-dir of the data the run was trained on")
    per_class = args.per_class
    labels = class_rows(run.num_classes, per_class)
    result = class_accuracy(classifier, run.sample(len(labels), seed=args.seed, labels=labels), labels.numpy())
    report = {"run": str(args.run), "epoch": run.epoch, "step": run.step, "dataset": d.dataset,
              "samples_per_class": per_class, "seed": args.seed,
              "classifier_held_out_accuracy": classifier.held_out_accuracy,
              "classifier_held_out_size": classifier.held_out_size, "classifier": classifier.info, **result}
    write_json(out_dir / "class_accuracy.json", report)
    worst = min(range(run.num_classes), key=lambda c: result["per_class"][c])
    log.info(f"the classifier recognises the intended class in {result['accuracy']:.1%} of {result['n']} conditional "
             f"samples (worst class {worst}: {result['per_class'][worst]:.1%}); on real held-out images it is right "
             f"{classifier.held_out_accuracy:.1%} of the time")
    log.info(f"wrote {out_dir / 'class_accuracy.json'}")
    return report


def _classifier(run, args: argparse.Namespace):
    """The real-data classifier of the run's dataset (with the command's --data-dir / --fold), cached by advnets;
    trained first when the cache has none; on the run's device (--device)."""
    import dataclasses

    from ..eval.classifier import load_or_train_classifier

    d = run.config.data
    data = dataclasses.replace(d, data_dir=args.data_dir or d.data_dir, fold=d.fold if args.fold is None else args.fold)
    return load_or_train_classifier(data, device=run.device, progress=ProgressBar("training the real-data classifier"))


def _quality(run, args: argparse.Namespace, out_dir: Path) -> dict:
    """Class coverage and sample-quality metrics on the real-data classifier's features, each beside its real-vs-real
    floor; written to RUN/eval/quality.json."""

    from ..eval.sample_report import sample_report
    from ..fileio import write_json

    d = run.config.data
    if d.dataset in ("toy1d", "grid", "ring"):
        raise AdvnetsError(f"--quality compares images through a classifier; {args.run} was trained on {d.dataset}",
                           "use --coverage for the 2-D mixtures")
    classifier = _classifier(run, args)
    train = run.load_split("train", args.data_dir, args.fold)
    valid, test = run_split(run, "valid", args), run_split(run, "test", args)
    report = {"run": str(args.run), "epoch": run.epoch, "step": run.step, "dataset": d.dataset, "seed": args.seed,
              **sample_report(run.sample(args.n_samples, seed=args.seed).numpy(), classifier, valid, test,
                              train.labels, seed=args.seed)}
    write_json(out_dir / "quality.json", report)
    q, c = report["quality"], report["class_coverage"]
    log.info(f"{'':24}{'samples':>12}{'real (test vs valid)':>24}")
    log.info(f"{'classes captured':24}{c['classes_captured']:>12}{c['floor']['classes_captured']:>24}   "
             f"(of {len(c['histogram'])})")
    log.info(f"{'class KL to the data':24}{_fmt(c['kl']):>12}{_fmt(c['floor']['kl']):>24}")
    for key, name in (("fd", "Frechet distance"), ("kid", "KID"), ("precision", "precision (k=3)"),
                      ("recall", "recall (k=3)"), ("density", "density (k=5)"), ("coverage", "coverage (k=5)")):
        log.info(f"{name:24}{_fmt(q[key]):>12}{_fmt(q['floor'][key]):>24}")
    log.info(f"features: the classifier's penultimate layer (held-out accuracy {classifier.held_out_accuracy:.1%}); "
             f"wrote {out_dir / 'quality.json'}")
    return report


def _fmt(value) -> str:
    return value if isinstance(value, str) else f"{value:.4g}"


def add_eval_command(sub) -> None:
    p = sub.add_parser("eval", help="Parzen-window log-likelihood (Table 1) and a memorisation check",
                       description="Parzen-window estimate of the test log-likelihood (docs/design.md §2): N samples "
                                   "from G, sigma chosen on the validation split, mean and standard error on the "
                                   "test split. Prints a Table-1 line and writes RUN/eval/parzen.json.")
    add_run_arguments(p)
    p.add_argument("--parzen", action="store_true", help="Parzen log-likelihood (the default)")
    p.add_argument("--nearest", action="store_true",
                   help="mean distance to the nearest training example, of samples vs held-out images")
    p.add_argument("--class-accuracy", action="store_true",
                   help="conditional runs: how often a classifier trained on the real data (by advnets, cached) "
                        "recognises the class each sample was drawn for")
    p.add_argument("--quality", action="store_true",
                   help="image runs: class coverage (classes captured, KL to the data's class frequencies) and Frechet "
                        "distance, KID, precision/recall, density/coverage on the features of a classifier trained "
                        "on the real data (by advnets, cached), each beside real test-vs-valid images")
    p.add_argument("--coverage", action="store_true",
                   help="2-D runs (grid, ring): modes captured, high-quality fraction and reverse KL (VEEGAN, "
                        "PacGAN), written to RUN/eval/coverage.json")
    p.add_argument("--coverage-samples", type=int, default=2500, help="--coverage: samples (default 2500)")
    p.add_argument("--per-class", type=int, default=1000, help="--class-accuracy: samples per class (default 1000)")
    p.add_argument("--n-samples", type=int, default=10000, help="samples drawn from G (default 10000)")
    p.add_argument("--sigmas", help="comma-separated sigma values (default: the grid below)")
    p.add_argument("--sigma-low", type=float, default=0.1, help="grid start (default 0.1)")
    p.add_argument("--sigma-high", type=float, default=1.0, help="grid end (default 1.0)")
    p.add_argument("--sigma-num", type=int, default=10, help="log-spaced grid size (default 10)")
    p.set_defaults(func=cmd_eval)
