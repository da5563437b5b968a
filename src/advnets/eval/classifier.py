"""A small CNN trained on the real training split, to check that class-conditional samples show their class.

A conditional G (paper section 7) is asked for class c; this classifier, trained by the package on the run's real
training images and labels (never on samples), says which class each sample looks like. Its accuracy on the
dataset's held-out valid split is measured and kept beside it, so a reader knows how far to trust it. Training is
deterministic given the seed (and the device: a GPU's kernels round differently) and is cached under
<cache>/classifiers/<key>.pt, the key a hash of the recipe, the seed, the data config fields that change the images,
the bytes of the train and valid splits and the device type other than cpu. It trains and runs on the device it is
given (the run's, or `advnets eval --device`); only its numpy results come back to the host.

Recipe: two 5x5 convolutions (32, 64 channels, ReLU, 2x2 max-pool), a 128-unit ReLU layer with dropout 0.5, a linear
layer; inputs standardised by the training mean and std; random shifts of up to 1 pixel; Adam, lr 1e-3 decayed
linearly to 0 over 2,000 updates of 64 images (at least 5 epochs). A CNN because an MLP (784-512-512-10) made
more than twice its errors on MNIST; shifts because they help the small MNIST set and cost Fashion-MNIST little. The
accuracy and training time on each dataset, and the comparisons behind these choices: docs/performance.md.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..data import default_cache_dir, load_data_split
from ..data.stacked import source_config
from ..errors import DataError
from ..fileio import atomic_open
from .stacked_coverage import StackedClassifier

RECIPE_VERSION = "cnn-v1"  # bump when training or architecture changes: old cache files are then ignored


class ClassifierCacheWarning(UserWarning):
    """A cached classifier file could not be used (damaged or from another recipe); it is retrained."""


@dataclass(frozen=True)
class Recipe:
    """Architecture and training hyperparameters; all of them are part of the cache key."""

    channels: tuple[int, ...] = (32, 64)  # one 5x5 conv + ReLU + 2x2 max-pool per entry
    kernel: int = 5
    hidden: int = 128                     # dense ReLU layer after the convolutions
    dropout: float = 0.5                  # on the dense layer's output
    shift: int = 1                        # random translations of up to this many pixels (0: none)
    steps: int = 2000                     # Adam updates, whatever the dataset's size ...
    min_epochs: int = 5                   # ... but at least this many passes over the data
    batch_size: int = 64
    lr: float = 1e-3


class SmallCNN(nn.Module):
    """Convolutions with 'same' padding, each followed by 2x2 max-pooling (skipped once a side is 1: any image
    shape works, down to 1x1), then two dense layers."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, recipe: Recipe = Recipe()):
        super().__init__()
        c, h, w = image_shape
        layers: list[nn.Module] = []
        for out in recipe.channels:
            layers += [nn.Conv2d(c, out, recipe.kernel, padding=recipe.kernel // 2), nn.ReLU()]
            if min(h, w) >= 2:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
                h, w = -(-h // 2), -(-w // 2)
            c = out
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c * h * w, recipe.hidden), nn.ReLU(), nn.Dropout(recipe.dropout),
                                  nn.Linear(recipe.hidden, num_classes))
        self.register_buffer("mean", torch.zeros(()))  # input standardisation, set from the training images
        self.register_buffer("std", torch.ones(()))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The dense ReLU layer's output (dropout applies in train mode only): (B, C, H, W) -> (B, recipe.hidden)."""
        return self.head[:-1](self.features((x - self.mean) / self.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head[-1](self.embed(x))                           # (B, C, H, W) -> (B, num_classes) logits


@dataclass
class Classifier:
    """A trained classifier, its held-out accuracy, and how it was made (`info`)."""

    net: nn.Module  # in eval mode, on `device`
    image_shape: tuple[int, int, int]
    num_classes: int
    held_out_accuracy: float  # on the dataset's valid split
    held_out_size: int
    info: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.net.mean.device

    @torch.no_grad()
    def _batched(self, fn, images, batch_size: int, width: int) -> np.ndarray:
        """fn of `images` on the classifier's device, `batch_size` at a time (a numpy array or a tensor on any
        device; each block is copied to the device as it is needed), as a numpy array."""
        x = torch.as_tensor(images)
        x = x.reshape(len(x), *self.image_shape)
        self.net.eval()
        out = [fn(x[i:i + batch_size].to(self.device, torch.float32)) for i in range(0, len(x), batch_size)]
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, width), np.float32)

    def probabilities(self, images, batch_size: int = 1000) -> np.ndarray:
        """Softmax class probabilities, (N, num_classes) float32. `images`: (N, C, H, W) or (N, C*H*W), numpy or
        torch, in the same range as the training data."""
        return self._batched(lambda b: torch.softmax(self.net(b), 1), images, batch_size, self.num_classes)

    def features(self, images, batch_size: int = 1000) -> np.ndarray:
        """Penultimate-layer features, (N, hidden) float32 (hidden = 128 in the default recipe): the space in which
        `advnets.eval.feature_metrics` compares samples with real images. Same `images` as `probabilities`."""
        return self._batched(self.net.embed, images, batch_size, self.net.head[-1].in_features)

    def predict(self, images, batch_size: int = 1000) -> np.ndarray:
        """The most likely class of each image, (N,) int64."""
        return self.probabilities(images, batch_size).argmax(1).astype(np.int64)


def describe(recipe: Recipe, num_classes: int) -> str:
    """The architecture in one line, e.g. conv5x5(32)-pool-conv5x5(64)-pool-dense(128)-dropout(0.5)-linear(10)."""
    convs = "".join(f"conv{recipe.kernel}x{recipe.kernel}({c})-pool-" for c in recipe.channels)
    return f"{convs}dense({recipe.hidden})-dropout({recipe.dropout})-linear({num_classes})"


def _shifted(x: torch.Tensor, shift: int, g: torch.Generator) -> torch.Tensor:
    """Each image translated by its own random (dy, dx) in [-shift, shift]^2, borders replicated. The shifts are
    drawn from `g` (on the CPU: the same shifts on any device) and applied on x's device."""
    b, _, h, w = x.shape
    padded = nn.functional.pad(x, (shift,) * 4, mode="replicate")        # (B, C, H+2s, W+2s)
    dy, dx = torch.randint(0, 2 * shift + 1, (2, b, 1), generator=g).to(x.device)
    rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]     # (B, 1, H, 1)
    cols = (dx + torch.arange(w, device=x.device))[:, None, None, :]     # (B, 1, 1, W)
    return padded[torch.arange(b, device=x.device)[:, None, None, None],
                  torch.arange(x.shape[1], device=x.device)[None, :, None, None], rows, cols]


