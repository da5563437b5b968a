"""Figures 2 and 3 and the eval command on a small trained run."""
import json

import numpy as np
import pytest
import torch

from advnets.cli import main
from advnets.config import make_config
from advnets.figures.grids import HIGHLIGHT, interpolation_figure, samples_figure
from advnets.runs import load_run
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
    run = load_run(run_dir)
    grid = interpolation_figure(run, rows=2, steps=5, seed=1)
    assert grid.shape == (2 + 2 * 10, 2 + 5 * 10, 1)
    a = grid[2:10, 2:10, 0].astype(int)
    b = grid[2:10, 12:20, 0].astype(int)
    e = grid[2:10, 42:50, 0].astype(int)
    assert np.abs(a - b).sum() < np.abs(a - e).sum()                    # neighbours on a line are closer


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
