"""Every file `advnets eval` writes is the dict its library function returns for the same run and arguments."""
import json

import numpy as np
import pytest

from advnets.cli import main
from advnets.config import make_config
from advnets.data import load_split
from advnets.errors import AdvnetsError
from advnets.eval import run_reports
from advnets.eval.classifier import class_accuracy, train_classifier
from advnets.eval.coverage import kl_divergence
from advnets.eval.parzen import ParzenResult, SigmaOnEdgeWarning, sigma_grid
from advnets.run import load_run
from advnets.training import train
from tests.conftest import TINY
from tests.conftest import FAST_RECIPE as FAST
from tests.training.test_coverage import _grid_trainer

TIMINGS = {"seconds", "fit_seconds"}


def same_json(path, report: dict) -> None:
    """The file at `path` holds `report`, key order and all, up to wall-clock timings."""
    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in TIMINGS}
        return [strip(v) for v in obj] if isinstance(obj, list) else obj

    written = strip(json.loads(path.read_text()))
    assert json.dumps(written) == json.dumps(strip(json.loads(json.dumps(report))))


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, digits_images):
    run = tmp_path_factory.mktemp("reports") / "img"
    train(make_config(overrides={**TINY, "train.max_steps": 20}), run, train_images=digits_images)
    return run


@pytest.fixture(scope="module")
def fast_classifier():
    """A small real-data classifier of the digits (seconds to train), in place of the package's cached one."""
    train_split, valid = load_split("digits", "train"), load_split("digits", "valid")
    return train_classifier(train_split.images, train_split.labels, valid.images, valid.labels, recipe=FAST)


def test_parzen_and_nearest(image_run):
    assert main(["eval", str(image_run), "--parzen", "--nearest", "--n-samples", "150", "--seed", "2",
                 "--sigmas", "0.1,0.2,0.4"]) == 0
    run = load_run(image_run)
    parzen = run_reports.parzen_report(run, n_samples=150, seed=2, sigmas=[0.1, 0.2, 0.4])
    same_json(image_run / "eval" / "parzen.json", parzen)
    assert parzen["run"] == str(image_run) and parzen["n_samples"] == 150 and parzen["sigmas"] == [0.1, 0.2, 0.4]
    assert ParzenResult.from_dict(parzen).to_dict() == {k: parzen[k] for k in ParzenResult.__dataclass_fields__}
    same_json(image_run / "eval" / "nearest.json", run_reports.nearest_report(run, seed=2))


def test_parzen_default_grid_and_edge_warning(image_run):
    assert main(["eval", str(image_run), "--n-samples", "100"]) == 0
    run = load_run(image_run)
    with pytest.warns(SigmaOnEdgeWarning):       # of two values, the one chosen is on an edge
        report = run_reports.parzen_report(run, n_samples=100, sigmas=[0.01, 0.02])
    assert report["on_edge"]
    report = run_reports.parzen_report(run, n_samples=100)
    assert report["sigmas"] == sigma_grid().tolist()             # the original's 10 values, 0.1 to 1
    same_json(image_run / "eval" / "parzen.json", report)


def test_quality(image_run, fast_classifier, monkeypatch):
    monkeypatch.setattr(run_reports, "run_classifier", lambda run, **kwargs: fast_classifier)
    assert main(["eval", str(image_run), "--quality", "--n-samples", "120", "--seed", "1"]) == 0
    report = run_reports.quality_report(load_run(image_run), n_samples=120, seed=1)
    same_json(image_run / "eval" / "quality.json", report)
    assert report["n_samples"] == 120 and report["classifier_held_out_accuracy"] == fast_classifier.held_out_accuracy


def test_class_accuracy(tmp_path, image_run, fast_classifier, monkeypatch):
    digits = load_split("digits", "train")
    train(make_config(overrides={**TINY, "model.conditional": True, "train.max_steps": 10}), tmp_path / "cond",
          train_images=digits.images, train_labels=digits.labels)
    monkeypatch.setattr(run_reports, "run_classifier", lambda run, **kwargs: fast_classifier)
    assert main(["eval", str(tmp_path / "cond"), "--class-accuracy", "--per-class", "7"]) == 0
    report = run_reports.class_accuracy_report(load_run(tmp_path / "cond"), per_class=7)
    same_json(tmp_path / "cond" / "eval" / "class_accuracy.json", report)
    assert report["n"] == 70 and report["samples_per_class"] == 7
    with pytest.raises(AdvnetsError, match="not a conditional run"):
        run_reports.class_accuracy_report(load_run(image_run))


def test_coverage(tmp_path):
    _grid_trainer(tmp_path / "grid", **{"train.epochs": 1}).run()
    assert main(["eval", str(tmp_path / "grid"), "--coverage", "--coverage-samples", "400", "--seed", "4"]) == 0
    report = run_reports.coverage_report(load_run(tmp_path / "grid"), n_samples=400, seed=4)
    same_json(tmp_path / "grid" / "eval" / "coverage.json", report)
    assert report["n"] == 400 and report["dataset"] == "grid" and report["pack"] == 1
    assert run_reports.coverage_samples(load_run(tmp_path / "grid")) == 2500            # VEEGAN's and PacGAN's count
    with pytest.raises(AdvnetsError, match="classifier"):
        run_reports.quality_report(load_run(tmp_path / "grid"))


def test_coverage_of_an_image_run(image_run, fast_classifier, monkeypatch, capsys):
    """Classes captured and the class KL of the samples, beside the same for the real held-out test images."""
    monkeypatch.setattr(run_reports, "run_classifier", lambda run, **kwargs: fast_classifier)
    assert main(["eval", str(image_run), "--coverage", "--coverage-samples", "300", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    run = load_run(image_run)
    report = run_reports.coverage_report(run, n_samples=300, seed=1)
    same_json(image_run / "eval" / "coverage.json", report)
    assert run_reports.coverage_samples(run) == 26_000                                 # the Stacked-MNIST count
    test = load_split("digits", "test")
    frequencies = np.bincount(load_split("digits", "train").labels, minlength=10)
    assert report["classes"] == 10 and report["n"] == 300 and sum(report["histogram"]) == 300
    assert report["kl"] == pytest.approx(kl_divergence(report["histogram"], frequencies))
    floor = report["floor"]
    assert floor["n"] == len(test) and floor["histogram"] == np.bincount(fast_classifier.predict(test.images),
                                                                         minlength=10).tolist()
    assert floor["classes_captured"] == 10 and floor["kl"] < 0.1                      # real images: all, evenly
    assert report["classifier"]["accuracy"] == class_accuracy(fast_classifier, test.images, test.labels)["accuracy"]
    assert f"{report['classes_captured']}/10 classes captured" in out and "floor" in out
