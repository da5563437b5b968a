"""Sample-quality metrics on features (e.g. `Classifier.features`): Frechet distance, kernel distance (KID),
improved precision and recall, density and coverage. All offline: the features come from our own classifier, no
downloaded weights. Inputs are (N, D) numpy arrays or torch tensors; every number is computed in float64.

    FD       |mu_r - mu_f|^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2))        Heusel et al. 2017 (FID on other features)
    KID      unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3, averaged over random subsets   Binkowski et al. 2018
    P / R    fraction of fake samples inside the real k-NN balls / of real samples inside the fake k-NN balls,
             k = 3                                                        Kynkaanniemi et al. 2019
    D / C    density: (1/k) * mean over fakes of the number of real k-NN balls containing it; coverage: fraction
             of real samples whose k-NN ball contains a fake, k = 5       Naeem et al. 2020

A k-NN ball is centred on a sample with radius the distance to its k-th nearest *other* sample of the same set;
"inside" is strict (distance < radius), as in `prdc`, the reference implementation of Naeem et al. (which also
computes P and R). Kynkaanniemi et al. write <=; the two differ only on exact ties.

Why written here rather than imported: `prdc` (numpy, scikit-learn) prints from its library function and holds the
three full N x N distance matrices at once (2.4 GB in float64 at 10k x 10k); torchmetrics' FID and KID classes
take images and a feature-extractor module, not features, and would add a dependency for some twenty lines of
formula; torch-fidelity wants its own Inception weights. The tests check these functions against closed forms,
brute-force numpy versions, SciPy's sqrtm, against `prdc` (a test dependency: identical fractions) and, where it
is installed, torchmetrics' `poly_mmd` (equal to 1e-13).

Cost at N = 10k real and 10k fake features of dimension D: the k-NN radii need the real-real and fake-fake
distance matrices and P/R/D/C the real-fake one, three N x N x D matrix products in all, each streamed a block of
rows at a time (BLOCK_ELEMENTS entries, 8 MB in float64); nothing N x N is ever held. KID costs 3 * subsets
products of subset_size^2 * D, about as much again at the defaults. So the time is a small multiple of one N x N
float64 product, and the memory on top of the features is KID's 8 MB buffer, one 8 MB block and the float64 copies
of the inputs, whatever N (benchmarks/quality_metrics.py measures both; figures in docs/performance.md).
"""
from __future__ import annotations

import math

import numpy as np
import torch

BLOCK_ELEMENTS = 2**20  # entries of one block of a distance matrix (8 MB in float64)


def _features(a, name: str = "features") -> torch.Tensor:
    """(N, D) numpy array, list or torch tensor -> float64 CPU tensor, checked to be 2-D and finite."""
    x = a.detach().cpu().double() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a, np.float64))
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) array, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return x


# --- Frechet distance -------------------------------------------------------------------------------------------

