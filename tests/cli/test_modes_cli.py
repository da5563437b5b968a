"""`advnets figure scatter` and `advnets eval --coverage` on a short 2-D run."""
import json

import numpy as np
import pytest

from advnets.data.mixtures import mixture_means, mixture_sigma
from advnets.eval.coverage import mixture_coverage
from advnets.run.loaded import load_run
from tests.cli.test_cli import assert_user_error, run_main
from tests.training.test_coverage import _grid_trainer


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("modes") / "grid"
    _grid_trainer(run, **{"train.epochs": 1}).run()
    return run


def test_eval_coverage_writes_the_three_numbers(grid_run, capsys):
    proc = run_main(capsys, "eval", grid_run, "--coverage", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((grid_run / "eval" / "coverage.json").read_text())
    samples = load_run(grid_run).sample(2500, seed=3).reshape(-1, 2)
    expected = mixture_coverage(samples, mixture_means("grid"), mixture_sigma("grid"))
    assert report["modes_captured"] == expected["modes_captured"] and report["n"] == 2500
    assert report["high_quality"] == pytest.approx(expected["high_quality"])
    assert report["histogram"] == expected["histogram"] and report["dataset"] == "grid"
    assert f"{expected['modes_captured']}/25 modes captured" in proc.stdout
    assert not (grid_run / "eval" / "parzen.json").exists()        # --coverage alone does not run Parzen


def test_figure_scatter_draws_a_png(grid_run, capsys):
    from PIL import Image

    out = grid_run / "figures" / "s.png"
    proc = run_main(capsys, "figure", "scatter", grid_run, "--n", "500", "--out", out)
    assert proc.returncode == 0, proc.stderr
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape[0] > 300 and image.shape[1] > 300 and image.std() > 10      # drawn, not blank
    assert "500 samples over the 25 means" in proc.stdout


def test_coverage_of_an_image_run_is_refused(tmp_path, capsys, tiny_overrides, digits_images):
    from advnets.config import make_config
    from advnets.training.trainer import Trainer

    cfg = make_config(None, {**tiny_overrides, "train.epochs": 1, "train.tensorboard": False})
    Trainer(cfg, tmp_path / "img", train_images=digits_images[:100]).run()
    assert_user_error(run_main(capsys, "figure", "scatter", tmp_path / "img"), "not on a 2-D mixture")
