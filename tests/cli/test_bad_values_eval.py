"""Bad values for the commands that read a finished run (eval, figure, sample, inpaint, semisup, report) and for their
Python API: one line and a non-zero exit, sizes checked against the memory and the PNG limit before anything is
allocated, archives against the bytes they really hold, no non-finite number in a JSON file."""
import json
import os
import pickle
import re
import resource
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch

import advnets.data.cifar as cifar
from advnets.config import make_config
from advnets.data import load_split
from advnets.errors import AdvnetsError, DataError
from advnets.extensions.inpaint import inpaint_report
from advnets.extensions.semisup import semisup_report
from advnets.fileio import write_json
from advnets.figures.paper_figures import interpolation_figure
from advnets.run.export import export_generator, load_safetensors_generator
from advnets.run.loaded import load_run
from advnets.run.report import write_report
from advnets.training import train
from tests.cli.test_cli import assert_user_error, run_main
from tests.conftest import TINY
from tests.data.test_cifar import make_batches, write_archive
from tests.training.test_coverage import _grid_trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory, digits_images):
    path = tmp_path_factory.mktemp("values") / "run"
    train(make_config(overrides={**TINY, "train.max_steps": 2}), path, train_images=digits_images)
    return path


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("values") / "grid"
    _grid_trainer(path, **{"train.epochs": 1, "train.max_steps": 2}).run()
    return path


