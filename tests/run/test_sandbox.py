"""A run directory is a sandbox (run/layout.py, fileio.py): nothing advnets reads or writes for a run follows a
symbolic link out of it or opens anything but a regular file (a FIFO must not block a command), and no command's
output replaces the files a resume needs, whatever its --out says."""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from advnets import make_config, train
from advnets.cli import main
from advnets.data import folder
from advnets.data.folder_cache import FolderCacheWarning, cache_stem, open_folder_cache
from advnets.errors import OutputError, RunError
from advnets.fileio import atomic_write_text, open_append, read_regular
from advnets.run import layout
from advnets.run.export import export_generator
from advnets.run.loaded import load_run
from advnets.run.lock import RunLock
from advnets.run.report import write_report
from tests.conftest import TINY
from tests.training.test_streaming import write_folder

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and O_NOFOLLOW are POSIX")

SECRET = "TOPSECRET-outside-the-run"
HANG_S = 240            # a guard against a command blocked on a FIFO, far above any normal duration


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("sandbox") / "run"
    train(make_config("paper-mnist", {**TINY, "train.epochs": 1}), run_dir)
    return run_dir


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A fresh copy of a finished 1-epoch run."""
    return Path(shutil.copytree(trained, tmp_path / "run", symlinks=True))


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside the run, with a secret text file, a JSON file and a metrics-like file."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret.txt").write_text(SECRET + "\n")
    (d / "token.json").write_text(f'{{"token": "{SECRET}"}}')
    (d / "metrics.jsonl").write_text('{"kind": "step", "step": 1, "note": "not this run"}\n')
    return d


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder`: a file's sha256, a link's target, a folder's and a FIFO's kind."""
    out = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        if path.is_symlink():
            out[key] = "-> " + os.readlink(path)
        elif path.is_file():
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[key] = "dir" if path.is_dir() else "special"
    return out


