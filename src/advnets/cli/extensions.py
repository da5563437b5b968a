"""`advnets infer`, `advnets semisup` and `advnets figure inpaint`: the paper's section-7 uses of a trained run.
Each report is built by its module of extensions/; this module writes and prints it."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import AdvnetsError
from ..extensions.inference import describe_inferer, inference_report, inferer_checkpoint
from ..extensions.inpaint import MASKS, inpaint_report
from ..extensions.semisup import semisup_report
from ..figures.image_grid import save_png
from ..fileio import check_no_links, write_json
from ..limits import check_count, check_positive
from ..run.checkpoint import save_checkpoint
from ..run.layout import check_output
from ..run.loaded import load_run
from .common import ProgressBar, add_run_arguments, defaults, log, positive


def cmd_infer(args: argparse.Namespace) -> int:
    positive("--steps", args.steps)
    positive("--n", args.n)
    run_dir = Path(args.run)
    check_output(run_dir / "eval" / "infer.json")
    check_output(run_dir / "figures" / "infer.png")
    check_no_links(run_dir, run_dir / "checkpoints" / "inference.pt")
    run = load_run(args.run, args.checkpoint, args.device, average=not args.raw_generator)
    report, E, figure = inference_report(run, steps=args.steps, n=args.n, seed=args.seed, data_dir=args.data_dir,
                                         fold=args.fold, progress=ProgressBar("fitting E(x) ~ z"))
    save_checkpoint(run_dir / "checkpoints" / "inference.pt", inferer_checkpoint(run, E, args.steps, args.seed))
    save_png(figure, run_dir / "figures" / "infer.png")
    out = write_json(run_dir / "eval" / "infer.json", report)
    log.info(f"z error on fresh samples: {_mse(report['z_mse_fresh'])} per dimension (prior variance 1)")
    log.info(f"pixel MSE on {report['n_real']} valid images: G(E(x)) {_mse(report['pixel_mse_reconstruction'])}, "
             f"mean training image {_mse(report['pixel_mse_mean_training_image'])}, "
             f"random G(z) {_mse(report['pixel_mse_random_sample'])}")
    log.info(f"wrote {out}, {run_dir / 'figures' / 'infer.png'}, {run_dir / 'checkpoints' / 'inference.pt'}")
    return 0


def _mse(value: float | None) -> str:
    """An error of a report; null where it diverged to NaN."""
    return "n/a (diverged)" if value is None else f"{value:.4f}"


def add_infer_command(subparsers) -> argparse.ArgumentParser:
    """Register `advnets infer RUN`."""
    default = defaults(inference_report)
    p = subparsers.add_parser(
        "infer", help="fit an inference net E(x) ~ z for a trained G and report its errors",
        description=f"Fit E ({describe_inferer()}) on fresh pairs (G(z), z) with G frozen. Reports the "
                    "z error on fresh samples (vs the prior's variance 1) and the pixel error of G(E(x)) on valid "
                    "images (vs the mean training image and a random G(z)). Writes RUN/eval/infer.json, "
                    "RUN/figures/infer.png (real rows above their reconstructions), RUN/checkpoints/inference.pt.")
    add_run_arguments(p)
    p.add_argument("--steps", type=int, default=default["steps"], help="optimisation steps (default %(default)s)")
    p.add_argument("--n", type=int, default=default["n"], help="valid images to reconstruct (default %(default)s)")
    p.set_defaults(func=cmd_infer)
    return p


def cmd_inpaint(args: argparse.Namespace) -> int:
    for name in ("steps", "n", "restarts"):
        positive(f"--{name}", getattr(args, name))
    check_positive("--lr", args.lr)
    run_dir = Path(args.run)
    check_output(run_dir / "eval" / "inpaint.json")
    check_output(run_dir / "figures" / "inpaint.png")
    run = load_run(args.run, args.checkpoint, args.device, average=not args.raw_generator)
    report, figure = inpaint_report(run, mask=args.mask, n=args.n, steps=args.steps, restarts=args.restarts,
                                    lr=args.lr, seed=args.seed, data_dir=args.data_dir, fold=args.fold)
    png = save_png(figure, run_dir / "figures" / "inpaint.png")
    out = write_json(run_dir / "eval" / "inpaint.json", report)
    log.info(f"known pixels: MSE {_mse(report['known_mse_initial'])} at the best random start -> "
             f"{_mse(report['known_mse_final'])} after {args.steps} Adam steps")
    log.info(f"unknown pixels ({args.mask}): MSE {_mse(report['unknown_mse_completion'])} completed by G(z*), "
             f"{_mse(report['unknown_mse_mean_training_image'])} filled with the mean training image")
    log.info(f"wrote {png}, {out}")
    return 0


def add_inpaint_figure(figure_subparsers) -> argparse.ArgumentParser:
    """Register `inpaint` under `advnets figure`."""
    default = defaults(inpaint_report)
    p = figure_subparsers.add_parser(
        "inpaint", help="complete partly hidden images by optimising z against the known pixels",
        description="For n valid images with a mask of unknown pixels, optimise z (Adam, several random restarts, "
                    "the best kept by known-pixel error; uniform prior: z clamped to [-sqrt(3), sqrt(3)]) and fill "
                    "the unknown pixels with G(z*). Writes RUN/figures/inpaint.png (rows: masked inputs, "
                    "completions, originals) and RUN/eval/inpaint.json (MSE on the unknown pixels vs the mean "
                    "training image).")
    add_run_arguments(p)
    p.add_argument("--steps", type=int, default=default["steps"], help="optimisation steps (default %(default)s)")
    p.add_argument("--mask", choices=MASKS, default=default["mask"],
                   help="which pixels are unknown (default %(default)s)")
    p.add_argument("--n", type=int, default=default["n"], help="number of images (default %(default)s)")
    p.add_argument("--restarts", type=int, default=default["restarts"],
                   help="random starting z per image (default %(default)s)")
    p.add_argument("--lr", type=float, default=default["lr"], help="Adam learning rate on z (default %(default)s)")
    p.set_defaults(func=cmd_inpaint)
    return p


def cmd_semisup(args: argparse.Namespace) -> int:
    counts = _label_counts(args.labels)
    check_count("--n-test", args.n_test)
    check_count("--scratch-epochs", args.scratch_epochs, low=1)
    check_output(Path(args.run) / "eval" / "semisup.json")
    run = load_run(args.run, args.checkpoint, args.device, average=not args.raw_generator)
    report = semisup_report(run, counts=counts, n_test=args.n_test, scratch_epochs=args.scratch_epochs,
                            seed=args.seed, data_dir=args.data_dir, fold=args.fold)
    log.info(f"test accuracy on {report['test_subsample']} ({report['n_classes']} classes)")
    log.info(f"{'labels':>7} {'D features':>11} {'pixels':>8} {'scratch':>8}")
    for r in report["results"]:
        log.info(f"{r['labels']:>7} {r['d_features_linear']:>11.4f} {r['pixels_linear']:>8.4f} "
                 f"{r['scratch_same_architecture']:>8.4f}")
    log.info(f"D features / pixels: {report['linear']}; scratch: {report['scratch']}")
    out = write_json(Path(args.run) / "eval" / "semisup.json", report)
    log.info(f"wrote {out}")
    return 0


def _label_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(c) for c in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise AdvnetsError(f"--labels must be comma-separated whole numbers of at least 1, got '{text}'",
                           "e.g. --labels 100,600,1000")
    return counts


def add_semisup_command(subparsers) -> argparse.ArgumentParser:
    """Register `advnets semisup RUN`."""
    default = defaults(semisup_report)
    p = subparsers.add_parser(
        "semisup", help="few-label classification with a trained D's features, vs pixels and from scratch",
        description="Labels drawn stratified from the training split (fixed seed). For each label count, test "
                    "accuracy of a linear classifier on D's hidden maxout activations (all layers, no dropout), of "
                    "the same classifier on raw pixels, and of D's architecture + linear head trained from scratch "
                    "on the same labels (fixed epochs). Writes RUN/eval/semisup.json.")
    add_run_arguments(p)
    p.add_argument("--labels", default=",".join(map(str, default["counts"])),
                   help="comma-separated label counts (default %(default)s)")
    p.add_argument("--n-test", type=int, default=default["n_test"],
                   help="test images used, drawn with --seed (default %(default)s; 0 = all)")
    p.add_argument("--scratch-epochs", type=int, default=default["scratch_epochs"],
                   help="epochs of the from-scratch classifier (default %(default)s)")
    p.set_defaults(func=cmd_semisup)
    return p
