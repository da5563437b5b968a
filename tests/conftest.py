"""Shared fixtures: tiny configs and real small data, so that tests run in seconds on 2 cores."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from advnets.threads import torch_threads

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


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


TINY = {
    "data.dataset": "digits",
    "model.noise_dim": 8,
    "model.generator_hidden": [32, 32],
    "model.discriminator_units": [16, 16],
    "model.discriminator_pieces": 3,
    "train.batch_size": 20,
    "train.epochs": 2,
    "train.grid_size": 4,
}


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