def _guarded(*args, cwd):
    """The command in a real process whose address space is capped at 4 GiB: a size not checked before allocating
    ends there in a MemoryError traceback within seconds instead of eating the machine's memory."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "advnets", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300, check=False, preexec_fn=cap)


# Sample counts against the memory available: 10^12 samples fit on no machine, so the largest allowed value is
# named (it depends on the machine's free memory, hence the pattern).
MEMORY = [
    (["eval", "{run}", "--n-samples", "1000000000000"], "--n-samples"),
    (["eval", "{run}", "--quality", "--n-samples", "1000000000000"], "--n-samples"),
    (["eval", "{grid}", "--coverage", "--coverage-samples", "1000000000000"], "--coverage-samples"),
    (["figure", "scatter", "{grid}", "--n", "1000000000000"], "--n"),
]
# Images against the PNG pixel limit (about 89 megapixels), --scale included; 8x8 digits: tiles of 10 x 10 pixels.
PNG = [
    (["figure", "samples", "{run}", "--rows", "100000", "--cols", "100000"],
     "use --rows 8 or less, or --cols 8 or less"),
    (["figure", "interpolate", "{run}", "--rows", "100000", "--steps", "100000"],
     "use --rows 8 or less, or --steps 8 or less"),
    (["figure", "samples", "{run}", "--scale", "1000"], "use --scale 152 or less"),
    (["sample", "{run}", "--scale", "1000", "--out", "{tmp}/big.png"], "use --scale 92 or less; or write a .npy file"),
]


@pytest.mark.parametrize("command, option", MEMORY, ids=[" ".join(c[:2]) + " " + o for c, o in MEMORY])
def test_sample_counts_are_checked_against_the_memory(command, option, run, grid_run, tmp_path):
    fill = lambda s: s.format(run=run, grid=grid_run, tmp=tmp_path)         # noqa: E731
    proc = _guarded(*map(fill, command), cwd=tmp_path)
    assert_user_error(proc, f"{option} 1,000,000,000,000 would hold", "GiB available")
    assert re.search(f"use {option} [0-9,]+ or less$", proc.stderr.strip()), proc.stderr


@pytest.mark.parametrize("command, hint", PNG, ids=[" ".join(c[:2]) + " " + h[4:14] for c, h in PNG])
def test_images_are_checked_against_the_png_limit(command, hint, run, tmp_path):
    fill = lambda s: s.format(run=run, tmp=tmp_path)                          # noqa: E731
    proc = _guarded(*map(fill, command), cwd=tmp_path)
    assert_user_error(proc, "megapixels), more than the 89 that image viewers open", hint)
    assert not list(tmp_path.iterdir()) and not (run / "figures").exists()


def test_api_sample_counts(run):
    r = load_run(run)
    for call in (lambda: r.sample(-5), lambda: next(r.sample_batches(-5)), lambda: r.sample(3, batch_size=0)):
        with pytest.raises(ValueError, match="must be a whole number >= "):
            call()
    with pytest.raises(AdvnetsError, match=r"^n 1,000,000,000,000 would hold .* GiB available"):
        r.sample(10 ** 12)
    assert r.sample(0).shape == (0, 1, 8, 8)
    assert torch.equal(r.sample(2345, seed=4), torch.cat(list(r.sample_batches(2345, seed=4))))   # filled in place


BAD = [
    (["figure", "inpaint", "{run}", "--lr", "nan"], "--lr must be a positive finite number, got nan"),
    (["figure", "inpaint", "{run}", "--lr", "-1"], "--lr must be a positive finite number, got -1.0"),
    (["figure", "inpaint", "{run}", "--lr", "inf", "--steps", "2", "--n", "2", "--restarts", "1"],
     "--lr must be a positive finite number, got inf"),
    (["semisup", "{run}", "--labels", "abc"], "--labels must be comma-separated whole numbers of at least 1"),
    (["semisup", "{run}", "--labels", "0"], "--labels must be comma-separated whole numbers of at least 1"),
    (["semisup", "{run}", "--labels", "10,-5"], "got '10,-5'"),
    (["semisup", "{run}", "--n-test", "-1"], "--n-test must be a whole number >= 0, got -1"),
    (["semisup", "{run}", "--labels", "10", "--n-test", "50", "--scratch-epochs", "-1"],
     "--scratch-epochs must be a whole number >= 1, got -1"),
    (["figure", "samples", "{run}", "--out", "{tmp}/x.jpg"], "does not end in .png"),
    (["figure", "interpolate", "{run}", "--out", "{tmp}/x.jpg"], "does not end in .png"),
    (["figure", "samples", "{run}", "--out", ""], "--out is empty"),
    (["sample", "{run}", "--out", ""], "--out is empty"),
    (["sample", "{run}", "--out", " "], "--out is empty"),
    (["sample", "{run}", "--device", "cuda:99"], "device 'cuda:99'"),
]


@pytest.mark.parametrize("command, expected", BAD, ids=[" ".join(c[:3]) + " " + e[:24] for c, e in BAD])
def test_bad_value_is_one_line(command, expected, run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fill = lambda s: s.format(run=run, tmp=tmp_path)         # noqa: E731
    before = sorted(p.name for p in run.iterdir())
    proc = run_main(capsys, *map(fill, command))
    assert_user_error(proc, expected)
    assert "damaged" not in proc.stderr and "delete" not in proc.stderr      # never blames a sound checkpoint
    assert not list(tmp_path.iterdir())
    assert sorted(p.name for p in run.iterdir()) == before                   # no eval/, figures/, sample folder


def test_scatter_out_must_be_png(grid_run, tmp_path, capsys):
    assert_user_error(run_main(capsys, "figure", "scatter", grid_run, "--out", tmp_path / "x.jpg"),
                      "does not end in .png")
    assert not list(tmp_path.iterdir())


def test_api_values(run):
    r = load_run(run)
    with pytest.raises(ValueError, match="rows 100,000 steps 100,000 would make a 1,000,002 x 1,000,002 pixel PNG"):
        interpolation_figure(r, rows=100_000, steps=100_000)
    for lr in (float("nan"), -1.0, float("inf"), 0.0):
        with pytest.raises(ValueError, match="lr must be a positive finite number"):
            inpaint_report(r, n=2, steps=1, restarts=1, lr=lr)
    for kwargs in ({"counts": (0,)}, {"counts": (10, -5)}, {"n_test": -1}, {"scratch_epochs": -1}):
        with pytest.raises(ValueError, match="must be a whole number >= "):
            semisup_report(r, **{"counts": (10,), "n_test": 50, **kwargs})
    with pytest.raises(AdvnetsError, match="cuda:5") as info:
        load_run(run, device="cuda:5")
    assert "damaged" not in str(info.value) and "\n" not in str(info.value)


def test_json_never_holds_non_finite_numbers(tmp_path):
    for value in (float("inf"), float("nan"), [1.0, float("-inf")]):
        with pytest.raises(ValueError):
            write_json(tmp_path / "r.json", {"lr": value})
    assert not list(tmp_path.iterdir())                  # nothing written, no temporary left
    write_json(tmp_path / "r.json", {"reverse_kl": None})
    assert json.loads((tmp_path / "r.json").read_text()) == {"reverse_kl": None}


def test_torchscript_generator_outputs_need_no_grad(run, tmp_path):
    r = load_run(run)
    model, _ = export_generator(r, tmp_path / "g.pt", "torchscript")
    g = torch.jit.load(str(model))
    z = torch.zeros(3, r.config.model.noise_dim)
    x = g(z)
    assert not x.requires_grad and x.numpy().shape == (3, 1, 8, 8)
    expected = r.generator(z)
    np.testing.assert_allclose(x.numpy(), expected.detach().numpy(), atol=1e-6)
    assert any(p.requires_grad for p in r.generator.parameters())          # the run's own G is left as it was
    st, _ = export_generator(r, tmp_path / "g.safetensors", "safetensors")   # the other formats still export
    np.testing.assert_allclose(load_safetensors_generator(st)(z).detach().numpy(), x.numpy(), atol=1e-6)


def test_report_names_runs_with_mathtext_and_non_utf8_bytes(run, tmp_path, capsys):
    math_run = tmp_path / "run_$\\frac{1$"
    odd_run = tmp_path / os.fsdecode(b"run_\xff")
    for d in (math_run, odd_run):
        shutil.copytree(run, d)
    write_report([run, math_run], tmp_path / "math.html")
    assert "run_$\\frac{1$" in (tmp_path / "math.html").read_text()
    proc = run_main(capsys, "report", odd_run)                 # captured as strict UTF-8: a surrogate would fail
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "run_\ufffd" in proc.stdout
    assert "run_\ufffd" in (odd_run / "report.html").read_text(encoding="utf-8")
    proc = run_main(capsys, "report", run, odd_run, math_run, "--out", tmp_path / "all.html")
    assert proc.returncode == 0, proc.stderr
    assert "run_%FF/config.json" in (tmp_path / "all.html").read_text()     # the link still names the real file


class _Declared:
    """An array as a crafted pickle declares it: numpy's `_reconstruct(ndarray, shape, "B")` with a large shape
    and no data (numpy's own pickles declare (0,) and carry the data in their state)."""

    def __init__(self, shape):
        self.shape = shape

    def __reduce__(self):
        return (np.empty(0).__reduce__()[0], (np.ndarray, self.shape, b"B"))


@pytest.fixture
def cifar_dir(tmp_path):
    cifar._read_archive.cache_clear()
    d = tmp_path / "data"
    d.mkdir()
    yield d
    cifar._read_archive.cache_clear()


def test_cifar_shapes_are_checked_against_the_bytes(cifar_dir):
    n = 20_000                                                  # 61 MB declared by a member of a few hundred bytes
    bomb = pickle.dumps({b"data": _Declared((n, 3072)), b"labels": [0] * n}, protocol=2)
    assert len(bomb) < n * 3072 // 1000
    write_archive(cifar_dir / cifar.ARCHIVE, make_batches(), {"data_batch_2": bomb})
    with pytest.raises(DataError) as info:
        load_split("cifar10", "train", data_dir=cifar_dir, download=False)
    assert "data_batch_2" in info.value.message and "which numpy never pickles" in info.value.message


def test_cifar_short_data_and_object_arrays_are_refused(cifar_dir):
    """numpy's __setstate__ with an object dtype and a short list crashes the interpreter (SIGSEGV): in a process
    of its own, the archive is refused in one line."""
    state = (1, (100_000, 3072), np.dtype("O"), False, [1, 2])
    array = np.empty(0).__reduce__()[:2] + (state,)

    class Crafted:
        def __reduce__(self):
            return array

    write_archive(cifar_dir / cifar.ARCHIVE, make_batches(), {"test_batch": pickle.dumps(
        {b"data": Crafted(), b"labels": [0]}, protocol=2)})
    code = ("import advnets.data.cifar as c; from advnets.errors import DataError\n"
            f"try: c.cifar10_split('test', {str(cifar_dir)!r}, {str(cifar_dir)!r}, False, [])\n"
            "except DataError as e: print(e.message)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert "test_batch" in proc.stdout and "integer arrays only" in proc.stdout


def test_cifar_member_larger_than_a_real_batch_is_refused_before_reading(cifar_dir):
    n = 25_000                                                  # 77 MB of zeros: 75 kB compressed
    big = pickle.dumps({b"data": np.zeros((n, 3072), np.uint8), b"labels": [0] * n}, protocol=2)
    write_archive(cifar_dir / cifar.ARCHIVE, make_batches(), {"data_batch_5": big})
    with pytest.raises(DataError, match="data_batch_5 is 76,[0-9,]+ bytes; a real batch is about 31 MB"):
        load_split("cifar10", "valid", data_dir=cifar_dir, download=False)
    with tarfile.open(cifar_dir / cifar.ARCHIVE) as tar:
        tar.extractall(cifar_dir / "x", filter="data")
    cifar._read_folder.cache_clear()
    with pytest.raises(DataError, match="data_batch_5 is 76,[0-9,]+ bytes"):                  # the extracted folder: the same
        load_split("cifar10", "valid", data_dir=cifar_dir / "x", download=False)