def advnets(*args) -> subprocess.CompletedProcess:
    """The CLI in a real process (a FIFO that blocked it would block this test: the timeout ends that)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        return subprocess.run([sys.executable, "-m", "advnets", *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=HANG_S, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"advnets {' '.join(map(str, args))} blocked for {HANG_S} s")


def cli(capsys, *args) -> tuple[int, str]:
    """The CLI in this process: (exit code, stderr)."""
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("advnets: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@contextmanager
def hang_guard(seconds: int = HANG_S):
    """Fail instead of blocking forever (an open() of a FIFO waits for a writer; SIGALRM interrupts it)."""
    def expired(signum, frame):
        raise TimeoutError(f"blocked for {seconds} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ----- reading: only regular files inside the run, never blocking

def test_report_embeds_only_regular_pngs_and_json_objects_of_the_run(run, outside):
    os.mkfifo(run / "samples" / "epoch_9999.png")
    (run / "samples" / "epoch_9998.png").symlink_to(outside / "secret.txt")
    (run / "samples" / "epoch_9997.png").write_text("a text file named like a PNG\n")
    (run / "eval").mkdir()
    os.mkfifo(run / "eval" / "x.json")
    (run / "eval" / "token.json").symlink_to(outside / "token.json")
    (run / "eval" / "list.json").write_text("[1, 2]")
    (run / "eval" / "parzen.json").write_text('{"test_mean": 225.125}')
    proc = advnets("report", run)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = proc.stderr.strip().splitlines()
    assert all(line.startswith("advnets: warning: left ") for line in warnings), proc.stderr
    for name in ("epoch_9999.png", "epoch_9998.png", "epoch_9997.png", "x.json", "token.json", "list.json"):
        assert sum(name in line for line in warnings) == 1, (name, proc.stderr)
    page = (run / "report.html").read_text()
    assert SECRET not in page and base64.b64encode(f"{SECRET}\n".encode()).decode() not in page
    assert base64.b64encode(b"a text file").decode()[:12] not in page
    assert "eval/parzen.json" in page and "225.125" in page          # the run's own files are still shown
    assert page.count('<img class="grid"') == 1                       # samples/epoch_0001.png, the real grid


def test_report_refuses_a_metrics_or_config_file_that_is_a_fifo_or_a_link(run, outside, capsys):
    (run / "metrics.jsonl").unlink()
    os.mkfifo(run / "metrics.jsonl")
    with hang_guard():
        code, err = cli(capsys, "report", run)
    assert_one_line_error(code, err, "metrics.jsonl", "FIFO")
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(outside / "metrics.jsonl")
    with pytest.raises(RunError, match="metrics.jsonl.*symbolic link"):
        write_report([run], run / "report.html")
    (run / "config.json").unlink()
    (run / "config.json").symlink_to(outside / "token.json")
    with pytest.raises(RunError, match="config.json.*symbolic link"):
        write_report([run], run / "report.html")
    assert not (run / "report.html").exists()


def test_resume_refuses_a_metrics_file_that_is_a_fifo(run):
    (run / "metrics.jsonl").unlink()
    os.mkfifo(run / "metrics.jsonl")
    proc = advnets("train", "--resume", run, "--epochs", 2)
    assert_one_line_error(proc.returncode, proc.stderr, "metrics.jsonl", "FIFO", "remove it")
    assert "Traceback" not in proc.stderr


# ----- writing: never through a link, never outside the run

@pytest.mark.parametrize("dangling", [False, True])
def test_metrics_link_is_never_appended_to_or_created_outside(run, outside, dangling):
    target = outside / ("new.jsonl" if dangling else "metrics.jsonl")
    before = snapshot(outside)
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(target)
    with pytest.raises(OutputError, match="metrics.jsonl.*symbolic link"):
        layout.append_metrics(run, {"kind": "step", "step": 99})
    with pytest.raises(RunError, match="metrics.jsonl.*symbolic link"):
        train(make_config("paper-mnist", {**TINY, "train.epochs": 2}), run, resume=True)
    assert snapshot(outside) == before and target.exists() == (not dangling)


def test_resume_never_writes_through_a_linked_samples_folder(run, outside):
    shutil.move(run / "samples", outside / "samples")
    (run / "samples").symlink_to(outside / "samples")
    before = snapshot(outside)
    with pytest.raises(RunError, match="samples is a symbolic link"):
        train(make_config("paper-mnist", {**TINY, "train.epochs": 2}), run, resume=True)
    assert snapshot(outside) == before


@pytest.mark.parametrize("folder_name, command", [
    ("report_files", ["report", "{run}"]),
    ("export", ["export", "{run}"]),
    ("figures", ["figure", "interpolate", "{run}", "--device", "cpu"]),
    ("eval", ["eval", "{run}", "--n-samples", "20", "--device", "cpu"]),
])
def test_linked_folders_inside_a_run_are_never_written_through(run, outside, capsys, folder_name, command):
    target = outside / folder_name
    target.mkdir()
    (target / "losses.png").write_text("keep\n")
    (target / "generator.pt").write_text("keep\n")
    (run / folder_name).symlink_to(target)
    before = snapshot(outside)
    code, err = cli(capsys, *(c.format(run=run) for c in command))
    assert_one_line_error(code, err, folder_name, "symbolic link")
    assert snapshot(outside) == before


def test_a_path_through_a_link_and_back_is_refused(run, outside):
    """RUN/link/.. is the parent of the link's target, not RUN: a write there would land outside the run."""
    (outside / "deep").mkdir()
    (run / "elsewhere").symlink_to(outside / "deep")
    before = snapshot(outside)
    with pytest.raises(RunError, match="elsewhere is a symbolic link"):
        write_report([run], run / "elsewhere" / ".." / "report.html")
    assert snapshot(outside) == before


def test_atomic_writes_replace_a_link_at_the_final_name(run, outside):
    """A write renames a new file onto its name: a link planted there is replaced, not written through."""
    (run / "config.json").unlink()
    (run / "config.json").symlink_to(outside / "token.json")
    before = snapshot(outside)
    atomic_write_text(run / "config.json", "{}\n")
    assert not (run / "config.json").is_symlink() and snapshot(outside) == before


