"""Figures 2 and 3 and the eval command on a small trained run."""
import json

import numpy as np
import pytest
import torch

from advnets.cli import main
from advnets.config import make_config
from advnets.figures.paper_figures import HIGHLIGHT, interpolation_figure, samples_figure
from advnets.run.loaded import load_run
from advnets.training import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, digits_images):
    from tests.conftest import TINY
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("fig") / "run"
    train(make_config(overrides={**TINY, "train.epochs": 1}), run, train_images=digits_images)
    return run


def test_samples_figure_layout(run_dir, digits_images):
    run = load_run(run_dir)
    grid = samples_figure(run, digits_images, rows=3, cols=4, seed=5)
    assert grid.shape == (2 + 3 * 10, 2 + 4 * 10, 3)                    # 8x8 tiles with 2-pixel gaps
    # the last column is framed, the others are not
    assert (grid[1, 2 + 3 * 10 - 1] == HIGHLIGHT).all()
    assert not (grid[1, 1] == HIGHLIGHT).all()
    # the framed tile is an actual training image: the nearest to the sample beside it
    tile = grid[2:10, 32:40, 0].astype(np.float64) / 255
    distances = np.abs(digits_images[:, 0] - tile).max(axis=(1, 2))
    assert distances.min() < 1 / 255 + 1e-6
    samples = run.sample(9, seed=5).reshape(3, 3, 1, 8, 8)
    beside = samples[0, -1, 0].numpy()
    nn = digits_images[np.argmin(((digits_images[:, 0] - beside) ** 2).sum(axis=(1, 2)))][0]
    assert np.abs(nn - tile).max() < 1 / 255 + 1e-6


def test_interpolation_rows_are_straight_lines(run_dir):
    # With G replaced by an affine map (output in (0, 1)), the tiles along a straight line in z must be the affine
    # interpolation of the row's two end tiles: x(t) = (1 - t) x(0) + t x(1), up to the PNG's 1/255 rounding.
    run = load_run(run_dir)
    affine = torch.nn.Linear(run.config.model.noise_dim, 64)
    with torch.no_grad():
        affine.weight.uniform_(-0.05, 0.05, generator=torch.Generator().manual_seed(0))
        affine.bias.fill_(0.5)
    run.generator = lambda z: affine(z).view(-1, 1, 8, 8)
    rows, steps = 3, 6
    grid = interpolation_figure(run, rows=rows, steps=steps, seed=1).astype(np.float64) / 255
    assert grid.shape == (2 + rows * 10, 2 + steps * 10, 1)
    tile = lambda r, i: grid[2 + 10 * r:10 + 10 * r, 2 + 10 * i:10 + 10 * i, 0]
    for r in range(rows):
        first, last = tile(r, 0), tile(r, steps - 1)
        assert np.abs(first - last).max() > 0.05                          # the two ends differ
        for i in range(1, steps - 1):
            t = i / (steps - 1)
            assert np.abs(tile(r, i) - ((1 - t) * first + t * last)).max() <= 1.5 / 255
    assert np.abs(tile(0, 0) - tile(1, 0)).max() > 0.05                   # each row its own line


def test_eval_and_figure_commands(run_dir, capsys):
    assert main(["eval", str(run_dir), "--parzen", "--nearest", "--n-samples", "300"]) == 0
    out = capsys.readouterr().out
    assert "LL" in out and "±" in out and "nearest training example" in out
    report = json.loads((run_dir / "eval" / "parzen.json").read_text())
    assert report["n_samples"] == 300 and report["dataset"] == "digits"
    assert np.isfinite(report["test_mean"]) and report["test_stderr"] > 0
    assert main(["figure", "samples", str(run_dir), "--rows", "2"]) == 0
    assert main(["figure", "interpolate", str(run_dir), "--rows", "2", "--steps", "4"]) == 0
    assert (run_dir / "figures" / "samples.png").is_file() and (run_dir / "figures" / "interpolate.png").is_file()
