"""Parzen-window log-likelihood, the estimator of Table 1 (Goodfellow et al. 2014; docs/design.md §2).

For a test point x and n samples s_i from G, each of dimension d::

    log p(x) = log mean_i N(x; s_i, sigma^2 I)
             = logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) - log n - d * log(sigma * sqrt(2 pi))

sigma is chosen on a validation set from a grid (the original code: 10 values log-spaced from 0.1 to 1); the test
mean and its standard error std / sqrt(n) are reported.

How the fast path stays fast and exact (float32; the tests hold it within ~1e-4 nats of a float64 brute force):
- both sets are centred on the samples' mean (distances are translation-invariant; smaller norms, less cancellation);
- per block of points x chunk of samples, E = ||s||^2 - 2 x.s is one float32 matmul, reused for every sigma, and
  delta = E - min(E) = ||x - s||^2 - ||x - s_nearest||^2 (each row's largest term is e^0 = 1, no overflow);
- float32 E is off by ~eps * (||x||^2 + ||s||^2), that / (2 sigma^2) in nats, worst for close pairs and small sigma:
  the distance to the nearest sample, and to every sample within 25 nats of it at the smallest sigma, is recomputed
  from explicit differences of the raw inputs in float64 (a block with > 16 such per point goes to float64 whole);
  those terms are found through the minima of groups of 64 columns (one pass over the block, then only the groups
  that hold one are read again);
- chunks are merged with a float64 logaddexp (an online logsumexp), so memory is bounded by the block size;
- terms more than 30 nats below a row's largest are negligible (n e^-30 relative: 1e-9 nats for 10^4 samples), which
  is used twice: for the small sigmas only the groups of 64 columns whose minimum is closer than that are summed
  (a small share of them at the smallest sigmas of the default grid); for the others delta is clamped so that no
  exponential underflows to a subnormal number (float32 exp is much slower when it does), one clamp serving the
  next sigmas while that holds (~every third sigma of the grid);
- the exponential is taken as exp2 of the exponent times log2(e) (on CPU torch's float32 exp2 is much faster than
  exp; they differ by a few float32 ulps, ~1e-7 relative, far inside the ~1e-4 nats the tests hold it to);
  log n and d * log(sigma sqrt(2 pi)) are float64.
What is left beside the matmul (benchmarks/parzen.py times the protocol against the matmul alone) is one pass
each for the group minima and delta, and three (product, exp2, sum) per sigma whose terms are not sparse.
On a CPU with several torch threads the blocks of points run side by side, one thread each (`run_blocks`), in less
time than giving each operation all the threads (`benchmarks/parzen.py --pairs N`; docs/performance.md).
"""
from __future__ import annotations

import math
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from typing import Sequence, Union

import numpy as np
import torch

from advnets.errors import AdvnetsError
from advnets.threads import torch_threads

ArrayLike = Union[np.ndarray, torch.Tensor]

# Points per block x samples per chunk, with the samples split into equal chunks of at most SAMPLE_CHUNK: for 10k
# samples, (256, 5000) float32 blocks of 5 MB (plus a scratch one): the per-chunk work (the nearest distances, the
# merge) is done twice per point, not five times as with 2048-sample chunks; the matmul is as fast as at (256, 2048).
# Memory for 10k x 10k x 784: the centred float32 samples (31 MB) + ~10 MB of blocks, whatever n_points is.
BATCH_SIZE = 256
SAMPLE_CHUNK = 8192
_FAR_NATS = 30.0  # terms this far below a row's largest (e^0 = 1) are negligible: n e^-30 relative
_LOG2_E = 1.0 / math.log(2.0)
_NEAR_NATS = 25.0  # terms further below the largest than this (at the smallest sigma) are not refined
_REFINE_ABOVE_NATS = 1e-3  # refine only where float32's error could cost more than this
_MAX_NEAR_PER_POINT = 16
_GROUP = 64  # columns per group in the search for near terms (_near_terms) and for the live terms (_exp_sums)
_SPARSE = 0.25  # _exp_sums reads only the live groups when they are fewer than this fraction of the block


class ParzenInputError(AdvnetsError, ValueError):
    """Samples or points that cannot be evaluated: empty, mismatched dimensions, NaN or infinite values."""


class SigmaOnEdgeWarning(UserWarning):
    """The chosen sigma is the smallest or largest of the grid: the optimum may lie outside it."""