def test_append_refuses_a_fifo_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "f")
    with hang_guard(), pytest.raises(OutputError, match="FIFO"):
        open_append(tmp_path / "f")
    with hang_guard(), pytest.raises(RunError, match="FIFO"):
        read_regular(tmp_path / "f")


# ----- the run's lock and the data cache

def test_lock_that_is_a_fifo_or_a_link_is_refused(run, outside):
    (run / ".lock").unlink()
    os.mkfifo(run / ".lock")
    with hang_guard(), pytest.raises(OutputError, match="lock file .* not a regular file .a FIFO"):
        RunLock.acquire(run, create=False)
    (run / ".lock").unlink()
    (run / ".lock").symlink_to(outside / "secret.txt")
    before = snapshot(outside)
    with pytest.raises(OutputError, match="lock file .* is a symbolic link"):
        RunLock.acquire(run, create=False)
    assert snapshot(outside) == before


def test_folder_cache_files_are_not_read_through_links(tmp_path, outside):
    images = write_folder(tmp_path / "pics", n=12)
    listing = folder.checked_listing(images)[1]
    cache = open_folder_cache(images, 8, listing, tmp_path / "cache")
    real = np.array(cache.pixels)
    del cache
    stem = cache_stem(images, 8, listing, tmp_path / "cache")
    np.save(outside / "other.npy", 255 - real)                       # same shape, other pixels
    before = snapshot(outside)
    stem.with_suffix(".npy").unlink()
    stem.with_suffix(".npy").symlink_to(outside / "other.npy")
    with pytest.warns(FolderCacheWarning, match="symbolic link"):
        cache = open_folder_cache(images, 8, listing, tmp_path / "cache")
    assert np.array_equal(cache.pixels, real) and not stem.with_suffix(".npy").is_symlink()
    assert snapshot(outside) == before
    stem.with_suffix(".json").unlink()
    os.mkfifo(stem.with_suffix(".json"))
    with hang_guard(), pytest.warns(FolderCacheWarning, match="FIFO"):
        cache = open_folder_cache(images, 8, listing, tmp_path / "cache")
    assert np.array_equal(cache.pixels, real)


# ----- outputs never replace the run's own files

@pytest.mark.parametrize("command", [
    ["export", "{run}", "--out", "{run}/checkpoints/last.pt"],
    ["export", "{run}", "--out", "{link}/config"],                   # also writes {link}/config.json
    ["report", "{run}", "--out", "{run}/config.json"],
    ["report", "{run}", "--out", "{run}/checkpoints/last.pt"],
    ["report", "{run}", "--out", "{run}/eval/../metrics.jsonl"],
    ["sample", "{run}", "--out", "{run}/samples/epoch_0001.png", "--device", "cpu"],
    ["sample", "{run}", "--out", "{link}/checkpoints/more.npy", "--device", "cpu"],
    ["figure", "interpolate", "{run}", "--out", "{run}/config.json", "--device", "cpu"],
    ["figure", "samples", "{run}", "--out", "{run}/.lock", "--device", "cpu"],
])
def test_outputs_never_replace_a_runs_files(run, tmp_path, capsys, command):
    (tmp_path / "link").symlink_to(run)
    before = snapshot(run)
    code, err = cli(capsys, *(c.format(run=run, link=tmp_path / "link") for c in command))
    assert_one_line_error(code, err, "would replace", "a file of the run")
    assert snapshot(run) == before


def test_the_python_api_refuses_to_replace_a_runs_files(run):
    before = snapshot(run)
    with pytest.raises(RunError, match="would replace config.json"):
        write_report([run], run / "config.json")
    with pytest.raises(RunError, match="would replace checkpoints/last.pt"):
        export_generator(load_run(run, device="cpu"), run / "checkpoints" / "last.pt", "torchscript")
    assert snapshot(run) == before
    assert layout.check_output(run / "report.html") == run / "report.html"     # its own outputs are fine
    assert write_report([run], run / "report.html").exists()
