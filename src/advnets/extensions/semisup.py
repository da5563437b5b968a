"""Semi-supervised learning with D's features (paper section 7, item 4): a linear classifier (multinomial logistic
regression) on the hidden maxout activations of a trained D, from few labels, next to (a) the same classifier on
raw pixels and (b) a network of D's architecture plus a linear head trained from scratch on the same labels."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import DataError
from ..models import MaxoutDiscriminator
from . import check_images, run_arguments, write_json

LABEL_COUNTS = (100, 600, 1000)


def stratified_labels(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Indices of `count` examples, as equal a share of each class as possible (the remainder to the first
    classes), drawn with a fixed seed."""
    classes = np.unique(labels)
    if count > len(labels):
        raise DataError(f"asked for {count} labels but the training split has only {len(labels)} examples",
                        "use fewer labels")
    rng = np.random.default_rng(seed)
    share, extra = divmod(count, len(classes))
    picked = []
    for i, c in enumerate(classes):
        idx = np.flatnonzero(labels == c)
        picked.append(rng.choice(idx, size=min(len(idx), share + (i < extra)), replace=False))
    return rng.permutation(np.concatenate(picked))


@torch.no_grad()
def d_features(discriminator: MaxoutDiscriminator, images: np.ndarray | torch.Tensor,
               batch_size: int = 1000) -> torch.Tensor:
    """All of D's hidden maxout activations, no dropout, concatenated: (N, sum(units))."""
    device = next(discriminator.parameters()).device
    x = torch.as_tensor(images).float()
    out = [torch.cat(discriminator.features(x[i:i + batch_size].to(device)), 1).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out)


def fit_linear(features: torch.Tensor, labels: torch.Tensor, n_classes: int, l2: float = 1e-3,
               iterations: int = 200) -> tuple[torch.Tensor, torch.Tensor, nn.Linear]:
    """Multinomial logistic regression on standardised features, L-BFGS on the full labelled set with an L2
    penalty `l2` * ||W||^2. Returns the standardisation (mean, std) and the linear map."""
    mean, std = features.mean(0), features.std(0).clamp_min(1e-3)
    x = (features - mean) / std
    head = nn.Linear(x.shape[1], n_classes)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(head(x), labels) + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return mean, std, head


@torch.no_grad()
def linear_accuracy(fit, features: torch.Tensor, labels: torch.Tensor) -> float:
    mean, std, head = fit
    return (head((features - mean) / std).argmax(1) == labels).float().mean().item()


class ScratchClassifier(nn.Module):
    """D's hidden layers (maxout, same widths, pieces and init) and a linear head over all their activations."""

    def __init__(self, d: MaxoutDiscriminator, n_classes: int, init_range: float):
        super().__init__()
        self.body = MaxoutDiscriminator(d.image_shape, d.units, d.pieces, init_range)
        self.head = nn.Linear(sum(d.units), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat(self.body.features(x), 1))


def fit_scratch(d: MaxoutDiscriminator, images: torch.Tensor, labels: torch.Tensor, n_classes: int,
                init_range: float, epochs: int = 100, batch_size: int = 100, lr: float = 1e-3,
                seed: int = 0) -> ScratchClassifier:
    """Train ScratchClassifier end to end from random init: Adam, a fixed `epochs` over the labelled set, no
    early stopping, no dropout."""
    torch.manual_seed(seed)
    net = ScratchClassifier(d, n_classes, init_range)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=g)
        for i in range(0, len(images), batch_size):
            b = order[i:i + batch_size]
            loss = nn.functional.cross_entropy(net(images[b]), labels[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


def semisup_report(run, train, test, counts=LABEL_COUNTS, seed: int = 0, scratch_epochs: int = 100) -> dict:
    """Test accuracy for each label count: linear on D's features, linear on pixels, D's architecture from
    scratch. `train` and `test` are Splits with labels."""
    if train.labels is None or test.labels is None:
        raise DataError(f"dataset {run.config.data.dataset!r} has no labels",
                        "semi-supervised learning needs a labelled dataset (mnist, fashion-mnist, digits, ...)")
    d = run.discriminator.eval()
    n_classes = int(max(train.labels.max(), test.labels.max())) + 1
    test_x = torch.as_tensor(test.images).float()
    test_y = torch.as_tensor(test.labels).long()
    test_f = d_features(d, test_x)
    rows = []
    for count in counts:
        idx = stratified_labels(train.labels, count, seed)
        x = torch.as_tensor(train.images[idx]).float()
        y = torch.as_tensor(train.labels[idx]).long()
        t0 = time.time()
        feat = linear_accuracy(fit_linear(d_features(d, x), y, n_classes), test_f, test_y)
        pix = linear_accuracy(fit_linear(x.flatten(1), y, n_classes), test_x.flatten(1), test_y)
        net = fit_scratch(d.cpu(), x, y, n_classes, run.config.model.discriminator_init_range,
                          epochs=scratch_epochs, seed=seed)
        with torch.no_grad():
            scratch = (net(test_x).argmax(1) == test_y).float().mean().item()
        d.to(run.device)
        rows.append({"labels": len(idx), "d_features_linear": round(feat, 4), "pixels_linear": round(pix, 4),
                     "scratch_same_architecture": round(scratch, 4), "seconds": round(time.time() - t0, 1)})
    return {"n_classes": n_classes, "n_test": len(test_y), "feature_dim": int(test_f.shape[1]),
            "linear": "multinomial logistic regression on standardised inputs, L-BFGS, L2 1e-3",
            "scratch": f"D's maxout layers + linear head, D's init, Adam lr 1e-3, batch 100, "
                       f"fixed {scratch_epochs} epochs, no early stopping, no dropout",
            "results": rows}


def cmd_semisup(args: argparse.Namespace) -> int:
    from ..runs import load_run

    run = load_run(args.run, args.checkpoint, args.device)
    check_images(run)
    run_dir = Path(args.run)
    counts = tuple(int(c) for c in args.labels.split(","))
    train, test = run.load_split("train", args.data_dir, args.fold), run.load_split("test", args.data_dir, args.fold)
    n_test = len(test)
    if args.n_test and args.n_test < n_test:
        from ..data.sources import Split

        keep = np.sort(np.random.default_rng(args.seed).choice(n_test, args.n_test, replace=False))
        test = Split(test.images[keep], None if test.labels is None else test.labels[keep])
    report = semisup_report(run, train, test, counts, seed=args.seed, scratch_epochs=args.scratch_epochs)
    report = {"run": str(run_dir), "epoch": run.epoch, "step": run.step, "dataset": run.config.data.dataset,
              "seed": args.seed, "test_split_size": n_test,
              "test_subsample": f"{len(test)} of {n_test} test images, drawn with seed {args.seed}", **report}
    print(f"test accuracy on {report['test_subsample']} ({report['n_classes']} classes)")
    print(f"{'labels':>7} {'D features':>11} {'pixels':>8} {'scratch':>8}")
    for r in report["results"]:
        print(f"{r['labels']:>7} {r['d_features_linear']:>11.4f} {r['pixels_linear']:>8.4f} "
              f"{r['scratch_same_architecture']:>8.4f}")
    print(f"D features / pixels: {report['linear']}; scratch: {report['scratch']}")
    out = write_json(run_dir / "eval" / "semisup.json", report)
    print(f"wrote {out}")
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
