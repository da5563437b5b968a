"""The Toronto Face Database from a .mat file in its real layout (built small with scipy.io.savemat)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import advnets.data.tfd as tfd
from advnets.config import make_config
from advnets.data import load_split
from advnets.errors import ConfigError, DataError

N = 60


def make_tfd(path, n: int = N, seed: int = 0):
    """TFD_48x48.mat as pylearn2 reads it: images (N, 48, 48) uint8, folds (N, 5) with 0 unlabelled, 1 train,
    2 valid, 3 test; labs_ex (N, 1) expression 1..7 (-1 unlabelled); labs_id (N, 1) identity."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
    folds = np.zeros((n, 5), dtype=np.uint8)               # the first half unlabelled in every fold
    for k in range(5):                                      # the labelled half rotates through train/valid/test
        folds[n // 2:, k] = np.roll(np.repeat([1, 1, 1, 2, 3], n // 10), 6 * k)
    labs_ex = np.where(folds[:, :1] == 0, -1, rng.integers(1, 8, (n, 1))).astype(np.int16)
    labs_id = rng.integers(1, 100, (n, 1)).astype(np.int32)
    savemat(path, {"images": images, "folds": folds, "labs_ex": labs_ex, "labs_id": labs_id})
    return images, folds, labs_ex


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv("PYLEARN2_DATA_PATH", raising=False)
    tfd._read_mat.cache_clear()


def test_splits_of_a_fold_and_pixel_values(tmp_path):
    images, folds, labs_ex = make_tfd(tmp_path / tfd.FILENAME)
    for fold in (0, 3):
        train, valid, test = (load_split("tfd", s, data_dir=tmp_path, fold=fold) for s in ("train", "valid", "test"))
        assert train.images.shape == (N // 2, 1, 48, 48) and train.labels is None     # the unlabelled half
        rows = {s: np.flatnonzero(folds[:, fold] == v) for s, v in (("valid", 2), ("test", 3))}
        assert len(valid) == len(rows["valid"]) == 6 and len(test) == len(rows["test"]) == 6
        assert np.array_equal(valid.images[:, 0] * 255, images[rows["valid"]].astype(np.float32))
        assert test.labels.tolist() == (labs_ex[rows["test"], 0] - 1).tolist()          # expressions 0..6
    assert train.images[5, 0, 47, 0] == np.float32(images[5, 47, 0]) / np.float32(255)
    assert train.images[5, 0, 0, 47] == np.float32(images[5, 0, 47]) / np.float32(255)  # rows stay rows
    # the .mat path itself is accepted as --data-dir, and so is $PYLEARN2_DATA_PATH/faces/TFD
    assert np.array_equal(load_split("tfd", "test", data_dir=tmp_path / tfd.FILENAME).images,
                          load_split("tfd", "test", data_dir=tmp_path).images)


def test_pylearn2_data_path(tmp_path, monkeypatch):
    (tmp_path / "faces" / "TFD").mkdir(parents=True)
    make_tfd(tmp_path / "faces" / "TFD" / tfd.FILENAME)
    monkeypatch.setenv("PYLEARN2_DATA_PATH", str(tmp_path))
    assert len(load_split("tfd", "valid", cache_dir=tmp_path / "cache")) == 6


def test_absent_file_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError) as info:
        load_split("tfd", "train", data_dir=tmp_path / "faces", cache_dir=tmp_path / "cache")
    err = info.value
    assert tfd.FILENAME in err.message and str(tmp_path / "faces") in err.message
    assert "not public" in err.hint and "--data-dir" in err.hint and ".cache/advnets/tfd" in err.hint


def test_wrong_layouts(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / tfd.FILENAME, {"images": np.zeros((4, 32, 32), np.uint8), "folds": np.zeros((4, 5)),
                                      "labs_ex": np.zeros((4, 1))})
    with pytest.raises(DataError, match=r"images has shape \(4, 32, 32\), expected \(N, 48, 48\)"):
        load_split("tfd", "train", data_dir=tmp_path)
    (tmp_path / tfd.FILENAME).write_bytes(b"MATLAB 5.0 MAT-file, but nothing after it")
    with pytest.raises(DataError, match="cannot read .* as a MATLAB file"):
        load_split("tfd", "train", data_dir=tmp_path)
    make_tfd(tmp_path / tfd.FILENAME)
    with pytest.raises(ConfigError, match="data.fold must be 0..4"):
        make_config("paper-tfd", {"data.fold": 5})


def test_train_a_few_steps_with_the_tfd_preset(tmp_path):
    from advnets.run.loaded import load_run
    from advnets.training.step_fused import supports_fused
    from advnets.training import Trainer

    make_tfd(tmp_path / tfd.FILENAME)
    config = make_config("paper-tfd", {"data.data_dir": str(tmp_path), "model.noise_dim": 8,
                                       "model.generator_hidden": [32, 32], "model.discriminator_units": [16, 16],
                                       "train.batch_size": 10, "train.epochs": 1, "train.grid_size": 2})
    assert config.model.generator_activations == ("relu", "sigmoid") and config.model.noise_prior == "gaussian"
    trainer = Trainer(config, tmp_path / "run")
    assert trainer.data.image_shape == (1, 48, 48) and not (trainer.algorithm.step.name == "fused")
    assert not supports_fused(trainer.generator, trainer.discriminator)   # sigmoid hidden layer: autograd
    result = trainer.run()
    assert result.step == 3 and (tmp_path / "run" / "samples" / "epoch_0001.png").is_file()
    samples = load_run(tmp_path / "run").sample(3)
    assert samples.shape == (3, 1, 48, 48) and 0 < samples.min() and samples.max() < 1   # sigmoid output
    # the paper's TFD protocol evaluates one model on every fold's valid / test images: `advnets eval --fold K`
    from advnets.cli import main

    for fold in (0, 4):
        assert main(["eval", str(tmp_path / "run"), "--fold", str(fold), "--n-samples", "40",
                     "--sigmas", "0.1,0.3,1"]) == 0
    report = json.loads((tmp_path / "run" / "eval" / "parzen.json").read_text())
    assert report["n_test"] == 6 and report["dataset"] == "tfd"
