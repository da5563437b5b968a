"""Semi-supervised learning with D's features (paper section 7, item 4): a linear classifier (multinomial logistic
regression) on the hidden maxout activations of a trained D, from few labels, next to (a) the same classifier on
raw pixels and (b) a network of D's architecture plus a linear head trained from scratch on the same labels."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
from torch import nn

from ..data.split import Split
from ..errors import DataError
from ..eval.run_reports import held_out
from ..limits import check_count
from ..models import MaxoutDiscriminator
from . import check_images, sci

LABEL_COUNTS = (100, 600, 1000)   # labelled training examples, each count a row of the report
N_TEST = 2000                     # test images scored (0: all), drawn with the seed
SCRATCH_EPOCHS = 100              # epochs of the from-scratch classifier
L2 = 1e-3                         # the linear classifiers' L2 penalty
BATCH_SIZE = 100                  # the from-scratch classifier's minibatch ...
LR = 1e-3                         # ... and Adam learning rate


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


def fit_linear(features: torch.Tensor, labels: torch.Tensor, n_classes: int, l2: float = L2,
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
        body = dataclasses.replace(d.config, discriminator_init_range=init_range)   # D's layers, init in +-init_range
        self.body = MaxoutDiscriminator(body, d.image_shape)
        self.head = nn.Linear(sum(d.units), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat(self.body.features(x), 1))


def fit_scratch(d: MaxoutDiscriminator, images: torch.Tensor, labels: torch.Tensor, n_classes: int,
                init_range: float, epochs: int = SCRATCH_EPOCHS, batch_size: int = BATCH_SIZE, lr: float = LR,
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


def semisup_accuracies(run, train, test, counts=LABEL_COUNTS, seed: int = 0,
                       scratch_epochs: int = SCRATCH_EPOCHS) -> dict:
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
            "linear": f"multinomial logistic regression on standardised inputs, L-BFGS, L2 {sci(L2)}",
            "scratch": f"D's maxout layers + linear head, D's init, Adam lr {sci(LR)}, batch {BATCH_SIZE}, "
                       f"fixed {scratch_epochs} epochs, no early stopping, no dropout",
            "results": rows}


def semisup_report(run, *, counts=LABEL_COUNTS, n_test: int = N_TEST, scratch_epochs: int = SCRATCH_EPOCHS,
                   seed: int = 0, data_dir: str | None = None, fold: int | None = None) -> dict:
    """`advnets semisup`: `semisup_accuracies` on the run's train split and on `n_test` images of its test split
    drawn with `seed` (all of them when `n_test` is 0 or larger than the split). `data_dir` and `fold` replace the
    run's own. Returns the report (RUN/eval/semisup.json)."""
    for count in counts:
        check_count("counts", count, low=1)
    check_count("n_test", n_test)
    check_count("scratch_epochs", scratch_epochs, low=1)
    check_images(run)
    held = held_out(run, data_dir, fold)           # mnist-5k without the MNIST test files: its held-out digits
    train, test = run.load_split("train", data_dir, fold), held.test
    n_all = len(test)
    if n_test and n_test < n_all:
        keep = np.sort(np.random.default_rng(seed).choice(n_all, n_test, replace=False))
        test = Split(test.images[keep], None if test.labels is None else test.labels[keep])
    accuracies = semisup_accuracies(run, train, test, counts, seed=seed, scratch_epochs=scratch_epochs)
    return {"run": str(run.run_dir), "epoch": run.epoch, "step": run.step, "dataset": run.config.data.dataset,
            "seed": seed, "test_split": held.test_split, "test_split_size": n_all,
            "test_subsample": f"{len(test)} of {n_all} test images, drawn with seed {seed}", **accuracies}
