"""Mode coverage (VEEGAN / PacGAN) on the 2-D mixtures and class coverage from predicted labels: hand-computed
cases, the boundary of "high quality", a direct re-implementation of the PacGAN reference loop, and real draws."""
import math

import numpy as np
import pytest
import scipy.stats
import torch

from advnets.data.mixtures import mixture_means, mixture_sigma, sample_mixture
from advnets.eval.coverage import class_coverage, kl_divergence, mixture_coverage, nearest_means

GRID, GRID_SIGMA = mixture_means("grid"), mixture_sigma("grid")
RING, RING_SIGMA = mixture_means("ring"), mixture_sigma("ring")


def test_all_samples_at_one_mean():
    out = mixture_coverage(np.tile(GRID[7], (2500, 1)), GRID, GRID_SIGMA)
    assert out["high_quality"] == 1.0 and out["modes_captured"] == 1 and out["n"] == 2500
    assert out["reverse_kl"] == pytest.approx(math.log(25), rel=1e-12)
    assert out["histogram"] == [0] * 7 + [2500] + [0] * 17


def test_samples_at_every_mean_evenly():
    out = mixture_coverage(np.repeat(GRID, 100, axis=0), GRID, GRID_SIGMA)
    assert out["high_quality"] == 1.0 and out["modes_captured"] == 25 and out["histogram"] == [100] * 25
    assert out["reverse_kl"] == 0.0


def test_samples_far_away_are_not_high_quality():
    out = mixture_coverage(np.full((50, 2), 100.0), GRID, GRID_SIGMA)
    assert out["high_quality"] == 0.0 and out["modes_captured"] == 0 and out["histogram"] == [0] * 25
    assert math.isnan(out["reverse_kl"])                              # no HQ sample: undefined, stated as NaN
    between = mixture_coverage(np.array([[1.0, 1.0], [3.0, -1.0]]), GRID, GRID_SIGMA)   # halfway between modes
    assert between["high_quality"] == 0.0 and between["modes_captured"] == 0


def test_hand_computed_ring():
    s = RING_SIGMA
    samples = np.array([RING[0], RING[0] + [2 * s, 0], RING[0] + [0, -2.9 * s],  # 3 HQ at mode 0
                        RING[5] + [s, s],                                        # 1 HQ at mode 5
                        RING[2] + [3.1 * s, 0], [0.0, 0.0]])                     # 2 not HQ
    out = mixture_coverage(samples, RING, s)
    assert out["histogram"] == [3, 0, 0, 0, 0, 1, 0, 0]
    assert out["high_quality"] == pytest.approx(4 / 6) and out["modes_captured"] == 2
    assert out["reverse_kl"] == pytest.approx(0.75 * math.log(0.75 * 8) + 0.25 * math.log(0.25 * 8), rel=1e-12)


def test_threshold_is_strict_and_in_units_of_sigma():
    means = np.array([[0.0, 0.0], [10.0, 0.0]])
    samples = np.array([[1.5, 0.0], [1.4999, 0.0], [0.0, -1.5001]])   # sigma 0.5: exactly, inside, outside 3 sigma
    out = mixture_coverage(samples, means, 0.5)
    assert out["histogram"] == [1, 0] and out["high_quality"] == pytest.approx(1 / 3)
    assert mixture_coverage(samples, means, 0.5, threshold=3.001)["histogram"] == [3, 0]


