"""`advnets train` and mode coverage: on by default for the quick start's data, what it costs in the start line, the
classes in every epoch line, one warning line per fall, and `--no-coverage` / `train.coverage_every_epochs=0`."""
import json

import pytest

import advnets.training.coverage_monitor as monitor
from advnets.cli import main
from advnets.run.checkpoint import load_checkpoint, save_checkpoint
from tests.cli.test_cli import run_main
from tests.conftest import cli_sets
from tests.training.test_coverage import UNSET, _ScriptedClassifier

# the quick start's data (mnist-5k, 40 iterations an epoch) with the tiny nets, coverage left to its default
QUICK = {**UNSET, "data.dataset": "mnist-5k", "train.batch_size": 100}


@pytest.fixture
def classifier(monkeypatch):
    """`classifier(classes)`: a _ScriptedClassifier in place of the package's; its "training" reports progress."""
    def install(classes=()):
        clf = _ScriptedClassifier(classes)

        def load_or_train(data_config, progress=None, **kwargs):
            if progress is not None:
                progress(0, 2, "")
                progress(2, 2, "loss 0.1")
            return clf
        monkeypatch.setattr(monitor, "load_or_train_classifier", load_or_train)
        return clf
    return install


def _epoch_lines(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_the_quick_start_measures_coverage_says_its_cost_and_warns_once_per_fall(tmp_path, capsys, classifier):
    classifier([10, 10, 3, 2, 10, 4])                # the timed evaluation at the start, then epochs 1 to 5
    run = tmp_path / "run"
    proc = run_main(capsys, "train", "--preset", "paper-mnist-5k", *cli_sets(QUICK), "--epochs", 5, "--out", run,
                    "--no-progress", "--no-tensorboard")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == ("Training the mnist-5k classifier for the coverage figures (once: later runs load it from the "
                      "cache; train.coverage_every_epochs=0 skips it)")
    cost = next(line for line in out if line.startswith("mode coverage"))
    assert cost.startswith("mode coverage every epoch: 500 samples classified by the mnist-5k classifier (loaded from "
                           "the cache in ") and "held-out accuracy 0.990) into 10 classes, " in cost
    assert cost.endswith(" s per evaluation (--no-coverage turns it off)")
    epochs = [line for line in out if line.startswith("epoch ")]
    assert [line.split("steps/s")[1].split("KL")[0].strip() for line in epochs] == \
        ["classes 10/10", "classes 3/10", "classes 2/10", "classes 10/10", "classes 4/10"]
    warnings = proc.stderr.splitlines()
    assert len(warnings) == 2 and warnings[0].startswith("advnets: warning: epoch 2: mode coverage fell, only 3 of 10 "
                                                         "classes captured (below half)")
    assert warnings[1].startswith("advnets: warning: epoch 5: mode coverage fell, only 4 of 10 classes")
    for w in warnings:
        assert all(s in w for s in ("collapsing onto a few classes", "Helvetica scenario", "model.pack=2",
                                    "train.top_k=0.5", "remedy"))
    lines = _epoch_lines(run)
    assert [r.get("coverage_warning") for r in lines] == [None, "classes_captured", None, None, "classes_captured"]
    assert json.loads((run / "config.json").read_text())["train"]["coverage_every_epochs"] is None

    # resumed with --no-coverage: the next line has no figures, and the run says nothing of coverage
    proc = run_main(capsys, "train", "--resume", run, "--epochs", 6, "--no-coverage", "--no-progress")
    assert proc.returncode == 0 and "mode coverage" not in proc.stdout + proc.stderr, proc.stderr
    assert "classes" not in proc.stdout.splitlines()[-2]                       # the epoch line
    assert "classes_captured" not in _epoch_lines(run)[-1] and len(_epoch_lines(run)) == 6
    assert json.loads((run / "config.json").read_text())["train"]["coverage_every_epochs"] == 0


@pytest.mark.parametrize("off", [["--no-coverage"], ["--set", "train.coverage_every_epochs=0"]])
def test_no_coverage_and_zero_turn_it_off(tmp_path, capsys, monkeypatch, off):
    def refuse(*args, **kwargs):
        raise AssertionError("the classifier was asked for")
    monkeypatch.setattr(monitor, "load_or_train_classifier", refuse)
    proc = run_main(capsys, "train", "--preset", "paper-mnist-5k", *cli_sets(QUICK), "--epochs", 1,
                    "--out", tmp_path / "run", "--no-progress", "--no-tensorboard", *off)
    assert proc.returncode == 0, proc.stderr
    assert "mode coverage" not in proc.stdout and "classes" not in proc.stdout
    assert "classes_captured" not in _epoch_lines(tmp_path / "run")[0]


def test_help_names_the_flag(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--no-coverage no mode coverage in the epoch lines (train.coverage_every_epochs=0)" in text


def test_an_old_run_without_the_key_resumes_without_coverage(tmp_path, capsys, monkeypatch):
    """A run written before coverage was on by default (no train.coverage_every_epochs in its config.json nor in
    its checkpoint's copy) resumes as it trained: without coverage, and without training a classifier."""
    run = tmp_path / "old"
    assert run_main(capsys, "train", "--preset", "paper-mnist-5k", *cli_sets(QUICK), "--epochs", 1, "--out", run,
                    "--no-progress", "--no-tensorboard", "--no-coverage").returncode == 0
    for_old = (run / "config.json", run / "checkpoints" / "last.pt")
    data = json.loads(for_old[0].read_text())
    del data["train"]["coverage_every_epochs"]
    for_old[0].write_text(json.dumps(data))
    payload = load_checkpoint(for_old[1])
    payload["config"] = json.dumps(data)
    save_checkpoint(for_old[1], payload)

    def refuse(*args, **kwargs):
        raise AssertionError("the classifier was asked for")
    monkeypatch.setattr(monitor, "load_or_train_classifier", refuse)
    proc = run_main(capsys, "train", "--resume", run, "--epochs", 2, "--no-progress")
    assert proc.returncode == 0 and "resuming at epoch 1" in proc.stdout, proc.stderr
    assert "mode coverage" not in proc.stdout and "classes_captured" not in _epoch_lines(run)[-1]
    assert json.loads(for_old[0].read_text())["train"]["coverage_every_epochs"] == 0      # now said explicitly
