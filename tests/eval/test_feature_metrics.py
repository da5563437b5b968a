"""Sample-quality metrics on features: FD against the closed form and SciPy's sqrtm, KID against a brute-force
double loop, precision / recall / density / coverage against a brute-force numpy version (exactly), and against
`prdc` (Naeem et al.'s own code) when it is installed."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from advnets.eval import feature_metrics
from advnets.eval.feature_metrics import (density_coverage, frechet_distance, frechet_distance_from_moments,
                                          kernel_distance, knn_squared_radii, polynomial_mmd2_unbiased,
                                          precision_recall, quality_metrics)


def _diagonal_closed_form(mu1, s1, mu2, s2):
    return float(np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2)))


def test_fd_of_two_gaussians_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5, 1.0]), np.array([2.0, 1.0, 1.0, 0.25])
    expected = _diagonal_closed_form(mu1, s1, mu2, s2)
    assert frechet_distance_from_moments(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-12)
    # the same pair rotated by one orthogonal matrix: FD is invariant
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))
    rotated = frechet_distance_from_moments(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-10)
    # a singular covariance (a point mass) is fine: FD(N(0, S), delta_0) = tr S
    assert frechet_distance_from_moments(np.zeros(4), np.diag(s1), np.zeros(4), np.zeros((4, 4))) == pytest.approx(
        s1.sum(), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fd_from_samples_approaches_the_closed_form(seed):
    rng = np.random.default_rng(seed)
    mu1, mu2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5, 1.0]), np.array([2.0, 1.0, 1.0, 0.25])
    a = mu1 + rng.normal(size=(20_000, 4)) * np.sqrt(s1)
    b = torch.from_numpy(mu2 + rng.normal(size=(20_000, 4)) * np.sqrt(s2)).float()   # tensors work too
    # 6.37 exactly; sampling error of the moments at n = 20,000 is ~0.03
    assert frechet_distance(a, b) == pytest.approx(_diagonal_closed_form(mu1, s1, mu2, s2), abs=0.15)


def test_fd_agrees_with_scipy_sqrtm_and_is_symmetric():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 16)) @ rng.normal(size=(16, 16))
    b = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16)) + 0.3
    mu1, mu2, c1, c2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(c1 @ c2).real                           # the pytorch-fid formula
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * np.trace(root)
    assert frechet_distance(a, b) == pytest.approx(reference, rel=1e-8)
    assert frechet_distance(b, a) == pytest.approx(reference, rel=1e-8)
    assert abs(frechet_distance(a, a)) < 1e-8 * np.trace(c1)


def _mmd2_brute_force(x, y):
    m, d = x.shape
    k = lambda u, v: (u @ v / d + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / m**2


def test_unbiased_mmd_matches_the_double_loop():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 5)) * 1.5 + 0.2
    assert polynomial_mmd2_unbiased(x, y) == pytest.approx(_mmd2_brute_force(x, y), rel=1e-12)


def test_kid_subsets_match_the_brute_force_on_the_same_draws():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(60, 4)), rng.normal(size=(50, 4)) + 0.5
    mean, se = kernel_distance(a, b, subsets=5, subset_size=20, seed=3)
    draws = np.random.default_rng(3)
    values = []
    for _ in range(5):
        ix, iy = draws.choice(60, 20, replace=False), draws.choice(50, 20, replace=False)
        values.append(_mmd2_brute_force(a[ix], b[iy]))
    assert mean == pytest.approx(np.mean(values), rel=1e-12)
    assert se == pytest.approx(np.std(values, ddof=1) / math.sqrt(5), rel=1e-10)
    # subsets larger than a set shrink to it: then every subset is the whole set and the spread is 0
    whole, spread = kernel_distance(a[:20], b[:20], subsets=3, subset_size=1000)
    assert whole == pytest.approx(_mmd2_brute_force(a[:20], b[:20]), rel=1e-12) and spread < 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kid_is_near_zero_for_one_distribution(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
    same, _ = kernel_distance(a, b, subsets=20, subset_size=500, seed=seed)
    shifted, _ = kernel_distance(a, b + 0.2, subsets=20, subset_size=500, seed=seed)
    assert abs(same) < 0.01 and shifted > 0.05                      # measured: |same| <= 0.002, shifted 0.12-0.15


def _brute_prdc(real, fake, k_pr, k_dc):
    """Every distance written out with numpy; radius = the (k+1)-th smallest distance counting the point itself."""
    drr = np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1))
    dff = np.sqrt(((fake[:, None] - fake[None]) ** 2).sum(-1))
    drf = np.sqrt(((real[:, None] - fake[None]) ** 2).sum(-1))        # (Nr, Nf)
    r_pr, r_dc = np.sort(drr, 1)[:, k_pr], np.sort(drr, 1)[:, k_dc]
    f_pr = np.sort(dff, 1)[:, k_pr]
    return {"precision": np.mean([(drf[:, j] < r_pr).any() for j in range(len(fake))]),
            "recall": np.mean([(drf[i] < f_pr).any() for i in range(len(real))]),
            "density": sum((drf[:, j] < r_dc).sum() for j in range(len(fake))) / (k_dc * len(fake)),  # exact count
            "coverage": np.mean([drf[i].min() < r_dc[i] for i in range(len(real))])}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("block", [2**22, 500])                       # one block, and many small ones
def test_prdc_equals_brute_force(seed, block, monkeypatch):
    monkeypatch.setattr(feature_metrics, "BLOCK_ELEMENTS", block)
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(200, 8))
    fake = rng.normal(size=(150, 8)) * 1.3 + 0.4                    # overlaps, but not the same distribution
    expected = _brute_prdc(real, fake, 3, 5)
    assert precision_recall(real, fake, k=3) == {k: expected[k] for k in ("precision", "recall")}
    assert density_coverage(real, fake, k=5) == {k: expected[k] for k in ("density", "coverage")}
    assert 0.3 < expected["precision"] < 0.8 and 0.8 < expected["recall"] < 0.99     # neither 0 nor 1: can fail


def test_against_prdc_package(capsys):
    prdc = pytest.importorskip("prdc")
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(300, 10)), rng.normal(size=(250, 10)) * 0.8 + 0.3
    theirs = prdc.compute_prdc(real, fake, nearest_k=4)
    ours = {**precision_recall(real, fake, k=4), **density_coverage(real, fake, k=4)}
    assert {k: ours[k] for k in ("precision", "recall", "coverage")} == {
        k: float(theirs[k]) for k in ("precision", "recall", "coverage")}
    assert ours["density"] == pytest.approx(theirs["density"], rel=1e-14)   # one count, summed in another order


def test_unbiased_mmd_against_torchmetrics():
    kid = pytest.importorskip("torchmetrics.image.kid")              # not a test dependency: runs where installed
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(500, 64)), rng.normal(size=(500, 64)) * 1.1 + 0.05
    theirs = float(kid.poly_mmd(torch.from_numpy(a), torch.from_numpy(b), degree=3, coef=1.0))   # gamma = 1 / D
    assert polynomial_mmd2_unbiased(a, b) == pytest.approx(theirs, rel=1e-10)


def test_identical_sets_and_a_dropped_mode():
    rng = np.random.default_rng(0)
    real = np.concatenate([rng.normal(size=(300, 6)), rng.normal(size=(300, 6)) + 20])   # two far clusters
    same = {**precision_recall(real, real), **density_coverage(real, real)}
    assert {k: same[k] for k in ("precision", "recall", "coverage")} == {"precision": 1.0, "recall": 1.0,
                                                                         "coverage": 1.0}
    assert same["density"] == pytest.approx(1.0, abs=0.01)            # exactly 1 but for ties rounded inside
    fake = rng.normal(size=(300, 6))                                 # only the first cluster
    pr, dc = precision_recall(real, fake), density_coverage(real, fake)
    assert pr["precision"] > 0.75 and 0.4 < pr["recall"] <= 0.5 and 0.4 < dc["coverage"] <= 0.5


def test_knn_radii_exclude_the_point_itself():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert knn_squared_radii(x, [1, 2, 3]).tolist() == [[1, 9, 49], [1, 4, 36], [4, 9, 16], [16, 36, 49]]
    with pytest.raises(ValueError):
        knn_squared_radii(x, [4])


def test_quality_metrics_in_one_dict_with_the_floor():
    rng = np.random.default_rng(0)
    real, reference = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    fake = rng.normal(size=(400, 8)) * 0.5 + 0.5
    out = quality_metrics(real, torch.from_numpy(fake).float(), kid_subsets=10, kid_subset_size=200,
                          reference=reference)
    assert out["fd"] == pytest.approx(frechet_distance(real, fake.astype(np.float32)), rel=1e-12)
    assert out["kid"] == kernel_distance(real, fake.astype(np.float32), 10, 200)[0]
    assert out["precision"] == precision_recall(real, fake.astype(np.float32))["precision"]
    floor = out["floor"]
    assert floor["fd"] < out["fd"] / 5 and floor["kid"] < out["kid"] / 5 and floor["recall"] > out["recall"]
    assert 0.7 < floor["density"] < 1.3 and floor["coverage"] > 0.9
    assert out["n_real"] == out["n_fake"] == 400 and out["kid_subset_size"] == 200


def test_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([[0.0, 1.0], [np.nan, 1.0]]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="dimensions"):
        precision_recall(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(5), np.zeros(5))
