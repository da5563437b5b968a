"""The quick start (a mnist-5k run) is evaluable without network access, and every `advnets eval` reads all of its
data before any long work: a missing or damaged file is one line before a classifier is trained or G sampled."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from advnets.cli import main
from advnets.config import DataConfig, make_config
from advnets.data import load_held_out, load_split
from advnets.errors import DataError
from advnets.eval import classifier, run_reports
from advnets.eval.classifier import Recipe
from advnets.extensions.semisup import semisup_report
from advnets.run import load_run
from advnets.run.loaded import LoadedRun
from advnets.training import train
from tests.conftest import SHARED_MNIST, TINY, write_idx_gz

T10K = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
needs_mnist = pytest.mark.skipif(not all((SHARED_MNIST / f).is_file() for f in T10K),
                                 reason=f"MNIST test files not found in {SHARED_MNIST}")
NO_NETWORK = "http://127.0.0.1:1/"        # a closed port: every download attempt is refused at once
# The real-data classifier at a size that trains in seconds on the 4,000 mnist-5k digits (one pass).
FAST = Recipe(channels=(4, 8), hidden=16, dropout=0.0, shift=0, steps=20, min_epochs=1, batch_size=200, lr=3e-3)


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    """An empty data cache (no MNIST files, no cached classifier) and no network."""
    monkeypatch.setenv("ADVNETS_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("ADVNETS_MIRROR", NO_NETWORK)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory) -> Path:
    """A tiny run of the quick start's dataset, trained offline."""
    run = tmp_path_factory.mktemp("offline") / "quickstart"
    train(make_config(overrides={**TINY, "data.dataset": "mnist-5k", "train.max_steps": 4}), run)
    return run


@pytest.fixture
def classifier_spy(monkeypatch) -> list:
    """Records each time a real-data classifier is trained (with FAST, so that the trainings that should happen
    take seconds)."""
    trained = []
    real = classifier.train_classifier

    def spy(*args, **kwargs):
        trained.append(len(args[0]))
        return real(*args, **{**kwargs, "recipe": FAST})
    monkeypatch.setattr(classifier, "train_classifier", spy)
    return trained


def _damaged_t10k(folder: Path) -> Path:
    """A folder holding the MNIST test files, the images file cut short (a broken copy)."""
    folder.mkdir()
    header = b"\x00\x00\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (10_000, 28, 28))
    (folder / T10K[0]).write_bytes(gzip.compress(header + bytes(1000)))        # 1,000 of 7,840,000 pixels
    (folder / T10K[1]).write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (10_000).to_bytes(4, "big")
                                                 + bytes(10_000)))
    return folder


def _keys(images: np.ndarray) -> set:
    return {img.tobytes() for img in images}


# --- the held-out digits -------------------------------------------------------------------------------------------


def test_without_the_mnist_test_files_mnist_5k_is_scored_on_its_held_out_digits():
    held = load_held_out(DataConfig(dataset="mnist-5k", download=False))
    assert "MNIST test files not found" in held.test_split and "downloads are off" in held.test_split
    assert held.valid.images.shape == held.test.images.shape == (500, 1, 28, 28)
    assert np.bincount(held.valid.labels).tolist() == np.bincount(held.test.labels).tolist() == [50] * 10
    train, valid = load_split("mnist-5k", "train"), load_split("mnist-5k", "valid")
    # the halves are disjoint, together they are the 1,000 valid digits, and no training digit is among them
    assert not _keys(held.valid.images) & _keys(held.test.images)
    assert _keys(held.valid.images) | _keys(held.test.images) == _keys(valid.images)
    assert not _keys(train.images) & (_keys(held.valid.images) | _keys(held.test.images))
    again = load_held_out(DataConfig(dataset="mnist-5k"))        # downloads on, but no network
    assert "the download failed" in again.test_split and np.array_equal(again.test.images, held.test.images)


@needs_mnist
def test_with_the_mnist_test_files_mnist_5k_is_scored_on_the_mnist_test_set():
    held = load_held_out(DataConfig(dataset="mnist-5k", data_dir=str(SHARED_MNIST), download=False))
    assert held.test_split.startswith("MNIST test set (10,000 digits")
    assert np.array_equal(held.test.images, load_split("mnist", "test", data_dir=SHARED_MNIST).images)
    assert np.array_equal(held.valid.images, load_split("mnist-5k", "valid").images)


