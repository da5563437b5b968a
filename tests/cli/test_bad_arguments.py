"""Every bad argument and every write failure a user can cause is one line, a non-zero exit and no traceback; and
what was asked is written whole or not at all."""
import errno
import shutil
from collections import namedtuple

import numpy as np
import pytest
import torch
from PIL import Image

from advnets.config import make_config
from advnets.errors import OutputError
from advnets.run.loaded import load_run
from advnets.training import train
from tests.cli.test_cli import assert_user_error, run_main
from tests.conftest import TINY


@pytest.fixture(scope="module")
def run(tmp_path_factory, digits_images):
    path = tmp_path_factory.mktemp("bad") / "run"
    train(make_config(overrides={**TINY, "train.max_steps": 2}), path, train_images=digits_images)
    return path


BAD = [
    (["sample", "{run}", "--nrow", "-1"], "--nrow must be at least 1"),
    (["sample", "{run}", "--n", "0"], "--n must be at least 1"),
    (["sample", "{run}", "--device", "foo"], "unknown device 'foo'"),
    (["sample", "{run}", "--out", "{tmp}/s.jpg"], ".png (grid) or .npy"),
    (["sample", "{run}", "--n", "10000000", "--out", "{tmp}/big.png"], "megapixels"),
    (["sample", "{run}", "--out", "{tmp}/file/s.png"], "cannot write {tmp}/file/s.png"),
    (["eval", "{run}", "--sigmas", "abc"], "--sigmas must be comma-separated numbers"),
    (["eval", "{run}", "--sigmas", "0.1,-1"], "positive finite"),
    (["eval", "{run}", "--n-samples", "0"], "--n-samples must be at least 1"),
    (["figure", "samples", "{run}", "--rows", "0", "--cols", "1"], "--rows must be at least 1"),
    (["figure", "samples", "{run}", "--cols", "1"], "--cols must be at least 2"),
    (["figure", "interpolate", "{run}", "--steps", "0"], "--steps must be at least 2"),
    (["figure", "interpolate", "{run}", "--out", "{tmp}"], "cannot write {tmp}: it is a directory"),
    (["train", "--dataset", "digits", "--out", "{tmp}/file"], "cannot write {tmp}/file: a file of that name"),
    (["train", "--dataset", "digits", "--out", "{tmp}/file/run"], "not a directory"),
    (["train", "--device", "foo"], "train.device is 'foo'"),
    (["train", "--set", "train.lr=Infinity"], "train.lr must be a finite number"),
    (["train", "--set", "train.lr=NaN"], "train.lr must be a finite number"),
    (["train", "--set", "train.sample_every_epochs=0"], "sample_every_epochs must be at least 1"),
    (["train", "--set", "train.checkpoint_every_epochs=0"], "checkpoint_every_epochs must be at least 1"),
    (["train", "--set", "model.discriminator_units=[]"], "at least one layer"),
    (["train", "--set", "train.adam_betas=0.9,1.0"], "adam_betas[1] must be in [0, 1)"),
    (["train", "--set", "train.adam_betas=-0.1,0.9"], "adam_betas[0] must be in [0, 1)"),
    (["train", "--set", "train.log_every_steps=-1"], "log_every_steps must be >= 0"),
    (["train", "--set", "train.momentum_start=-0.5"], "momentum_start must be in [0, 1)"),
    (["train", "--set", "train.momentum_end=1.5"], "momentum_end must be in [0, 1)"),
    (["train", "--set", "train.lr_min=-1"], "lr_min must be >= 0"),
    (["train", "--resume", "{tmp}/nothing"], "not a run directory"),
]