def sigma_grid(low: float = 0.1, high: float = 1.0, num: int = 10) -> np.ndarray:
    """`num` values log-spaced from `low` to `high` (the original: numpy.logspace(-1, 0, 10))."""
    if not (0 < low <= high) or num < 1:
        raise ParzenInputError(f"bad sigma grid low={low}, high={high}, num={num}", "need 0 < low <= high, num >= 1")
    return np.logspace(math.log10(low), math.log10(high), num)


def _as_2d(x: ArrayLike, name: str, device: torch.device, dim: int | None = None) -> torch.Tensor:
    """(N, ...) array or tensor -> (N, d) tensor on `device`, checked: non-empty, finite, d == dim if given."""
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        x = x.copy()  # torch warns on read-only arrays (e.g. read_idx's); we never write, but copy to stay quiet
    t = torch.as_tensor(x).detach().to(device)
    if t.ndim == 0 or t.shape[0] == 0 or t[0].numel() == 0:
        raise ParzenInputError(f"{name} is empty (shape {tuple(t.shape)})", "pass an (N, ...) array with N >= 1")
    t = t.reshape(t.shape[0], -1)  # (N, d)
    if dim is not None and t.shape[1] != dim:
        raise ParzenInputError(f"{name} has {t.shape[1]} dimensions, the samples {dim}", "flatten both the same way")
    # a sum is finite iff every value is (bar overflow, then the exact check): one pass, in the input's own dtype
    # (a float64 sum of float32 data converts every value first, ~5% of the whole protocol)
    if t.is_floating_point() and not (math.isfinite(t.sum()) or bool(torch.isfinite(t).all())):
        raise ParzenInputError(f"{name} contains NaN or infinite values", "check the generator / data for divergence")
    return t


def _sigmas(sigmas: float | Sequence[float] | np.ndarray | None) -> np.ndarray:
    s = sigma_grid() if sigmas is None else np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ParzenInputError(f"bad sigmas {s!r}", "need a non-empty list of positive numbers")
    return s


def _device(device: torch.device | str | None, *xs: ArrayLike) -> torch.device:
    if device is not None:
        return torch.device(device)
    return next((x.device for x in xs if isinstance(x, torch.Tensor)), torch.device("cpu"))


class _Samples:
    """The samples prepared once: raw (for exact nearest distances), centred in `dtype`, squared norms."""

    def __init__(self, samples: torch.Tensor, dtype: torch.dtype):
        self.raw = samples  # (n, d)
        # One shift for both sets, rounded to `dtype` first: a common shift leaves every distance unchanged, so the
        # mean need not be exact (summed in the samples' dtype: a float64 sum would convert all of them, 1% of the time)
        self.mean = samples.mean(0, dtype=None if samples.is_floating_point() else torch.float64).to(dtype)  # (d,)
        self.centred = samples.to(dtype) - self.mean  # (n, d)
        blocks = (u.to(torch.float64) for u in self.centred.split(4096))
        self.sq_norm64 = torch.cat([torch.linalg.vecdot(u, u) for u in blocks])  # (n,)
        self.sq_norm = self.sq_norm64.to(dtype)  # (n,)
        self.max_sq_norm = float(self.sq_norm64.max())
        self.dtype = dtype


