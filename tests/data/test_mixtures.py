"""The 2-D mode-collapse benchmarks: exact centres, the right sigma, equal weights, reproducible draws."""
import itertools
import math

import numpy as np
import pytest

from advnets.data.mixtures import MIXTURES, mixture_means, mixture_sigma, sample_mixture
from advnets.errors import ConfigError


def test_grid_centres():
    means = mixture_means("grid")
    assert means.shape == (25, 2) and means.dtype == np.float64
    expected = {(i, j) for i in (-4, -2, 0, 2, 4) for j in (-4, -2, 0, 2, 4)}
    assert {tuple(m) for m in means.tolist()} == expected
    assert mixture_sigma("grid") == 0.05


def test_ring_has_eight_distinct_centres_on_the_unit_circle():
    means = mixture_means("ring")
    assert means.shape == (8, 2) and mixture_sigma("ring") == 0.01
    np.testing.assert_allclose(np.hypot(means[:, 0], means[:, 1]), 1.0, rtol=0, atol=1e-15)
    gaps = [np.linalg.norm(a - b) for a, b in itertools.combinations(means, 2)]
    assert min(gaps) == pytest.approx(2 * math.sin(math.pi / 8), rel=1e-12)   # neighbours 45 degrees apart
    angles = np.sort(np.mod(np.arctan2(means[:, 1], means[:, 0]), 2 * np.pi))
    np.testing.assert_allclose(angles, 2 * np.pi * np.arange(8) / 8, atol=1e-12)


def test_means_are_read_only_and_copies_are_free():
    with pytest.raises(ValueError):
        MIXTURES["grid"].means[0, 0] = 1.0
    copy = mixture_means("grid")
    copy[0, 0] = 99.0
    assert mixture_means("grid")[0, 0] == -4.0


@pytest.mark.parametrize("name", ["grid", "ring"])
def test_samples_follow_the_mixture(name):
    points, labels = sample_mixture(name, 100_000, seed=3)
    assert points.shape == (100_000, 2) and points.dtype == np.float32
    assert labels.shape == (100_000,) and labels.dtype == np.int64
    means, sigma = mixture_means(name), mixture_sigma(name)
    k = len(means)
    counts = np.bincount(labels, minlength=k)
    # equal weights: each count is Binomial(n, 1/k); 6 standard deviations of margin
    assert np.all(np.abs(counts - 1e5 / k) < 6 * math.sqrt(1e5 / k))
    offsets = (points - means[labels]) / sigma                        # standard normal if sigma is right
    assert np.all(np.abs(offsets.mean(0)) < 0.02)                     # sd of the mean: 1/sqrt(1e5) = 0.003
    np.testing.assert_allclose(offsets.std(0), 1.0, atol=0.02)
    assert np.abs(np.corrcoef(offsets.T)[0, 1]) < 0.02


def test_same_seed_same_points_other_seed_other_points():
    a, la = sample_mixture("ring", 1000, seed=7)
    b, lb = sample_mixture("ring", 1000, seed=7)
    c, _ = sample_mixture("ring", 1000, seed=8)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_unknown_name():
    with pytest.raises(ConfigError, match="grid, ring"):
        mixture_means("spiral")
