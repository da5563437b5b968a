"""The benchmarks' measuring code (benchmarks/timing.py: the paired estimate of the fraction of the matmul bound), and
smoke runs of the benchmark scripts as a user runs them, `python benchmarks/NAME.py ...`: their JSON, not their
speed (no timing is asserted). The smoke runs are marked `bench` and left out of the default run:
`python -m pytest -m bench` runs them."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from advnets.eval.stacked_coverage import stacked_coverage, stacked_mode_frequencies

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name != "timing.py")


def _module(name: str):
    """benchmarks/NAME.py loaded as a module from its file (benchmarks/ is not a package): its directory goes on
    sys.path, as when the script runs, for the modules it imports from beside it."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.append(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


timing = _module("timing")


def _run(script: str, *args: str, threads: int = 1) -> str:
    """stdout of `python benchmarks/SCRIPT args` (it must exit 0)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_paired_rounds_alternates_the_two_sides_per_round():
    calls = []
    rounds = timing.paired_rounds(lambda: calls.append("bound"), lambda: calls.append("step"), rounds=3, per_round=2)
    assert calls == ["bound", "bound", "step", "step"] * 3
    assert len(rounds) == 3 and all(len(b) == 2 and len(s) == 2 for b, s in rounds)
    assert all(t >= 0 for b, s in rounds for t in (*b, *s))


def test_paired_rounds_times_the_extra_sides_between_bound_and_step():
    calls = []
    rounds = timing.paired_rounds(lambda: calls.append("bound"), lambda: calls.append("step"), rounds=2,
                                  per_round=1,
                                  extra=(lambda: calls.append("update"), lambda: calls.append("masks")))
    assert calls == ["bound", "update", "masks", "step"] * 2
    assert all(len(r) == 4 and all(len(side) == 1 for side in r) for r in rounds)   # (bound, step, update, masks)


def test_paired_fraction_adds_the_parts_of_a_floor():
    # (bound, step, update): per round (0.8 + 0.1) / 1.0 and (1.6 + 0.2) / 2.0
    rounds = [([0.8], [1.0], [0.1]), ([1.6, 1.6], [2.0, 2.0], [0.2, 0.2])]
    assert timing.paired_fraction(rounds)["median"] == pytest.approx(0.8)
    assert timing.paired_fraction(rounds, parts=(0, 2))["median"] == pytest.approx(0.9)


def test_paired_fraction_is_the_median_of_the_rounds_ratios():
    # four rounds: ratios 0.9, 0.8, 0.5 (a burst of other work slowed the step), 0.85
    rounds = [([0.9, 0.9], [1.0, 1.0]), ([0.8], [1.0]), ([1.0, 1.0], [2.0, 2.0]), ([0.85], [1.0])]
    f = timing.paired_fraction(rounds)
    assert f["median"] == pytest.approx(0.825)                 # the burst moves the median little
    assert f["quartiles"][0] <= f["median"] <= f["quartiles"][1]
    assert f["best_step"] == 1.0 and f["best_bound_pass"] == 0.8
    assert f["best_pass_over_best_round"] == pytest.approx(0.8)  # the old estimate: best pass / best round
    assert f["median_step"] == 1.0


@pytest.mark.bench
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_benchmark_starts(script):
    # its imports resolve as a user runs it (the installed package; timing.py and train_throughput.py beside it)
    assert "usage:" in _run(script, "--help")


@pytest.mark.bench
def test_train_throughput_prints_its_json():
    out = _run("train_throughput.py", "--threads", "1", "--steps", "2", "--rounds", "3", "--profile-steps", "2")
    result = json.loads(out[out.index("{"):])
    low, high = result["fraction_of_bound_quartiles"]
    assert 0 < low <= result["fraction_of_bound"] <= high < 2
    assert result["rounds"] == 3 and result["steps_per_round"] == 2
    assert result["flops_per_step"] == 2_763_168_000             # the products of one paper-mnist iteration
    assert len(result["gemms"]) == 17                          # G: 3 forward, 3 + 2 backward; D: 3, 3 + 3
    assert result["steps_per_s"] > 0 and result["bound_steps_per_s"] > 0
    # the floor: the products into the velocities, the update and the masks, summed round by round (so its median
    # exceeds that of any one part); no timing is compared across sides, which a noisy machine could reorder
    parts = [result[f"{k}_ms_per_step"] for k in ("products_into_velocity", "update", "masks")]
    assert all(p > 0 for p in parts)
    assert result["floor_ms_per_step"] > max(parts)
    low, high = result["fraction_of_floor_quartiles"]
    assert 0 < low <= result["fraction_of_floor"] <= high < 2
    assert 0 < result["bound_share_of_floor"] < 2
    products = result["profile"]["products"]
    assert products and all(p["ms_hot"] > 0 and p["ms_in_step"] > 0 for p in products)


@pytest.mark.bench
def test_threads_benchmark_times_a_choice_in_a_worker_process():
    # the worker is the script again, in a fresh process that imports train_throughput.py from beside it
    result = json.loads(_run("threads.py", "--seconds", "0.2", "--load", "0", "--choices", "one"))
    for condition in ("idle", "loaded"):
        one = result[condition]["one"]
        assert one["threads"] == 1 and one["steps_per_s"] > 0 and one["vs_one"] == 1.0
    assert result["competing_load_processes"] == 0


@pytest.mark.bench
def test_parzen_benchmark_compares_side_by_side_with_one_caller():
    result = json.loads(_run("parzen.py", "--threads", "2", "--n-samples", "600", "--n-valid", "300", "--n-test",
                             "300", "--ref-points", "20", "--repeat", "1", "--pairs", "1", threads=2))
    assert result["workers"] == 2 and result["threads"] == 2                 # two blocks of 256 points or more
    pairs = result["pairs"]
    # Side by side, each block's products run on one thread; one caller's run on two threads at once, and a BLAS may
    # split and sum a product differently with two threads (seen with MKL on an Intel CPU), so the two ways agree to
    # float32 rounding, not bit for bit. A block of points left out would move a mean by far more than that.
    assert pairs["same_sigma"] is True
    assert pairs["max_abs_diff_nats"] < 1e-3
    assert len(pairs["side_by_side_seconds"]) == len(pairs["one_caller_seconds"]) == 1
    assert result["matmul_bound_seconds"] > 0 and result["matmul_bound_one_caller_seconds"] > 0
    assert result["max_abs_diff_vs_reference_nats"] < 1e-3


stacked = _module("stacked_mnist")


def test_stacked_summary_is_the_mean_and_standard_error_and_checks_the_target():
    runs = [{"method": "remedy", "seed": s, "steps": 6400, "batch_size": 100, "d_units": [240, 240], "seconds": sec,
             "modes": modes, "kl": kl, "kl_uniform": kl} for s, (modes, kl, sec) in
            enumerate([(1000, 0.04, 900.0), (999, 0.06, 1000.0)])]
    s = stacked.summarise(runs)["remedy"]
    assert s["runs"] == 2 and s["modes"]["mean"] == 999.5 and s["modes"]["se"] == pytest.approx(0.5)
    assert s["kl"]["mean"] == pytest.approx(0.05) and s["kl"]["se"] == pytest.approx(0.01)
    assert s["meets_target"]                                     # >= 999.5 modes, KL <= 0.05, each within 1,200 s
    runs[1]["seconds"] = 1300.0
    assert not stacked.summarise(runs)["remedy"]["meets_target"]
    table = stacked.markdown(stacked.summarise(runs), {"modes": 1000, "kl": 0.02, "kl_uniform": 0.02})
    assert "| advnets remedy (2 seeds, D [240, 240]) | 999.5 ± 0.5 | 0.050 ± 0.010 |" in table
    assert "PacDCGAN2" in table and "real held-out stacks" in table


@pytest.mark.bench
def test_stacked_mnist_benchmark_trains_measures_and_combines(tmp_path):
    tiny = ["--set", "data.stack_size=300", "--set", "model.generator_hidden=16", "--set",
            "model.discriminator_units=8,8", "--steps", "2", "--seeds", "1"]
    outs = []
    for method in ("paper", "remedy-d-half"):
        out = _run("stacked_mnist.py", "--methods", method, "--grids", str(tmp_path), "--runs", str(tmp_path), *tiny)
        (tmp_path / f"{method}.json").write_text(out[out.index("{"):])
        outs.append(str(tmp_path / f"{method}.json"))
    result = json.loads(_run("stacked_mnist.py", "--combine", *outs, "--markdown", str(tmp_path / "t.md")))
    assert set(result["summary"]) == {"paper", "remedy-d-half"}
    assert result["summary"]["remedy-d-half"]["d_units"] == [4, 4]          # D halved
    assert all(1 <= r["modes"] <= 1000 and r["steps"] == 2 for r in result["runs"])
    assert result["real_floor"]["modes"] > 900 and (tmp_path / "paper_seed0.png").is_file()
    assert "real held-out stacks" in (tmp_path / "t.md").read_text()
    kept = json.loads((tmp_path / "paper_seed0" / "config.json").read_text())          # --runs keeps the run
    assert kept["data"]["dataset"] == "stacked-mnist" and (tmp_path / "paper_seed0" / "checkpoints").is_dir()
    # --measure reads the kept run as the benchmark read it after training, and refuses another method's run
    again = json.loads(_run("stacked_mnist.py", "--methods", "paper", "--measure", str(tmp_path / "paper_seed0"),
                            *tiny))["runs"][0]
    trained = json.loads((tmp_path / "paper.json").read_text())["runs"][0]
    keys = ("seed", "steps", "modes", "kl")
    assert [again[k] for k in keys] == [trained[k] for k in keys]
    wrong = subprocess.run([sys.executable, str(BENCHMARKS / "stacked_mnist.py"), "--methods", "remedy", "--measure",
                            str(tmp_path / "paper_seed0"), *tiny], capture_output=True, text=True, timeout=600)
    assert wrong.returncode == 1 and "differs from the remedy settings" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    missing = subprocess.run([sys.executable, str(BENCHMARKS / "stacked_mnist.py"), "--methods", "paper", "--measure",
                              str(tmp_path / "no_such_run")], capture_output=True, text=True, timeout=600)
    assert missing.returncode == 1 and "no_such_run" in missing.stderr and "Traceback" not in missing.stderr


check = _module("stacked_classifier_check")


def test_classifier_check_scores_the_digits_read_as_the_coverage_metric_does():
    rng = np.random.default_rng(0)
    data_digits = rng.integers(0, 10, (5000, 3))                               # the training stacks' digits
    frequencies = stacked_mode_frequencies(data_digits @ np.array([100, 10, 1]))
    read = rng.integers(0, 10, (3000, 3))                                      # what a classifier read
    s = check.score(read, frequencies, data_digits)
    cov = stacked_coverage(read, frequencies)
    assert (s["modes"], s["kl"]) == (cov["modes_captured"], round(cov["kl"], 4))
    expected = np.bincount(read[:, 1], minlength=10) / 3000 / (np.bincount(data_digits[:, 1], minlength=10) / 5000)
    assert s["digit_frequency_vs_data"][1] == pytest.approx(expected, abs=0.006)   # rounded to 2 places
    assert check.score(np.full((3000, 3), 3), frequencies, data_digits)["digit_frequency_vs_data"][0][3] > 9


@pytest.mark.bench
def test_stacked_classifier_check_reads_a_run_with_both_classifiers(tmp_path):
    run = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "advnets", "-q", "train", "--preset", "stacked-mnist-remedy", "--out",
                    str(run), "--max-steps", "3", "--no-coverage", "--threads", "1", "--set", "data.stack_size=300",
                    "--set", "model.generator_hidden=16", "--set", "model.discriminator_units=8,8"],
                   check=True, capture_output=True, timeout=600)
    result = json.loads(_run("stacked_classifier_check.py", str(run), "--samples", "300"))
    r = result["runs"][0]
    assert r["step"] == 3 and r["n"] == 300 and set(r["classifiers"]) == {"package_cnn", "sklearn_svm_rbf"}
    for c in r["classifiers"].values():
        assert c["held_out_digit_accuracy"] > 0.9 and 1 <= c["samples"]["modes"] <= 300
        assert c["real_floor"]["modes"] > 200 and len(c["samples"]["digit_frequency_vs_data"]) == 3
    assert min(r["agreement_real_floor"]["per_channel"]) > 0.85          # two good classifiers agree on real digits