def test_a_damaged_mnist_test_file_is_an_error_not_a_reason_to_fall_back(tmp_path):
    folder = _damaged_t10k(tmp_path / "mnist")
    with pytest.raises(DataError, match=T10K[0]):
        load_held_out(DataConfig(dataset="mnist-5k", data_dir=str(folder)))


# --- the quick start, evaluated offline ----------------------------------------------------------------------------


def test_offline_quick_start_parzen_in_a_new_process(quickstart, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"),
                                                         os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "advnets", "eval", str(quickstart), "--n-samples", "200"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads((quickstart / "eval" / "parzen.json").read_text())
    assert report["n_test"] == 500 and "MNIST test files not found" in report["test_split"]
    assert f"scored on: {report['test_split']}" in done.stdout + done.stderr


def test_offline_quick_start_quality_and_parzen(quickstart, classifier_spy, capsys):
    assert main(["eval", str(quickstart), "--quality", "--parzen", "--n-samples", "200"]) == 0
    quality = json.loads((quickstart / "eval" / "quality.json").read_text())
    parzen = json.loads((quickstart / "eval" / "parzen.json").read_text())
    assert classifier_spy == [4000]                                  # trained once, on the run's training digits
    assert quality["test_split"] == parzen["test_split"] and "mnist-5k held-out" in parzen["test_split"]
    assert f"real images: {quality['test_split']}" in capsys.readouterr().out
    # the library says the same as the command
    run = load_run(quickstart)
    assert run_reports.parzen_report(run, n_samples=200)["test_split"] == parzen["test_split"]


def test_offline_quick_start_semisup(quickstart):
    report = semisup_report(load_run(quickstart), counts=(20,), scratch_epochs=1, n_test=100)
    assert "mnist-5k held-out" in report["test_split"] and report["test_split_size"] == 500


@needs_mnist
def test_with_data_dir_the_quick_start_is_scored_on_the_mnist_test_set(quickstart):
    assert main(["eval", str(quickstart), "--n-samples", "200", "--sigmas", "0.2,0.3",
                 "--data-dir", str(SHARED_MNIST)]) == 0
    report = json.loads((quickstart / "eval" / "parzen.json").read_text())
    assert report["n_test"] == 10_000 and report["test_split"].startswith("MNIST test set")


# --- missing data is found before any long work --------------------------------------------------------------------


def test_a_damaged_test_file_stops_quality_before_the_classifier_trains(quickstart, classifier_spy, tmp_path,
                                                                       capsys):
    folder = _damaged_t10k(tmp_path / "broken")
    assert main(["eval", str(quickstart), "--quality", "--data-dir", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("advnets: error: ") and T10K[0] in err
    assert classifier_spy == [] and not (tmp_path / "cache" / "classifiers").exists()
    with pytest.raises(DataError):                                   # the Python API: the same, before training
        run_reports.quality_report(load_run(quickstart), data_dir=str(folder))
    assert classifier_spy == []


def _fake_mnist_training_files(folder: Path) -> None:
    """MNIST's two training files, of the standard size (60,000 blank 28x28 images), without the test files."""
    folder.mkdir()
    write_idx_gz(folder / "train-images-idx3-ubyte.gz", np.zeros((60_000, 28, 28), np.uint8))
    write_idx_gz(folder / "train-labels-idx1-ubyte.gz", (np.arange(60_000) % 10).astype(np.uint8))


def test_missing_test_files_stop_every_report_before_sampling_or_training(tmp_path, classifier_spy, capsys,
                                                                         monkeypatch):
    folder = tmp_path / "mnist"
    _fake_mnist_training_files(folder)
    run = tmp_path / "mnist-run"
    train(make_config(overrides={**TINY, "data.dataset": "mnist", "data.data_dir": str(folder),
                                 "data.download": False, "train.max_steps": 2}), run)
    sampled = []
    real_sample = LoadedRun.sample

    def sample(self, n, *args, **kwargs):
        sampled.append(n)
        return real_sample(self, n, *args, **kwargs)
    monkeypatch.setattr(LoadedRun, "sample", sample)
    assert main(["eval", str(run), "--nearest", "--quality"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("advnets: error: ")
    assert all(s in err for s in (*T10K, "--data-dir", "ADVNETS_MIRROR"))
    assert sampled == [] and classifier_spy == [] and not (run / "eval").exists()
    assert not (tmp_path / "cache" / "classifiers").exists()
    # the Parzen report alone: the same line, before sampling
    with pytest.raises(DataError, match=T10K[0]):
        run_reports.parzen_report(load_run(run))
    assert sampled == []