def _pacgan_reference(samples, means, sigma, threshold=3.0):
    """The PacGAN reference loop (MetricLogger.do), written out: nearest mean by distance in units of sigma,
    counted when below the threshold; the KL as scipy's entropy of the histogram against uniform."""
    detail = np.zeros(len(means))
    for x in samples:
        dists = [math.sqrt(float(np.sum((np.asarray(x, float) - m) ** 2 / sigma**2))) for m in means]
        j = int(np.argmin(dists))
        if dists[j] < threshold:
            detail[j] += 1
    kl = scipy.stats.entropy(detail / detail.sum(), np.full(len(means), 1 / len(means)))
    return detail, detail.sum() / len(samples), int(np.count_nonzero(detail)), kl


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_pacgan_reference_loop(seed):
    rng = np.random.default_rng(seed)
    # a partly collapsed, blurry generator: 9 of the 25 modes, unequal weights, noise of 0.5 to 4 sigma
    modes = rng.choice(25, 9, replace=False)
    centre = GRID[rng.choice(modes, 2500, p=rng.dirichlet(np.ones(9)))]
    samples = (centre + rng.normal(size=(2500, 2)) * GRID_SIGMA * rng.uniform(0.5, 4, (2500, 1))).astype(np.float32)
    detail, hq, captured, kl = _pacgan_reference(samples, GRID, GRID_SIGMA)
    out = mixture_coverage(samples, GRID, GRID_SIGMA)
    assert out["histogram"] == detail.astype(int).tolist()
    assert out["high_quality"] == hq and out["modes_captured"] == captured <= 9
    assert out["reverse_kl"] == pytest.approx(kl, rel=1e-12)


@pytest.mark.parametrize("name", ["grid", "ring"])
def test_real_data_scores_like_a_perfect_generator(name):
    means, sigma = mixture_means(name), mixture_sigma(name)
    for seed in range(3):
        points, labels = sample_mixture(name, 2500, seed)
        out = mixture_coverage(torch.from_numpy(points), means, sigma)   # a tensor works as well as an array
        # P(|N(0, I_2)| < 3) = 1 - exp(-9/2) = 0.98889; sd of the fraction over 2,500 samples: 0.0021
        assert out["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
        assert out["modes_captured"] == len(means)
        # E[KL] of a multinomial histogram against its own uniform p is ~ (K - 1) / (2 n) = 0.005 (grid)
        assert 0 <= out["reverse_kl"] < 0.03


def test_nearest_means_blocks_agree_with_brute_force():
    rng = np.random.default_rng(0)
    x, m = rng.normal(size=(5000, 2)) * 3, GRID
    index, distance = nearest_means(x, m)
    d = np.sqrt(((x[:, None, :] - m[None]) ** 2).sum(-1))
    assert np.array_equal(index, d.argmin(1))
    np.testing.assert_allclose(distance, d.min(1), rtol=1e-14)


def test_class_coverage_hand_cases():
    balanced = np.full(10, 0.1)
    one = class_coverage(np.full(1000, 3), balanced)
    assert one["classes_captured"] == 1 and one["kl"] == pytest.approx(math.log(10), rel=1e-12)
    assert one["histogram"] == [0, 0, 0, 1000] + [0] * 6 and one["n"] == 1000
    exact = class_coverage(np.array([0, 0, 1, 2]), [0.5, 0.25, 0.25])
    assert exact["kl"] == pytest.approx(0.0, abs=1e-15) and exact["classes_captured"] == 3
    half = class_coverage(torch.tensor([0, 1, 0, 1]), [0.25, 0.25, 0.5])   # q = (1/2, 1/2, 0), p = (1/4, 1/4, 1/2)
    assert half["kl"] == pytest.approx(math.log(2), rel=1e-12) and half["classes_captured"] == 2
    counts = class_coverage(np.array([0, 1, 0, 1]), [100, 100, 200])      # counts, normalised
    assert counts["kl"] == half["kl"]


def test_class_coverage_matches_scipy_and_its_edges():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(10))
    labels = rng.choice(10, 10_000, p=rng.dirichlet(np.ones(10)))
    q = np.bincount(labels, minlength=10) / 10_000
    assert class_coverage(labels, p)["kl"] == pytest.approx(scipy.stats.entropy(q, p), rel=1e-12)
    assert class_coverage(np.array([0, 2]), [0.5, 0.5, 0.0])["kl"] == math.inf   # a class the data never shows
    assert math.isnan(class_coverage(np.zeros(0, np.int64), [0.5, 0.5])["kl"])
    with pytest.raises(ValueError):
        class_coverage(np.array([0, 3]), [0.5, 0.5, 0.0])
    with pytest.raises(ValueError):
        class_coverage(np.array([0.5]), [0.5, 0.5])


def test_kl_divergence_direction():
    assert kl_divergence([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert kl_divergence([0.5, 0.5], [1, 0]) == math.inf