def train_classifier(train_images, train_labels, valid_images, valid_labels, *, seed: int = 0,
                     epochs: int | None = None, recipe: Recipe = Recipe(), device: torch.device | str | None = None,
                     progress: Callable[[int, int, str], None] | None = None) -> Classifier:
    """Train `SmallCNN` on (train_images, train_labels) and measure its accuracy on the valid pair.

    `epochs` (default: enough for `recipe.steps` updates, at least `recipe.min_epochs`) passes of minibatch Adam
    minimising the cross-entropy; the learning rate falls linearly to 0. Deterministic given `seed`: init and
    dropout draw from a forked, seeded global RNG (the caller's RNG state is untouched), order and shifts from a
    seeded CPU `torch.Generator`. Trains on `device` (default: the CPU), where the images are copied once."""
    device = torch.device(device or "cpu")
    x = torch.as_tensor(train_images).to(device, torch.float32)          # (N, C, H, W)
    y = torch.as_tensor(train_labels).to(device, torch.int64)            # (N,)
    if x.ndim != 4 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"expected (N, C, H, W) images and (N,) labels, got {tuple(x.shape)} and {tuple(y.shape)}")
    image_shape = tuple(int(s) for s in x.shape[1:])
    num_classes = int(max(y.max().item(), np.max(valid_labels, initial=0))) + 1
    steps_per_epoch = -(-len(x) // recipe.batch_size)
    epochs = epochs if epochs is not None else max(recipe.min_epochs, -(-recipe.steps // steps_per_epoch))
    total = epochs * steps_per_epoch
    t0 = time.perf_counter()
    gpu = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=gpu):
        torch.manual_seed(seed)                          # the CPU's stream (init) and the GPU's (dropout masks)
        net = SmallCNN(image_shape, num_classes, recipe).to(device)
        net.mean.fill_(x.mean().item())
        net.std.fill_(max(x.std().item(), 1e-6))
        g = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 - t / total)
        net.train()
        if progress is not None:                                       # a caller can say what starts now
            progress(0, total, "")
        for epoch in range(epochs):
            order = torch.randperm(len(x), generator=g).to(device)
            for i in range(0, len(x), recipe.batch_size):
                b = order[i:i + recipe.batch_size]
                xb = _shifted(x[b], recipe.shift, g) if recipe.shift else x[b]
                loss = nn.functional.cross_entropy(net(xb), y[b])     # minimise -log p(y | x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            if progress is not None:                                   # (updates done, total, note)
                progress((epoch + 1) * steps_per_epoch, total, f"loss {loss.item():.4f}")
    seconds = time.perf_counter() - t0
    clf = Classifier(net.eval(), image_shape, num_classes, 0.0, len(valid_labels))
    clf.held_out_accuracy = class_accuracy(clf, valid_images, valid_labels)["accuracy"]
    clf.info = {"architecture": describe(recipe, num_classes), "recipe": asdict(recipe),
                "recipe_version": RECIPE_VERSION, "epochs": epochs, "updates": total, "seed": seed,
                "train_size": len(x), "train_seconds": round(seconds, 2), "device": str(device), "source": "trained"}
    return clf


def class_accuracy(classifier: Classifier, images, intended_labels) -> dict:
    """How often the classifier sees the intended class: overall, per intended class, and the confusion matrix
    (rows: intended class, columns: predicted class)."""
    intended = np.asarray(intended_labels, dtype=np.int64)
    predicted = classifier.predict(images)
    k = classifier.num_classes
    if len(intended) != len(predicted) or intended.size and not 0 <= intended.min() <= intended.max() < k:
        raise ValueError(f"expected {len(predicted)} intended labels in 0..{k - 1}, got {len(intended)}")
    confusion = np.bincount(intended * k + predicted, minlength=k * k).reshape(k, k)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
    return {"accuracy": float((predicted == intended).mean()) if len(intended) else float("nan"),
            "per_class": [float(a) for a in per_class], "n": int(len(intended)), "confusion": confusion.tolist()}


def _sha256(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def cache_key(data_config, train, valid, seed: int, recipe: Recipe = Recipe(), device_type: str = "cpu") -> str:
    """Hash of everything that changes the trained classifier or its held-out accuracy."""
    d = data_config
    parts = {"version": RECIPE_VERSION, "recipe": asdict(recipe), "seed": seed, "dataset": d.dataset,
             "fold": d.fold, "image_size": d.image_size, "channels": d.channels,
             "contrast_normalize": d.contrast_normalize, "train": _sha256(train.images, train.labels),
             "valid": _sha256(valid.images, valid.labels)}
    if device_type != "cpu":                 # a GPU trains another classifier (CPU keys are as before)
        parts["device"] = device_type
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _load(path: Path, key: str, device: torch.device) -> Classifier:
    state = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(state, dict) or state.get("key") != key:
        raise ValueError("it belongs to another dataset or recipe")
    recipe = Recipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["recipe"].items()})
    net = SmallCNN(tuple(state["image_shape"]), state["num_classes"], recipe)
    net.load_state_dict(state["net"])
    net.to(device)
    info = {**state["info"], "source": "loaded"}
    return Classifier(net.eval(), tuple(state["image_shape"]), state["num_classes"],
                      state["held_out_accuracy"], state["held_out_size"], info)


