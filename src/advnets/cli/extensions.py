"""`advnets infer`, `advnets semisup` and `advnets figure inpaint`: the paper's section-7 uses of a trained run
(extensions/)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from ..extensions import check_images
from ..extensions.inference import fit_inferer, inference_figure, inference_report
from ..extensions.inpaint import MASKS, inpaint, inpaint_figure, inpaint_report, make_mask
from ..extensions.semisup import LABEL_COUNTS, semisup_report
from ..fileio import write_json
from ..figures.image_grid import save_png
from ..run.checkpoint import save_checkpoint
from .common import ProgressBar, add_run_arguments, log, positive


def run_arguments(p: argparse.ArgumentParser, steps: int | None = None) -> None:
    add_run_arguments(p)
    if steps is not None:
        p.add_argument("--steps", type=int, default=steps, help=f"optimisation steps (default {steps})")


def cmd_infer(args: argparse.Namespace) -> int:
    from ..run.loaded import load_run

    positive("--steps", args.steps)
    positive("--n", args.n)
    run = load_run(args.run, args.checkpoint, args.device, average=not args.raw_generator)
    check_images(run)
    run_dir = Path(args.run)
    t0 = time.time()
    E, history = fit_inferer(run, steps=args.steps, seed=args.seed, progress=ProgressBar("fitting E(x) ~ z"))
    fit_s = time.time() - t0
    train_mean = run.load_split("train", args.data_dir, args.fold).images.mean(0)
    real = run.load_split("valid", args.data_dir, args.fold).images[:args.n]
    report, recon = inference_report(run, E, real, train_mean, seed=args.seed)
    report = {"run": str(run_dir), "epoch": run.epoch, "step": run.step, "dataset": run.config.data.dataset,
              "real_split": "valid", "inferer": "MLP d-1200-1200-noise_dim ReLU, MSE, Adam lr 1e-3, batch 100",
              "steps": args.steps, "seed": args.seed, "fit_seconds": round(fit_s, 1),
              "train_loss_every_100_steps": history, **report}
    save_checkpoint(run_dir / "checkpoints" / "inference.pt",
                    {"inferer": E.state_dict(), "noise_dim": run.config.model.noise_dim,
                     "hidden": [1200, 1200], "steps": args.steps, "seed": args.seed})
    save_png(inference_figure(real, recon), run_dir / "figures" / "infer.png")
    out = write_json(run_dir / "eval" / "infer.json", report)
    log.info(f"z error on fresh samples: {report['z_mse_fresh']:.4f} per dimension (prior variance 1)")
    log.info(f"pixel MSE on {report['n_real']} valid images: G(E(x)) {report['pixel_mse_reconstruction']:.4f}, "
             f"mean training image {report['pixel_mse_mean_training_image']:.4f}, "
             f"random G(z) {report['pixel_mse_random_sample']:.4f}")
    log.info(f"wrote {out}, {run_dir / 'figures' / 'infer.png'}, {run_dir / 'checkpoints' / 'inference.pt'}")
    return 0


def add_infer_command(subparsers) -> argparse.ArgumentParser:
    """Register `advnets infer RUN`."""
    p = subparsers.add_parser(
        "infer", help="fit an inference net E(x) ~ z for a trained G and report its errors",
        description="Fit E (MLP d-1200-1200-noise_dim) on fresh pairs (G(z), z) with G frozen. Reports the z error "
                    "on fresh samples (vs the prior's variance 1) and the pixel error of G(E(x)) on valid images "
                    "(vs the mean training image and a random G(z)). Writes RUN/eval/infer.json, "
                    "RUN/figures/infer.png (real rows above their reconstructions), RUN/checkpoints/inference.pt.")
    run_arguments(p, steps=2000)
    p.add_argument("--n", type=int, default=1000, help="valid images to reconstruct (default 1000)")
    p.set_defaults(func=cmd_infer)
    return p


def cmd_inpaint(args: argparse.Namespace) -> int:
    from ..run.loaded import load_run

    for name in ("steps", "n", "restarts"):
        positive(f"--{name}", getattr(args, name))
    run = load_run(args.run, args.checkpoint, args.device, average=not args.raw_generator)
    check_images(run)
    run_dir = Path(args.run)
    target = torch.as_tensor(run.load_split("valid", args.data_dir, args.fold).images[:args.n]).float()
    mask = make_mask(args.mask, len(target), run.image_shape, seed=args.seed)
    result = inpaint(run, target, mask, steps=args.steps, restarts=args.restarts, lr=args.lr, seed=args.seed)
    train_mean = run.load_split("train", args.data_dir, args.fold).images.mean(0)
    report = {"run": str(run_dir), "epoch": run.epoch, "step": run.step, "dataset": run.config.data.dataset,
              "split": "valid", "n": len(target), "mask": args.mask, "steps": args.steps,
              "restarts": args.restarts, "lr": args.lr, "seed": args.seed,
              "known_mse_initial": round(result["initial_error"].mean().item(), 5),
              "known_mse_final": round(result["final_error"].mean().item(), 5),
              **inpaint_report(target, mask, result["completion"], train_mean)}
    png = save_png(inpaint_figure(target, mask, result["completion"]), run_dir / "figures" / "inpaint.png")
    out = write_json(run_dir / "eval" / "inpaint.json", report)
    log.info(f"known pixels: MSE {report['known_mse_initial']:.4f} at the best random start -> "
             f"{report['known_mse_final']:.4f} after {args.steps} Adam steps")
    log.info(f"unknown pixels ({args.mask}): MSE {report['unknown_mse_completion']:.4f} completed by G(z*), "
             f"{report['unknown_mse_mean_training_image']:.4f} filled with the mean training image")
    log.info(f"wrote {png}, {out}")
    return 0


def add_inpaint_figure(figure_subparsers) -> argparse.ArgumentParser:
    """Register `inpaint` under `advnets figure`."""
    p = figure_subparsers.add_parser(
        "inpaint", help="complete partly hidden images by optimising z against the known pixels",
        description="For n valid images with a mask of unknown pixels, optimise z (Adam, several random restarts, "
                    "the best kept by known-pixel error; uniform prior: z clamped to [-sqrt(3), sqrt(3)]) and fill "
                    "the unknown pixels with G(z*). Writes RUN/figures/inpaint.png (rows: masked inputs, "
                    "completions, originals) and RUN/eval/inpaint.json (MSE on the unknown pixels vs the mean "
                    "training image).")
    run_arguments(p, steps=300)
    p.add_argument("--mask", choices=MASKS, default="right-half", help="which pixels are unknown (default right-half)")
    p.add_argument("--n", type=int, default=8, help="number of images (default 8)")
    p.add_argument("--restarts", type=int, default=8, help="random starting z per image (default 8)")
    p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate on z (default 0.05)")
    p.set_defaults(func=cmd_inpaint)
    return p


def cmd_semisup(args: argparse.Namespace) -> int:
    from ..run.loaded import load_run

    run = load_run(args.run, args.checkpoint, args.device, average=not args.raw_generator)
    check_images(run)
    run_dir = Path(args.run)
    counts = tuple(int(c) for c in args.labels.split(","))
    train, test = run.load_split("train", args.data_dir, args.fold), run.load_split("test", args.data_dir, args.fold)
    n_test = len(test)
    if args.n_test and args.n_test < n_test:
        from ..data.split import Split

        keep = np.sort(np.random.default_rng(args.seed).choice(n_test, args.n_test, replace=False))
        test = Split(test.images[keep], None if test.labels is None else test.labels[keep])
    report = semisup_report(run, train, test, counts, seed=args.seed, scratch_epochs=args.scratch_epochs)
    report = {"run": str(run_dir), "epoch": run.epoch, "step": run.step, "dataset": run.config.data.dataset,
              "seed": args.seed, "test_split_size": n_test,
              "test_subsample": f"{len(test)} of {n_test} test images, drawn with seed {args.seed}", **report}
    log.info(f"test accuracy on {report['test_subsample']} ({report['n_classes']} classes)")
    log.info(f"{'labels':>7} {'D features':>11} {'pixels':>8} {'scratch':>8}")
    for r in report["results"]:
        log.info(f"{r['labels']:>7} {r['d_features_linear']:>11.4f} {r['pixels_linear']:>8.4f} "
                 f"{r['scratch_same_architecture']:>8.4f}")
    log.info(f"D features / pixels: {report['linear']}; scratch: {report['scratch']}")
    out = write_json(run_dir / "eval" / "semisup.json", report)
    log.info(f"wrote {out}")
    return 0


def add_semisup_command(subparsers) -> argparse.ArgumentParser:
    """Register `advnets semisup RUN`."""
    p = subparsers.add_parser(
        "semisup", help="few-label classification with a trained D's features, vs pixels and from scratch",
        description="Labels drawn stratified from the training split (fixed seed). For each label count, test "
                    "accuracy of a linear classifier on D's hidden maxout activations (all layers, no dropout), of "
                    "the same classifier on raw pixels, and of D's architecture + linear head trained from scratch "
                    "on the same labels (fixed epochs). Writes RUN/eval/semisup.json.")
    run_arguments(p)
    p.add_argument("--labels", default=",".join(map(str, LABEL_COUNTS)),
                   help="comma-separated label counts (default 100,600,1000)")
    p.add_argument("--n-test", type=int, default=2000,
                   help="test images used, drawn with --seed (default 2000; 0 = all)")
    p.add_argument("--scratch-epochs", type=int, default=100,
                   help="epochs of the from-scratch classifier (default 100)")
    p.set_defaults(func=cmd_semisup)
    return p