@pytest.mark.parametrize("command, expected", BAD, ids=[" ".join(c[:3]) + " " + e[:20] for c, e in BAD])
def test_bad_argument_is_one_line(command, expected, run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("in the way")
    fill = lambda s: s.format(run=run, tmp=tmp_path)         # noqa: E731
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_user_error(run_main(capsys, *map(fill, command)), fill(expected))
    assert sorted(p.name for p in tmp_path.iterdir()) == before          # nothing written, nothing half-made
    assert not list(run.rglob(".*.tmp"))


def test_sample_npy_is_streamed_and_equals_the_samples(run, tmp_path, capsys):
    proc = run_main(capsys, "sample", run, "--n", 2345, "--seed", 3, "--out", tmp_path / "s.npy")
    assert proc.returncode == 0, proc.stderr
    written = np.load(tmp_path / "s.npy")
    expected = load_run(run).sample(2345, seed=3)            # batches of 1000: the chunks join seamlessly
    assert written.shape == (2345, 1, 8, 8) and written.dtype == np.float32
    np.testing.assert_array_equal(written, expected.numpy())


def test_sample_batches_are_lazy(run):
    batches = load_run(run).sample_batches(10 ** 12, batch_size=10)   # never materialised as a whole
    assert next(batches).shape == (10, 1, 8, 8)


def test_sample_npy_refuses_what_the_disk_cannot_hold(run, tmp_path, capsys, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 ** 6, 10 ** 6 - 1000, 1000))
    assert_user_error(run_main(capsys, "sample", run, "--n", 100, "--out", tmp_path / "s.npy"),
                      "100 samples need 0.00 GB", "only 0.00 GB are free")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("out", ["pngs/", "existing"])
def test_sample_to_a_folder_writes_one_png_per_sample(run, tmp_path, capsys, out):
    (tmp_path / "existing").mkdir()
    proc = run_main(capsys, "sample", run, "--n", 5, "--seed", 2, "--out", f"{tmp_path}/{out}")
    assert proc.returncode == 0, proc.stderr
    files = sorted((tmp_path / out.rstrip("/")).iterdir())
    assert [f.name for f in files] == [f"sample_{i:05d}.png" for i in range(5)]
    pixels = np.stack([np.asarray(Image.open(f)) for f in files]) / 255.0
    expected = load_run(run).sample(5, seed=2)[:, 0].numpy()
    assert np.abs(pixels - expected).max() <= 0.5 / 255 + 1e-6       # each PNG is its sample, 8-bit rounded


def test_disk_full_while_writing_a_png_is_one_line(run, tmp_path, capsys, monkeypatch):
    from advnets import fileio

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full)
    assert_user_error(run_main(capsys, "sample", run, "--out", tmp_path / "g.png"),
                      f"cannot write {tmp_path / 'g.png'}: the disk is full", "free some disk space")
    assert not list(tmp_path.iterdir())


def test_output_error_is_an_os_error():
    error = OutputError.from_os_error(OSError(errno.EROFS, "Read-only file system"), "x")
    assert isinstance(error, OSError) and error.errno == errno.EROFS
    assert str(error) == "cannot write x: the file system is read-only -- choose a path you can write to"


def test_nan_samples_are_refused(run):
    loaded = load_run(run)
    with torch.no_grad():
        next(loaded.generator.parameters()).fill_(float("inf"))
    from advnets.errors import RunError

    with pytest.raises(RunError, match="NaN or infinite samples"):
        loaded.sample(3)


def test_grids_scale_up_and_refuse_a_bad_scale(tmp_path, digits_images, tiny_overrides, capsys):
    from advnets.cli import main
    from advnets.config import make_config
    from advnets.training import train
    from PIL import Image

    train(make_config(overrides={**tiny_overrides, "train.max_steps": 2}), tmp_path / "run", train_images=digits_images)
    assert main(["sample", str(tmp_path / "run"), "--n", "4", "--nrow", "2", "--out", str(tmp_path / "a.png")]) == 0
    assert main(["sample", str(tmp_path / "run"), "--n", "4", "--nrow", "2", "--scale", "3",
                 "--out", str(tmp_path / "b.png")]) == 0
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "b.png") as b:
        assert b.size == (3 * a.size[0], 3 * a.size[1])
    assert main(["sample", str(tmp_path / "run"), "--scale", "0", "--out", str(tmp_path / "c.png")]) == 1
    assert "--scale must be at least 1" in capsys.readouterr().err and not (tmp_path / "c.png").exists()