def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigenvalues below 0 set to 0)."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance_from_moments(mu1, cov1, mu2, cov2) -> float:
    """The Frechet (2-Wasserstein squared) distance between N(mu1, cov1) and N(mu2, cov2).

    tr (cov1 cov2)^(1/2) is computed as the sum of the square roots of the eigenvalues of the symmetric PSD
    matrix cov1^(1/2) cov2 cov1^(1/2), which has the same eigenvalues as cov1 cov2: two symmetric eigen-
    decompositions, real arithmetic throughout, no iteration that can fail on singular covariances (scipy's sqrtm
    on the non-symmetric product can return complex parts or need an eps added to the diagonal)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    root1 = _sqrt_psd((cov1 + cov1.T) / 2)
    m = root1 @ cov2 @ root1
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(eig, 0, None)).sum())
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt)


def frechet_distance(a, b) -> float:
    """Frechet distance between Gaussians fitted to feature sets a (N, D) and b (M, D): sample means and unbiased
    covariances (ddof = 1, as pytorch-fid). Needs N, M >= 2."""
    x, y = _features(a, "a").numpy(), _features(b, "b").numpy()
    if len(x) < 2 or len(y) < 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need two sets of >= 2 vectors of one dimension, got {x.shape} and {y.shape}")
    return frechet_distance_from_moments(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))


# --- kernel distance (KID) --------------------------------------------------------------------------------------

def polynomial_mmd2_unbiased(x, y) -> float:
    """Unbiased MMD^2 between samples x (m, D) and y (m, D) with the kernel k(u, v) = (u.v / D + 1)^3:
    [sum_{i != j} k(x_i, x_j) + sum_{i != j} k(y_i, y_j)] / (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / m^2."""
    x, y = _features(x, "x"), _features(y, "y")
    m, d = x.shape
    if y.shape != x.shape or m < 2:
        raise ValueError(f"need two (m, D) sets of one shape with m >= 2, got {tuple(x.shape)}, {tuple(y.shape)}")
    buffer = torch.empty(m, m, dtype=torch.float64)                    # reused: see _squared_distances

    def kernel_sums(u, v):                                             # (sum of all entries, of the diagonal)
        k = torch.mm(u, v.T, out=buffer).div_(d).add_(1).pow_(3)       # (m, m)
        return k.sum(), k.diagonal().sum()

    (xx, xx_diag), (yy, yy_diag), (xy, _) = kernel_sums(x, x), kernel_sums(y, y), kernel_sums(x, y)
    return float((xx - xx_diag + yy - yy_diag) / (m * (m - 1)) - 2 * xy / (m * m))


def kernel_distance(a, b, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: the unbiased polynomial-kernel MMD^2 (`polynomial_mmd2_unbiased`) averaged over `subsets` pairs of
    random subsets of `subset_size` vectors each, drawn without replacement from a and from b (numpy
    default_rng(seed)). subset_size is lowered to min(len(a), len(b)) when either set is smaller.

    Returns (mean, standard error of the mean = sample std over subsets (ddof 1) / sqrt(subsets); NaN for one
    subset). Other tools (torch-fidelity) report the std over subsets itself: that is std_error * sqrt(subsets)
    up to the ddof. The estimate is unbiased: it can be slightly negative when a and b share a distribution."""
    x, y = _features(a, "a"), _features(b, "b")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"a and b have dimensions {x.shape[1]} and {y.shape[1]}")
    m = min(subset_size, len(x), len(y))
    if subsets < 1 or m < 2:
        raise ValueError(f"need subsets >= 1 and at least 2 vectors per set, got {subsets} and {m}")
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for s in range(subsets):
        ix = torch.from_numpy(rng.choice(len(x), m, replace=False))
        iy = torch.from_numpy(rng.choice(len(y), m, replace=False))
        values[s] = polynomial_mmd2_unbiased(x[ix], y[iy])
    std_error = float(values.std(ddof=1) / math.sqrt(subsets)) if subsets > 1 else float("nan")
    return float(values.mean()), std_error


# --- k-NN balls: precision, recall, density, coverage -----------------------------------------------------------

