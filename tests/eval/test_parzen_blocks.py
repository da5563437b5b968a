"""The pieces of the fast Parzen path (eval/parzen.py) against plain computations: the near-term search by column
groups, the sparse sums at small sigmas, the clamps, the equal chunks."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from advnets.eval import parzen
from advnets.eval.parzen import parzen_log_likelihood, parzen_log_likelihood_reference, sample_chunks, sigma_grid
from advnets.threads import torch_threads


@pytest.mark.parametrize("columns", [5, 64, 130, 640])     # narrower than a group, whole groups, a narrow tail
@pytest.mark.parametrize("near", [0.0, 0.3])
def test_near_terms_are_every_term_within_near_of_the_row_minimum(columns, near):
    gen = torch.Generator().manual_seed(columns)
    e = torch.rand(9, columns, generator=gen, dtype=torch.float64) * 3 + 5
    e[2, -1] = e[2].min() - 1.0                                        # a minimum in the last column
    e[4, :] = e[4, 0]                                                  # a row of ties: every term is a minimum
    want = e - e.amin(1, keepdim=True)
    delta = e.clone()
    rows, cols, g_min = parzen._near_terms(delta, near, 10**6)
    assert torch.equal(delta, want)                                   # delta in place, exactly 0 at the minima
    expected = set(zip(*(want <= near).nonzero(as_tuple=True)))
    got = list(zip(rows.tolist(), cols.tolist()))
    assert len(got) == len(set(got)) and set(got) == {(int(r), int(c)) for r, c in expected}
    groups = math.ceil(columns / parzen._GROUP)
    assert g_min.shape == (9, groups)
    for g in range(groups):
        assert torch.equal(g_min[:, g], want[:, g * parzen._GROUP:(g + 1) * parzen._GROUP].amin(1))
    assert parzen._near_terms(e.clone(), near, len(expected) - 1)[0] is None   # too many: the float64 path


@pytest.mark.parametrize("columns", [64 * 7, 64 * 7 + 23])
def test_sparse_and_dense_sums_agree_with_float64(columns, monkeypatch):
    # rows whose terms spread from 0 to 60 nats: at the large c most groups are dead (the sparse path)
    gen = torch.Generator().manual_seed(1)
    delta = torch.rand(6, columns, generator=gen) * 12
    delta[:, 3] = 0.0
    c = [0.5, 2.0, 5.0, 40.0, 300.0]
    want = torch.stack([torch.exp(-ck * delta.double()).sum(1) for ck in c])   # (K, B)
    for sparse in (0.0, 1.1):                                         # never / always the sparse path (when it can)
        monkeypatch.setattr(parzen, "_SPARSE", sparse)
        d = delta.clone()
        _, _, g_min = parzen._near_terms(d, 0.0, 10**6)
        sums = torch.empty(len(c), 6)
        parzen._exp_sums(d, g_min, c, -math.log(torch.finfo(torch.float32).tiny), torch.empty_like(d), sums)
        # dropped or clamped terms are below e^-30 each: n e^-30 relative at most
        assert torch.allclose(sums.double(), want, rtol=1e-6 + columns * math.exp(-30), atol=0)


def test_sums_never_take_a_subnormal_exponential(monkeypatch):
    # what the clamps are for: every value exp2 receives stays above float32's smallest normal exponent
    seen = []
    exp2 = torch.Tensor.exp2_
    monkeypatch.setattr(torch.Tensor, "exp2_", lambda t: seen.append(float(t.min())) or exp2(t))
    delta = torch.rand(4, 640, generator=torch.Generator().manual_seed(2)) * 500
    delta[:, 0] = 0.0
    c = [1.0 / (2 * s ** 2) for s in sigma_grid()]
    for sparse in (0.0, 1.1):
        monkeypatch.setattr(parzen, "_SPARSE", sparse)
        d = delta.clone()
        _, _, g_min = parzen._near_terms(d, 0.0, 10**6)
        parzen._exp_sums(d, g_min, c, -math.log(torch.finfo(torch.float32).tiny), torch.empty_like(d),
                         torch.empty(len(c), 4))
    assert len(seen) >= 2 * len(c) and min(seen) >= -126.0


def test_sample_chunks_are_equal_and_cover_the_samples():
    assert sample_chunks(10_000, 8192) == [(0, 5000), (5000, 10_000)]
    assert sample_chunks(10, 3) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    for n, chunk in ((1, 5), (7, 7), (10_001, 4096), (13, 1)):
        spans = sample_chunks(n, chunk)
        assert spans[0][0] == 0 and spans[-1][1] == n and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        assert max(b - a for a, b in spans) <= chunk and len(spans) == -(-n // chunk)


def test_spread_out_data_uses_the_sparse_path_and_matches_the_reference(monkeypatch):
    # uniform pixels in 784 dimensions: the small sigmas of the grid have few live groups
    calls = []
    take = torch.Tensor.nonzero
    rng = np.random.default_rng(8)
    samples, points = rng.random((700, 784), dtype=np.float32), rng.random((40, 784), dtype=np.float32)
    monkeypatch.setattr(torch.Tensor, "nonzero", lambda t, **kw: calls.append(t.shape) or take(t, **kw))
    fast = parzen_log_likelihood(samples, points, sigma_grid())
    assert sum(1 for shape in calls if len(shape) == 2 and shape[1] == 700 // parzen._GROUP) > 0
    ref = parzen_log_likelihood_reference(samples, points, sigma_grid())
    assert np.abs(fast - ref).max() < 1e-3


def test_blocks_side_by_side_give_the_sequential_result():
    # with two torch threads the blocks of points run on two threads, one thread each; with one, in order. Every
    # block does the same single-threaded arithmetic either way (atol: room for a BLAS that rounds by alignment)
    rng = np.random.default_rng(11)
    samples, points = rng.random((700, 784), dtype=np.float32), rng.random((300, 784), dtype=np.float32)
    with torch_threads(1):
        assert parzen.block_workers(torch.device("cpu"), 10) == 1
        alone = parzen_log_likelihood(samples, points, sigma_grid(), batch_size=32)
    with torch_threads(2):
        assert parzen.block_workers(torch.device("cpu"), 10) == 2
        assert parzen.block_workers(torch.device("cpu"), 1) == 1           # never more workers than blocks
        side_by_side = parzen_log_likelihood(samples, points, sigma_grid(), batch_size=32)
        assert torch.get_num_threads() == 2                                # restored
    np.testing.assert_allclose(side_by_side, alone, rtol=0, atol=1e-6)
    np.testing.assert_allclose(side_by_side[:, :20],
                               parzen_log_likelihood_reference(samples, points[:20], sigma_grid()), atol=1e-3)


def test_run_blocks_uses_one_torch_thread_per_block_and_covers_every_start():
    import threading

    seen, lock = [], threading.Lock()

    def block(p0):
        with lock:
            seen.append((p0, torch.get_num_threads(), threading.current_thread().name))

    with torch_threads(2):
        parzen.run_blocks(block, range(0, 100, 10), workers=2)
        assert torch.get_num_threads() == 2
    assert sorted(p0 for p0, _, _ in seen) == list(range(0, 100, 10))
    assert all(n == 1 and name.startswith("parzen") for _, n, name in seen)


def test_run_blocks_stops_at_an_error_and_restores_the_threads():
    import threading
    import time

    started, lock = [], threading.Lock()

    def block(p0):
        with lock:
            started.append(p0)
        if p0 == 0:
            raise ValueError("bad block")
        time.sleep(0.01)

    with torch_threads(2):
        with pytest.raises(ValueError, match="bad block"):
            parzen.run_blocks(block, range(200), workers=2)
        assert torch.get_num_threads() == 2
    assert len(started) < 200                                              # the blocks not yet started: cancelled
