"""Shared fixtures: tiny configs and real small data, so that tests run in seconds on 2 cores."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture(autouse=True)
def _one_thread():
    # Tests use tiny tensors: one thread avoids OpenMP barrier costs and keeps results identical run to run.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