def load_or_train_classifier(data_config, *, cache_dir: str | Path | None = None, seed: int = 0,
                             recipe: Recipe = Recipe(), device: torch.device | str | None = None,
                             progress: Callable[[int, int, str], None] | None = None) -> Classifier | StackedClassifier:
    """The classifier for `data_config`'s dataset on `device` (default: the CPU): loaded from the cache, else
    trained there on its train split, checked on its valid split and saved. A damaged or foreign cache file gives
    a `ClassifierCacheWarning` and is replaced. stacked-mnist: a `StackedClassifier` reading each channel with the
    classifier of its source digits (data.stack_source), the one a run on that source uses (the same cache file)."""
    if data_config.dataset == "stacked-mnist":
        return StackedClassifier(load_or_train_classifier(source_config(data_config), cache_dir=cache_dir, seed=seed,
                                                          recipe=recipe, device=device, progress=progress))
    train, valid = load_data_split(data_config, "train"), load_data_split(data_config, "valid")
    if train.labels is None or valid.labels is None:
        raise DataError(f"dataset {data_config.dataset!r} has no labels, so no classifier can be trained on it",
                        "class accuracy needs a labelled dataset (mnist, fashion-mnist, mnist-5k, digits, cifar10)")
    device = torch.device(device or "cpu")
    key = cache_key(data_config, train, valid, seed, recipe, device.type)
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()).expanduser() / "classifiers" / f"{key}.pt"
    if path.exists():
        try:
            clf = _load(path, key, device)
            clf.info["cache_path"] = str(path)
            return clf
        except Exception as e:  # a damaged file: any of pickle, zip, key or shape errors
            why = " ".join(str(e).split())[:200]  # one line, whatever the unpickler said
            warnings.warn(f"cannot use the cached classifier {path} ({type(e).__name__}: {why}); training a new one",
                          ClassifierCacheWarning, stacklevel=2)
    clf = train_classifier(train.images, train.labels, valid.images, valid.labels, seed=seed, recipe=recipe,
                           device=device, progress=progress)
    clf.info.update(dataset=data_config.dataset, cache_path=str(path))
    state = {"key": key, "recipe": asdict(recipe), "image_shape": list(clf.image_shape),
             "num_classes": clf.num_classes, "held_out_accuracy": clf.held_out_accuracy,
             "held_out_size": clf.held_out_size, "info": clf.info,
             "net": {k: v.cpu() for k, v in clf.net.state_dict().items()}}
    with atomic_open(path, "wb") as f:  # a temporary file, renamed when whole
        torch.save(state, f)
    return clf
