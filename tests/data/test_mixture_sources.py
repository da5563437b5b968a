"""The 2-D mixtures as dataset sources (data/registry.py): shapes, labels, and draws fixed by the run's seed."""
import numpy as np
import pytest

from advnets.config import make_config
from advnets.data import load_data_split, load_split
from advnets.data.mixtures import mixture_means, mixture_sigma
from advnets.errors import ConfigError


@pytest.mark.parametrize("name, modes", [("grid", 25), ("ring", 8)])
def test_mixture_source_shapes_labels_and_sizes(name, modes):
    train = load_split(name, "train", seed=7)
    assert train.images.shape == (100_000, 1, 1, 2) and train.images.dtype == np.float32
    assert train.labels.shape == (100_000,) and set(np.unique(train.labels)) == set(range(modes))
    # every point lies near the mean of the component it is labelled with (6 sigma: p < 1e-7 per point)
    points = train.images.reshape(-1, 2)
    distance = np.linalg.norm(points - mixture_means(name)[train.labels], axis=1)
    assert distance.max() < 6 * mixture_sigma(name)
    assert abs(distance.mean() / mixture_sigma(name) - np.sqrt(np.pi / 2)) < 0.02   # Rayleigh mean
    assert load_split(name, "valid", seed=7).images.shape == (10_000, 1, 1, 2)
    assert load_split(name, "test", seed=7).images.shape == (10_000, 1, 1, 2)


def test_the_seed_fixes_the_draw_and_splits_differ():
    a, b, c = (load_split("ring", "train", seed=s).images for s in (3, 3, 4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    valid = load_split("ring", "valid", seed=3).images
    assert not np.array_equal(a[:10_000], valid)


def test_data_config_seed_defaults_to_the_run_seed():
    run_seeded = make_config(None, {"data.dataset": "grid"}).data
    assert run_seeded.mixture_seed is None
    assert np.array_equal(load_data_split(run_seeded, "train", run_seed=5).images,
                          load_split("grid", "train", seed=5).images)
    fixed = make_config(None, {"data.dataset": "grid", "data.mixture_seed": 11}).data
    assert np.array_equal(load_data_split(fixed, "train", run_seed=5).images,
                          load_split("grid", "train", seed=11).images)


def test_unknown_dataset_suggests_the_mixture():
    with pytest.raises(ConfigError, match="grid"):
        make_config(None, {"data.dataset": "gridd"})
