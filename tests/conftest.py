"""Shared fixtures: tiny configs and real small data, so that tests run in seconds on 2 cores."""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from advnets.config import DataConfig
from advnets.eval.classifier import Recipe, load_or_train_classifier
from advnets.threads import torch_threads

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """A uint8 array as a gzipped IDX file, as MNIST's files are: magic 0 0 8 NDIM, each dimension as a big-endian
    uint32, then the bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + np.ascontiguousarray(array, np.uint8).tobytes(), 1))


@pytest.fixture(autouse=True)
def _one_thread():
    # Tests use tiny tensors: one thread avoids OpenMP barrier costs and keeps results identical run to run.
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def digits_images() -> np.ndarray:
    """The 8x8 scikit-learn digits (real data, offline), (N, 1, 8, 8) in [0, 1]."""
    from advnets.data import load_split

    return load_split("digits", "train").images


@pytest.fixture(scope="session")
def _digits_classifier_dir(tmp_path_factory) -> Path:
    """The classifiers/ folder of a data cache holding the package's digits classifier (eval/classifier.py, its
    default recipe), trained once per test session (about 20 s on one thread) for the tests that need it."""
    cache = tmp_path_factory.mktemp("classifier-cache")
    load_or_train_classifier(DataConfig(dataset="digits"), cache_dir=cache)
    return cache / "classifiers"


@pytest.fixture
def digits_classifier_cache(tmp_path, monkeypatch, _digits_classifier_dir) -> Path:
    """$ADVNETS_DATA set to this test's own cache, tmp_path / "cache", empty but for a copy of the session's digits
    classifier: what the package trains on the digits is trained once per session, not once per test."""
    cache = tmp_path / "cache"
    shutil.copytree(_digits_classifier_dir, cache / "classifiers")
    monkeypatch.setenv("ADVNETS_DATA", str(cache))
    return cache


TINY = {
    "data.dataset": "digits",
    "model.noise_dim": 8,
    "model.generator_hidden": [32, 32],
    "model.discriminator_units": [16, 16],
    "model.discriminator_pieces": 3,
    "train.batch_size": 20,
    "train.epochs": 2,
    "train.grid_size": 4,
    # no mode coverage (on by default for mnist-5k, which some tests put in place of digits): its classifier would
    # be trained first; tests/training/test_coverage.py is about it
    "train.coverage_every_epochs": 0,
}



# The convolutional nets (model.architecture=conv) at tiny widths, for 3 x 12 x 12 images.
SMALL_CONV = {"model.architecture": "conv", "model.noise_dim": 6, "model.generator_hidden": [16, 64],
              "model.generator_activations": ["relu", "sigmoid"], "model.generator_conv_channels": 4,
              "model.generator_output": "linear", "model.generator_output_bias": "zero",
              "model.discriminator_conv_units": [4, 5], "model.discriminator_conv_kernels": [3, 3],
              "model.discriminator_conv_pads": [1, 1], "model.discriminator_pool_shapes": [2, 2],
              "model.discriminator_pool_strides": [2, 2], "model.discriminator_units": [8],
              "model.discriminator_pieces": 3, "train.batch_size": 10, "train.grid_size": 2, "train.epochs": 2}

# The real-data classifier's recipe at a size that trains in seconds: 10 epochs of the 1,258 8x8 digits.
FAST_RECIPE = Recipe(channels=(8, 16), hidden=64, dropout=0.2, shift=0, steps=200, lr=3e-3)


def cli_sets(overrides: dict) -> list[str]:
    """`overrides` as command-line arguments: ["--set", "section.key=value", ...], each value that is not text
    written as JSON (the form `--set` reads), e.g. `cli_sets(TINY)` for an `advnets train` of the tiny config."""
    args = []
    for key, value in overrides.items():
        args += ["--set", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    return args


@pytest.fixture
def tiny_overrides() -> dict:
    return dict(TINY)


def _small_nets(overrides=None, num_classes=0, dtype=torch.float64):
    """The paper's MLP G and maxout D at small widths on 8x8 images, with weights larger than the paper's init
    (uniform +-0.3) so that every path carries non-trivial gradient; (G, D, the torch.Generator used)."""
    from advnets.config import make_config
    from advnets.models import build_models

    cfg = make_config("paper-mnist", {"model.generator_hidden": [64, 48], "model.discriminator_units": [24, 16],
                                      "model.conditional": num_classes > 0, **(overrides or {})})
    gen = torch.Generator().manual_seed(0)
    g, d = build_models(cfg.model, (1, 8, 8), torch.randn(64, generator=gen) * 0.5, gen, num_classes=num_classes)
    with torch.no_grad():
        for p in list(g.parameters()) + list(d.parameters()):
            p.uniform_(-0.3, 0.3, generator=gen)
    return g.to(dtype), d.to(dtype), gen


@pytest.fixture
def small_nets():
    """`small_nets(overrides=None, num_classes=0)` -> (G, D, generator) in float64, for gradient checks."""
    return _small_nets
