import numpy as np
import pytest
import torch

from advnets.eval.neighbours import memorisation_report, nearest_neighbours


def test_nearest_neighbours_against_brute_force():
    rng = np.random.default_rng(0)
    reference = rng.random((3000, 64)).astype(np.float32)
    queries = np.concatenate([reference[[5, 2999, 1234]] + 1e-3, rng.random((40, 64), dtype=np.float32)])
    index, dist = nearest_neighbours(queries, reference, chunk=700)      # chunk boundaries inside the data
    brute = np.sqrt(((queries[:, None].astype(np.float64) - reference[None]) ** 2).sum(-1))
    assert index[:3].tolist() == [5, 2999, 1234]
    assert np.array_equal(index.numpy(), brute.argmin(1))
    assert np.allclose(dist.numpy(), brute.min(1), rtol=1e-12)
    assert dist[0].item() == pytest.approx(1e-3 * 8, rel=1e-3)            # sqrt(64) * 1e-3


def test_memorisation_report_detects_copies():
    rng = np.random.default_rng(1)
    train = rng.random((500, 16))
    held_out = rng.random((100, 16))
    copies = train[:100] + rng.normal(0, 1e-3, (100, 16))
    fresh = memorisation_report(rng.random((100, 16)), train, held_out)
    copied = memorisation_report(copies, train, held_out)
    assert 0.8 < fresh["ratio"] < 1.25
    assert copied["ratio"] < 0.01


def test_dimension_mismatch():
    with pytest.raises(ValueError, match="dimensions"):
        nearest_neighbours(torch.zeros(2, 3), torch.zeros(4, 5))


def test_memorisation_report_has_no_ratio_when_the_held_out_images_are_training_examples():
    rng = np.random.default_rng(2)
    train = rng.random((50, 16))
    report = memorisation_report(rng.random((20, 16)), train, train[:10])
    assert report["held_out_mean_nn_distance"] == 0.0
    assert report["ratio"] is None
    assert report["samples_mean_nn_distance"] > 0.1