def _squared_distances(x: torch.Tensor, y: torch.Tensor, y_norms: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """|x_i - y_j|^2 for a block x (B, D) against y (M, D), via |x|^2 + |y|^2 - 2 x.y in float64, clamped at 0,
    written into out[:B] (a buffer reused for every block: allocating a fresh 8 MB block each time lets glibc's
    heap fragment, and the resident memory grew to 500 MB at 10k x 10k where the buffer keeps it near 40 MB).

    The order, (|x|^2 + |y|^2) - 2 x.y, is symmetric in x and y, so d(x, y) and d(y, x) round alike wherever the
    BLAS product does: a set compared with itself then meets its own radii as exact ties, which count as outside.
    (Measured at 10k x 128: density of a set against itself 1.00004, i.e. 2 of 50,000 ties rounded the other
    way.)"""
    d2 = torch.add(x.square().sum(1, keepdim=True), y_norms[None, :], out=out[:len(x)])   # (B, M)
    return d2.addmm_(x, y.T, alpha=-2).clamp_min_(0)


def _block_buffer(columns: int) -> tuple[int, torch.Tensor]:
    """Rows per block for a distance matrix with `columns` columns, and the (rows, columns) float64 buffer."""
    rows = max(1, BLOCK_ELEMENTS // max(columns, 1))
    return rows, torch.empty(rows, columns, dtype=torch.float64)


def knn_squared_radii(x, ks) -> torch.Tensor:
    """Squared distance from each row of x (N, D) to its k-th nearest other row, for each k in `ks`: (N, len(ks)).

    The k-th nearest other row is the (k+1)-th smallest distance counting the row itself (as prdc), so a
    duplicate of a row counts as a neighbour at distance 0. Needs N > max(ks)."""
    x = _features(x, "x")
    ks = [int(k) for k in ks]
    if min(ks) < 1 or len(x) <= max(ks):
        raise ValueError(f"k-NN radii need 1 <= k < N, got k = {ks} for N = {len(x)}")
    norms = x.square().sum(1)                                          # (N,)
    rows, buffer = _block_buffer(len(x))
    out = []
    for i in range(0, len(x), rows):
        d2 = _squared_distances(x[i:i + rows], x, norms, buffer)        # (B, N)
        nearest = torch.topk(d2, max(ks) + 1, dim=1, largest=False).values   # (B, k+1), ascending
        out.append(nearest[:, ks])                                     # column k = the k-th other row
    return torch.cat(out)


def _prdc(real, fake, k_pr: int | None, k_dc: int | None) -> dict:
    """Precision/recall with k_pr and density/coverage with k_dc, in one pass over the real-fake distances."""
    r, f = _features(real, "real"), _features(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"real and fake features have dimensions {r.shape[1]} and {f.shape[1]}")
    ks = [k for k in (k_pr, k_dc) if k is not None]
    real_radii = knn_squared_radii(r, ks)                              # (Nr, len(ks))
    real_pr = real_radii[:, 0] if k_pr is not None else None           # (Nr,)
    real_dc = real_radii[:, -1] if k_dc is not None else None
    fake_pr = knn_squared_radii(f, [k_pr])[:, 0] if k_pr is not None else None   # (Nf,)
    real_norms = r.square().sum(1)
    in_precision = 0                       # fakes inside at least one real k_pr-ball
    in_density = 0                         # (fake, real ball) pairs with the fake inside the real k_dc-ball
    recalled = torch.zeros(len(r), dtype=torch.bool)                   # reals inside at least one fake k_pr-ball
    nearest_fake = torch.full((len(r),), math.inf, dtype=torch.float64)   # squared distance to the nearest fake
    rows, buffer = _block_buffer(len(r))
    for j in range(0, len(f), rows):
        d2 = _squared_distances(f[j:j + rows], r, real_norms, buffer)   # (B, Nr): fakes j.. against all reals
        if k_pr is not None:
            in_precision += int((d2 < real_pr[None, :]).any(1).sum())
            recalled |= (d2 < fake_pr[j:j + rows, None]).any(0)
        if k_dc is not None:
            in_density += int((d2 < real_dc[None, :]).sum())
            nearest_fake = torch.minimum(nearest_fake, d2.min(0).values)
    out = {}
    if k_pr is not None:
        out.update(precision=in_precision / len(f), recall=float(recalled.double().mean()))
    if k_dc is not None:
        out.update(density=in_density / (k_dc * len(f)), coverage=float((nearest_fake < real_dc).double().mean()))
    return out


def precision_recall(real, fake, k: int = 3) -> dict:
    """Improved precision and recall (Kynkaanniemi et al. 2019): {"precision": fraction of fake samples inside
    the k-NN ball of at least one real sample, "recall": fraction of real samples inside the k-NN ball of at least
    one fake sample}."""
    return _prdc(real, fake, k, None)


def density_coverage(real, fake, k: int = 5) -> dict:
    """Density and coverage (Naeem et al. 2020), on the real samples' k-NN balls only: {"density": (1 / k) *
    the mean over fake samples of the number of real balls containing it (1 in expectation when fake and real
    share a distribution; unbounded above), "coverage": fraction of real samples whose ball contains a fake}."""
    return _prdc(real, fake, None, k)


def quality_metrics(real, fake, *, k_pr: int = 3, k_dc: int = 5, kid_subsets: int = 100,
                    kid_subset_size: int = 1000, seed: int = 0, reference=None) -> dict:
    """Every metric of this module for real (N, D) against fake (M, D) features, in one dict:
    fd, kid, kid_std_error, precision, recall, density, coverage, plus n_real, n_fake and the settings.

    `reference`: a second real sample independent of `real` (e.g. the test split's features when `real` is the
    valid split's, ideally as many as the fakes). When given, the same metrics for real vs reference are returned
    under "floor": what a perfect generator would score at this sample size, to be reported beside every number."""
    kid, kid_se = kernel_distance(real, fake, kid_subsets, kid_subset_size, seed)
    out = {"fd": frechet_distance(real, fake), "kid": kid, "kid_std_error": kid_se, **_prdc(real, fake, k_pr, k_dc),
           "n_real": len(real), "n_fake": len(fake), "k_pr": k_pr, "k_dc": k_dc, "kid_subsets": kid_subsets,
           "kid_subset_size": min(kid_subset_size, len(real), len(fake))}
    if reference is not None:
        out["floor"] = quality_metrics(real, reference, k_pr=k_pr, k_dc=k_dc, kid_subsets=kid_subsets,
                                       kid_subset_size=kid_subset_size, seed=seed)
    return out