def sample_chunks(n: int, sample_chunk: int) -> list[tuple[int, int]]:
    """(start, stop) of the chunks of samples: ceil(n / sample_chunk) chunks of (nearly) equal size."""
    if sample_chunk < 1:
        raise ParzenInputError(f"sample_chunk={sample_chunk}", "must be >= 1")
    size = -(-n // -(-n // sample_chunk))
    return [(s0, min(s0 + size, n)) for s0 in range(0, n, size)]


def _near_terms(e: torch.Tensor, near: float, most: int):
    """e (B, C) -> delta = e - rowmin(e) in place (>= 0, exactly 0 at each row's minimum); returns the (row, column)
    pairs with delta <= near (each row's minimum among them), or (None, None) when there are more than `most`, and
    the minimum of delta over each group of _GROUP columns, (B, ceil(C / _GROUP)).

    Searched by groups of _GROUP columns: one pass takes the groups' minima (which also give the rows' minima), and
    only the groups whose minimum is within `near` are read again; a comparison and nonzero over the whole block
    would cost many times the pass (docs/performance.md)."""
    B, C = e.shape
    full = C - C % _GROUP
    parts = [e[:, :full].view(B, -1, _GROUP).amin(2)] if full else []  # (B, C // G)
    if full < C:  # the columns after the last whole group: one more (narrower) group
        parts.append(e[:, full:].amin(1, keepdim=True))
    g_min = torch.cat(parts, 1) if len(parts) > 1 else parts[0]  # (B, groups)
    e_min = g_min.amin(1, keepdim=True)  # (B, 1)
    delta = e.sub_(e_min)
    g_rows, groups = (g_min.sub_(e_min) <= near).nonzero(as_tuple=True)  # (P_g,) each group holds >= 1 near term
    if g_rows.numel() > most:
        return None, None, g_min
    cols = groups[:, None] * _GROUP + torch.arange(_GROUP, device=e.device)  # (P_g, G) the groups' columns
    cols = cols.clamp_(max=C - 1)  # the narrow last group repeats its last column; duplicates are dropped below
    near_mask = delta[g_rows[:, None], cols] <= near  # (P_g, G)
    near_mask[:, 1:] &= cols[:, 1:] != cols[:, :-1]
    i, j = near_mask.nonzero(as_tuple=True)
    rows, cols = g_rows[i], cols[i, j]
    return (rows, cols, g_min) if rows.numel() <= most else (None, None, g_min)


def _exp_sums(delta: torch.Tensor, g_min: torch.Tensor, c: list[float], underflow: float, t: torch.Tensor,
              sums: torch.Tensor) -> None:
    """sums[k] = sum_j e^(-c[k] delta[:, j]) for every k, (K, B), from delta (B, C) >= 0 (0 somewhere in each row, so
    each sum is >= 1), its group minima g_min (_near_terms) and a scratch block t (B, C). delta may be clamped.

    Terms further than _FAR_NATS below the largest (e^0 = 1) are negligible (n e^-30 relative: 1e-9 nats for 10^4
    samples); that is used twice. Small sigmas: only groups of _GROUP columns whose minimum is within _FAR_NATS are
    summed, when those are few. Otherwise one pass each of e^x (as 2^(x log2 e): torch's float32 exp2 is much
    faster than its exp on CPU), its product and its sum over the block; delta is clamped at _FAR_NATS / c[k] first
    when e^(-c[k] delta) could become subnormal (much slower on a CPU): the sigmas go by increasing c, so one clamp
    serves the next ones while c * cap stays below `underflow` (every ~3 sigmas of the default grid)."""
    B, C = delta.shape
    full = C - C % _GROUP
    groups = delta[:, :full].view(B, -1, _GROUP)  # (B, G, _GROUP): the whole groups
    floor = -underflow * _LOG2_E
    cap = math.inf
    for k in sorted(range(len(c)), key=c.__getitem__):
        a = -c[k] * _LOG2_E
        live = g_min[:, :groups.shape[1]] < _FAR_NATS / c[k]  # (B, G)
        if full and int(live.sum()) < _SPARSE * live.numel():
            rows, g = live.nonzero(as_tuple=True)  # (P,)
            part = groups[rows, g].mul_(a).clamp_(min=floor).exp2_().sum(1)  # (P,) copies of the live groups
            sums[k].zero_().index_add_(0, rows, part)
            if full < C:  # the last, narrower group: always summed
                sums[k] += delta[:, full:].mul(a).clamp_(min=floor).exp2_().sum(1)
            continue
        if c[k] * cap > underflow:
            cap = _FAR_NATS / c[k]
            delta.clamp_(max=cap)
        torch.mul(delta, a, out=t).exp2_()
        torch.sum(t, dim=1, out=sums[k])


def block_workers(device: torch.device, blocks: int) -> int:
    """Threads running blocks of points at once: on CPU one per torch thread, at most one per block; else one."""
    return 1 if device.type != "cpu" else max(1, min(torch.get_num_threads(), blocks))


def run_blocks(run_block, starts: Sequence[int], workers: int) -> None:
    """run_block(p0) for every p0 of `starts`: in order on this thread when `workers` is 1, else spread over `workers`
    threads, each block on one thread with torch's intra-op threads set to 1 for the duration (restored after).

    Blocks of points are independent: each block's arithmetic is the same whichever thread runs it. On CPU it beats
    handing every operation both cores: the passes beside the matmul are each too short to split well
    (benchmarks/parzen.py; docs/performance.md). On an error or Ctrl-C the blocks not yet started are cancelled and
    the running ones finish. The thread count is torch's, for the whole process."""
    if workers <= 1:
        for p0 in starts:
            run_block(p0)
        return
    with torch_threads(1):
        pool = ThreadPoolExecutor(workers, thread_name_prefix="parzen")
        try:
            for future in [pool.submit(run_block, p0) for p0 in starts]:
                future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _log_likelihood(s: _Samples, points: torch.Tensor, sigmas: np.ndarray, batch_size: int,
                    sample_chunk: int) -> torch.Tensor:
    """(K, n_points) float64 log-likelihoods of `points` (n_points, d) under the Parzen window of `s`; blocks of
    `batch_size` points run side by side on the CPU's threads (`run_blocks`)."""
    n, d = s.raw.shape
    if batch_size < 1 or sample_chunk < 1:
        raise ParzenInputError(f"batch_size={batch_size}, sample_chunk={sample_chunk}", "both must be >= 1")
    dev, f64 = points.device, torch.float64
    c = [1.0 / (2.0 * float(sg) ** 2) for sg in sigmas]  # 1 / (2 sigma^2)
    c64 = torch.tensor(c, dtype=f64, device=dev)[:, None]  # (K, 1)
    const = torch.tensor(-math.log(n) - d * np.log(sigmas * math.sqrt(2 * math.pi)), dtype=f64, device=dev)  # (K,)
    out = torch.empty(len(c), points.shape[0], dtype=f64, device=dev)  # (K, n_points)
    chunks = sample_chunks(n, sample_chunk)
    buf_size = min(batch_size, points.shape[0]) * (chunks[0][1] - chunks[0][0]) * 2
    underflow = -math.log(torch.finfo(s.dtype).tiny)  # e^-x is subnormal beyond this: 87.3 (float32), 708 (float64)
    local = threading.local()  # one scratch buffer per thread

    def run_block(p0: int) -> None:
        if not hasattr(local, "buf"):
            local.buf = torch.empty(buf_size, dtype=s.dtype, device=dev)
        with torch.no_grad():  # grad mode is per thread
            out[:, p0:p0 + batch_size] = _block(s, points[p0:p0 + batch_size], chunks, c, c64, underflow,
                                                local.buf) + const[:, None]

    starts = range(0, points.shape[0], batch_size)
    run_blocks(run_block, starts, block_workers(dev, len(starts)))
    return out


def _block(s: _Samples, x_raw: torch.Tensor, chunks: list[tuple[int, int]], c: list[float], c64: torch.Tensor,
           underflow: float, buf: torch.Tensor) -> torch.Tensor:
    """(K, B) logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) over all samples, for one block of points x_raw (B, d)."""
    dev, f64 = x_raw.device, torch.float64
    x = x_raw.to(s.dtype) - s.mean  # (B, d) centred
    acc = torch.full((len(c), x.shape[0]), -math.inf, dtype=f64, device=dev)  # (K, B) running logsumexp
    # |error| of a float32 delta is ~ eps * (||x||^2 + ||s||^2): refine only where it would cost > 1e-3 nats
    err = 4 * torch.finfo(s.dtype).eps * (s.max_sq_norm + float(x.pow(2).sum(1).max()))
    near = _NEAR_NATS / max(c) if err * max(c) > _REFINE_ABOVE_NATS else 0.0
    for s0, s1 in chunks:
        sc = s.centred[s0:s1]  # (C, d)
        B, C = x.shape[0], sc.shape[0]
        e = buf[:B * C].view(B, C)
        torch.addmm(s.sq_norm[s0:s0 + C], x, sc.T, alpha=-2.0, out=e)  # (B, C) ||s||^2 - 2 x.s
        rows, cols, g_min = _near_terms(e, near, _MAX_NEAR_PER_POINT * B)
        delta = e  # (B, C) >= 0 (_near_terms subtracted each row's minimum in place)
        if rows is not None:  # these distances from explicit differences, in float64
            diff = x_raw.index_select(0, rows).to(f64).sub_(s.raw.index_select(0, s0 + cols))  # (P, d)
            d_exact = torch.linalg.vecdot(diff, diff)  # (P,)
            m = torch.full((B,), math.inf, dtype=f64, device=dev).scatter_reduce_(0, rows, d_exact, "amin")  # (B,)
            delta[rows, cols] = (d_exact - m[rows]).to(s.dtype)
        else:  # many near-equal terms (e.g. a collapsed generator): this block in float64
            e64 = torch.addmm(s.sq_norm64[s0:s0 + C], x.to(f64), sc.to(f64).T, alpha=-2.0)  # (B, C)
            idx = e64.argmin(dim=1)  # (B,)
            diff = x_raw.to(f64).sub_(s.raw.index_select(0, s0 + idx))  # (B, d)
            m = torch.linalg.vecdot(diff, diff)  # (B,) exact ||x - s_nearest||^2
            delta.copy_(e64 - e64.gather(1, idx[:, None]))
        sums = torch.empty(len(c), B, dtype=s.dtype, device=dev)  # (K, B)
        _exp_sums(delta, g_min, c, underflow, buf[B * C:2 * B * C].view(B, C), sums)
        # the chunk's logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) = -m/(2 sigma^2) + log sum_i exp(-delta/(2 sigma^2))
        acc = torch.logaddexp(acc, sums.to(f64).log_() - c64 * m)  # (K, B)
    return acc


def parzen_log_likelihood(samples: ArrayLike, points: ArrayLike, sigmas: float | Sequence[float] | np.ndarray, *,
                          batch_size: int = BATCH_SIZE, sample_chunk: int = SAMPLE_CHUNK,
                          device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> ArrayLike:
    """log mean_i N(x; s_i, sigma^2 I) for every sigma and every point: shape (len(sigmas), n_points), float64.

    `samples` (n, ...) and `points` (n_points, ...) are flattened to (n, d), (n_points, d). Returns a numpy array when
    `points` is one, else a tensor on `device` (default: the inputs' device, else CPU). `dtype` is the arithmetic of
    the distance matrix (float32 by default; float64 for a slower, near-exact check).
    """
    dev = _device(device, samples, points)
    with torch.no_grad():
        s = _Samples(_as_2d(samples, "samples", dev), dtype)
        x = _as_2d(points, "points", dev, s.raw.shape[1])
        ll = _log_likelihood(s, x, _sigmas(sigmas), batch_size, sample_chunk)
    return ll if isinstance(points, torch.Tensor) else ll.cpu().numpy()


def parzen_log_likelihood_reference(samples: ArrayLike, points: ArrayLike,
                                    sigma: float | Sequence[float]) -> np.ndarray:
    """Straightforward float64 numpy version (explicit differences, a few points at a time): the baseline of the tests
    and the benchmark. Shape (n_points,) for a scalar sigma, (len(sigma), n_points) for a sequence."""
    s = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)  # (n, d)
    x = np.asarray(points, dtype=np.float64).reshape(len(points), -1)  # (n_points, d)
    sig = np.atleast_1d(np.asarray(sigma, dtype=np.float64))  # (K,)
    n, d = s.shape
    block = max(1, 4_000_000 // s.size)  # ~32 MB of differences at a time
    out = np.empty((len(sig), len(x)))
    for p0 in range(0, len(x), block):
        diff = x[p0:p0 + block, None, :] - s[None, :, :]  # (b, n, d)
        sq = np.einsum("bnd,bnd->bn", diff, diff)  # (b, n)
        for k, sg in enumerate(sig):
            a = -sq / (2 * sg**2)  # (b, n)
            top = a.max(axis=1)  # (b,) logsumexp = top + log sum exp(a - top)
            out[k, p0:p0 + block] = (top + np.log(np.exp(a - top[:, None]).sum(axis=1)) - math.log(n)
                                     - d * math.log(sg * math.sqrt(2 * math.pi)))
    return out[0] if np.ndim(sigma) == 0 else out


def sigma_on_edge(sigma: float, sigmas: Sequence[float] | np.ndarray) -> bool:
    """True when `sigma` is the smallest or largest of a grid of two or more values (a single sigma is no choice)."""
    sigmas = np.asarray(sigmas, dtype=np.float64)
    return bool(sigmas.size > 1 and (sigma <= sigmas.min() or sigma >= sigmas.max()))


def _select(s: _Samples, valid: torch.Tensor, sigmas: np.ndarray, batch_size: int, sample_chunk: int, warn: bool):
    mean_ll = _log_likelihood(s, valid, sigmas, batch_size, sample_chunk).mean(1).cpu().numpy()  # (K,)
    best = float(sigmas[int(np.argmax(mean_ll))])
    if warn and sigma_on_edge(best, sigmas):
        warnings.warn(f"Parzen sigma {best:.4g} is on the edge of the grid [{sigmas.min():.4g}, {sigmas.max():.4g}]; "
                      "the best sigma may lie outside it -- widen the grid", SigmaOnEdgeWarning, stacklevel=3)
    return best, mean_ll


def select_sigma(samples: ArrayLike, valid: ArrayLike, sigmas: Sequence[float] | np.ndarray | None = None, *,
                 batch_size: int = BATCH_SIZE, sample_chunk: int = SAMPLE_CHUNK,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
                 warn: bool = True) -> tuple[float, np.ndarray]:
    """The sigma of the grid (default `sigma_grid()`) with the best mean validation log-likelihood, and the mean
    log-likelihood per sigma. Warns (`SigmaOnEdgeWarning`) when it is on the grid's edge; see `sigma_on_edge`."""
    dev = _device(device, samples, valid)
    with torch.no_grad():
        s = _Samples(_as_2d(samples, "samples", dev), dtype)
        return _select(s, _as_2d(valid, "valid", dev, s.raw.shape[1]), _sigmas(sigmas), batch_size, sample_chunk, warn)


@dataclass(frozen=True)
class ParzenResult:
    """Table 1's numbers for one model: sigma chosen on validation, test mean log-likelihood and standard error."""

    sigma: float
    sigmas: tuple[float, ...]
    valid_ll: tuple[float, ...]  # mean validation log-likelihood per sigma
    test_mean: float
    test_stderr: float  # std / sqrt(n_test), ddof=0 like the original parzen_ll.py
    n_samples: int
    n_valid: int
    n_test: int
    on_edge: bool
    seconds: float

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, report: dict) -> "ParzenResult":
        """The result held in `to_dict()`'s keys of `report` (other keys, e.g. a run's, are ignored)."""
        return cls(**{f.name: tuple(report[f.name]) if isinstance(report[f.name], list) else report[f.name]
                      for f in fields(cls)})

    def table_line(self, name: str = "Adversarial nets (this run)", dataset: str | None = None) -> str:
        """One Table-1 style line, e.g.
        `Adversarial nets (this run)  mnist  LL 225.1 ± 2.0 (sigma 0.167, 10000 samples, 10000 test points)`."""
        head = f"{name}  {dataset}" if dataset else name
        edge = " [sigma on grid edge]" if self.on_edge else ""
        return (f"{head}  LL {self.test_mean:.1f} ± {self.test_stderr:.1f} (sigma {self.sigma:.3g}, "
                f"{self.n_samples} samples, {self.n_test} test points){edge}")


def parzen_evaluate(samples: ArrayLike, valid: ArrayLike, test: ArrayLike,
                    sigmas: Sequence[float] | np.ndarray | None = None, *, batch_size: int = BATCH_SIZE,
                    sample_chunk: int = SAMPLE_CHUNK, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32, warn: bool = True) -> ParzenResult:
    """The full protocol: choose sigma on `valid`, then the test log-likelihood at that sigma (mean ± std/sqrt(n))."""
    t0 = time.perf_counter()
    dev = _device(device, samples, valid, test)
    grid = _sigmas(sigmas)
    with torch.no_grad():
        s = _Samples(_as_2d(samples, "samples", dev), dtype)
        v, te = _as_2d(valid, "valid", dev, s.raw.shape[1]), _as_2d(test, "test", dev, s.raw.shape[1])
        sigma, mean_ll = _select(s, v, grid, batch_size, sample_chunk, warn)
        ll = _log_likelihood(s, te, np.array([sigma]), batch_size, sample_chunk)[0].cpu().numpy()  # (n_test,)
    return ParzenResult(sigma=sigma, sigmas=tuple(float(x) for x in grid), valid_ll=tuple(float(x) for x in mean_ll),
                        test_mean=float(ll.mean()), test_stderr=float(ll.std() / math.sqrt(ll.size)),
                        n_samples=int(s.raw.shape[0]), n_valid=int(v.shape[0]), n_test=int(ll.size),
                        on_edge=sigma_on_edge(sigma, grid), seconds=time.perf_counter() - t0)
