"""The section-7 extensions on a small trained run: learned inference, inpainting, semi-supervised features; each
command writes what its library function returns."""
import numpy as np
import pytest
import torch

from advnets.cli import main
from advnets.config import make_config
from advnets.data import load_split
from advnets.errors import AdvnetsError
from advnets.extensions.inference import fit_inferer, inference_errors, inference_report
from advnets.extensions.inpaint import inpaint, inpaint_report, known_error, make_mask
from advnets.extensions.semisup import d_features, semisup_accuracies, semisup_report, stratified_labels
from advnets.run import load_run
from advnets.training import train
from advnets.run.checkpoint import load_checkpoint
from tests.eval.test_run_reports import same_json


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, digits_images):
    from tests.conftest import TINY
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("ext") / "run"
    # a wider G init than TINY's: the tiny G must depend visibly on z for inference and inpainting to be testable
    overrides = {**TINY, "train.epochs": 3, "model.generator_init_range": 0.5}
    train(make_config(overrides=overrides), run, train_images=digits_images)
    return run


def test_inference_recovers_z_well_below_the_prior_variance(run_dir, digits_images):
    run = load_run(run_dir)
    E, history = fit_inferer(run, steps=800, batch_size=64, hidden=(64, 64), seed=0)
    assert history[-1] < history[0]
    real = load_split("digits", "valid").images[:50]
    report, recon = inference_errors(run, E, real, digits_images.mean(0), n_fresh=500)
    assert report["z_mse_fresh"] < 0.5 * report["z_mse_baseline_prior_variance"]
    assert recon.shape == real.shape
    # G(E(x)) is a fit of x: closer to it than an unrelated random sample
    assert report["pixel_mse_reconstruction"] < report["pixel_mse_random_sample"]


def test_inpainting_keeps_known_pixels_and_lowers_their_error(run_dir):
    run = load_run(run_dir)
    target = torch.as_tensor(load_split("digits", "valid").images[:6])
    for kind in ("right-half", "random"):
        mask = make_mask(kind, 6, run.image_shape, seed=1)
        assert 0.3 < mask.mean() < 0.7
        result = inpaint(run, target, mask, steps=60, restarts=3, lr=0.05, seed=0)
        known = mask.bool()
        assert torch.equal(result["completion"][known], target[known])                  # known pixels exact
        assert torch.allclose(result["completion"][~known], result["generated"][~known])
        assert (result["final_error"] < result["initial_error"]).all()
        assert torch.allclose(result["final_error"], known_error(result["generated"], target, mask), atol=1e-5)
        assert result["z"].abs().max() <= 3 ** 0.5 + 1e-6                              # uniform prior: clamped
    right = make_mask("right-half", 1, run.image_shape)
    assert right[0, 0, :, :4].all() and not right[0, 0, :, 4:].any()


def test_semisup_columns_and_label_draws(run_dir):
    run = load_run(run_dir)
    train_split, test = load_split("digits", "train"), load_split("digits", "test")
    idx = stratified_labels(train_split.labels, 50, seed=3)
    assert len(idx) == 50 and len(set(idx)) == 50
    assert np.bincount(train_split.labels[idx], minlength=10).tolist() == [5] * 10
    assert np.array_equal(idx, stratified_labels(train_split.labels, 50, seed=3))
    feats = d_features(run.discriminator, test.images[:7])
    assert feats.shape == (7, sum(run.discriminator.units))
    report = semisup_accuracies(run, train_split, test, counts=(30, 100), scratch_epochs=5)
    assert [r["labels"] for r in report["results"]] == [30, 100]
    for r in report["results"]:
        for col in ("d_features_linear", "pixels_linear", "scratch_same_architecture"):
            assert 0.0 <= r[col] <= 1.0
    # 100 labels of 8x8 digits: a linear classifier on pixels is far above chance (0.1)
    assert report["results"][1]["pixels_linear"] > 0.6


def test_semisup_without_labels_is_a_user_error(run_dir):
    from advnets.data.split import Split
    run = load_run(run_dir)
    unlabelled = Split(np.zeros((10, 1, 8, 8), np.float32), None)
    with pytest.raises(AdvnetsError, match="no labels"):
        semisup_accuracies(run, unlabelled, unlabelled)


def test_commands_write_what_the_library_returns(run_dir, tmp_path, capsys):
    run = load_run(run_dir)
    assert main(["infer", str(run_dir), "--steps", "30", "--n", "20", "--seed", "1"]) == 0
    report, E, figure = inference_report(run, steps=30, n=20, seed=1)
    same_json(run_dir / "eval" / "infer.json", report)
    assert {"z_mse_fresh", "pixel_mse_reconstruction", "pixel_mse_mean_training_image"} <= set(report)
    assert report["inferer"] == "MLP d-1200-1200-noise_dim ReLU, MSE, Adam lr 1e-3, batch 100"
    saved = load_checkpoint(run_dir / "checkpoints" / "inference.pt", required=("inferer",))
    assert saved["hidden"] == [1200, 1200] and saved["steps"] == 30 and saved["seed"] == 1
    assert all(torch.equal(saved["inferer"][k], v) for k, v in E.state_dict().items())
    assert np.array_equal(_png(run_dir / "figures" / "infer.png"), figure)

    assert main(["figure", "inpaint", str(run_dir), "--steps", "20", "--n", "4", "--restarts", "2",
                 "--mask", "random"]) == 0
    report, figure = inpaint_report(run, mask="random", n=4, steps=20, restarts=2)
    same_json(run_dir / "eval" / "inpaint.json", report)
    assert report["known_mse_final"] < report["known_mse_initial"]
    assert np.array_equal(_png(run_dir / "figures" / "inpaint.png"), figure)

    assert main(["semisup", str(run_dir), "--labels", "20,40", "--scratch-epochs", "2", "--n-test", "100"]) == 0
    report = semisup_report(run, counts=(20, 40), scratch_epochs=2, n_test=100)
    same_json(run_dir / "eval" / "semisup.json", report)
    assert report["n_test"] == 100 and len(report["results"]) == 2
    assert report["scratch"].startswith("D's maxout layers + linear head, D's init, Adam lr 1e-3, batch 100, fixed 2")
    assert "D features" in capsys.readouterr().out


def _png(path) -> np.ndarray:
    """A PNG as (H, W, C) uint8, as the figure functions return it."""
    from PIL import Image

    with Image.open(path) as image:
        array = np.asarray(image)
    return array[..., None] if array.ndim == 2 else array


def test_command_errors_are_one_line(run_dir, tmp_path, capsys):
    assert main(["semisup", str(run_dir), "--labels", "20,many"]) == 1
    assert "--labels must be comma-separated whole numbers" in capsys.readouterr().err
    assert main(["infer", str(tmp_path / "nope")]) == 1
    assert "not a run directory" in capsys.readouterr().err
