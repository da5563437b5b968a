"""fileio.py under faults: a disk that fills while a memory-mapped .npy is written, and the temporaries of writers
killed with SIGKILL (which no `finally` can remove). Real child processes, a real small tmpfs, real signals."""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from advnets.fileio import atomic_npy, atomic_write_text, scratch_npy, writer_is_gone
from advnets.run.layout import remove_stale_temporaries

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1"}

# A child that fills a (64, 1024, 1024) uint8 map (64 MiB) for OUT, block by block, through the fileio context
# {writer}: atomic_npy (WRITER, the .npy at OUT) or scratch_npy (SCRATCH, a scratch file beside OUT). With argument
# "hold" it says "writing" after the first block and waits to be killed.
_CHILD = """
import signal, sys, time
from advnets.errors import AdvnetsError
from advnets.fileio import {writer}
try:
    with {writer}(sys.argv[1], (64, 1024, 1024), "uint8") as out:
        for i in range(64):
            out[i] = i
            if sys.argv[2:] == ["hold"] and i == 0:
                print("writing", flush=True)
                time.sleep(600)
except AdvnetsError as exc:
    print(f"error: {{exc}}", flush=True)
    sys.exit(1)
"""
WRITER, SCRATCH = _CHILD.format(writer="atomic_npy"), _CHILD.format(writer="scratch_npy")


def _temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".tmp"))


def _holding_writer(out: Path, child_code: str = WRITER) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", child_code, str(out), "hold"], env=ENV, stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline() == "writing\n"
    return child


def _kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)


def test_a_killed_writers_temporary_is_removed_by_the_next_write_of_that_name(tmp_path):
    out = tmp_path / "big.npy"
    killed = _holding_writer(out)
    _kill(killed)
    orphan, = _temporaries(tmp_path)
    assert orphan.stat().st_size > 64 << 20 and str(killed.pid) in orphan.name    # its writer is named
    live = _holding_writer(out)                      # a live writer's temporary is never touched
    try:
        mine, = (p for p in _temporaries(tmp_path) if str(live.pid) in p.name)
        with atomic_npy(out, (2, 3), "float32") as array:
            array[:] = 7
        assert _temporaries(tmp_path) == [mine]      # the orphan went, the live writer's stays
        assert np.load(out).tolist() == [[7.0] * 3] * 2
    finally:
        _kill(live)
    assert writer_is_gone(mine)


def test_a_run_directory_keeps_a_live_writers_temporary(tmp_path):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    atomic_write_text(run / "config.json", "{}")
    dead = _holding_writer(run / "samples" / "dead.npy")
    _kill(dead)
    live = _holding_writer(run / "samples" / "live.npy")
    try:
        orphan, = (p for p in _temporaries(run / "samples") if p.name.startswith(".dead.npy."))
        theirs, = (p for p in _temporaries(run / "samples") if p.name.startswith(".live.npy."))
        assert remove_stale_temporaries(run) == [orphan]
        assert _temporaries(run / "samples") == [theirs]
    finally:
        _kill(live)
    assert remove_stale_temporaries(run) == [theirs]


def _tmpfs_command(folder: Path, size: str, *command: str) -> list[str] | None:
    """`command` run in a mount namespace of its own where `folder` is a tmpfs of `size` (unshare -rm: needs
    unprivileged user namespaces, or root); None where this machine cannot."""
    if shutil.which("unshare") is None or sys.platform != "linux":
        return None
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", "1m", str(folder), "true"],
                           capture_output=True, timeout=60, check=False)
    if probe.returncode != 0:
        return None
    return ["unshare", "-rm", "sh", "-c", script, "sh", size, str(folder), *command]


def _fill_a_small_disk(tmp_path: Path, name: str, child_code: str) -> None:
    """Run `child_code` on FULL/name in a 16 MiB tmpfs FULL: it must exit 1 with one error line naming the file,
    and leave FULL empty."""
    full = tmp_path / "full"
    full.mkdir()
    out = full / name
    listing = f"import os; print(sorted(os.listdir({str(full)!r})))"
    command = _tmpfs_command(full, "16m", sys.executable, "-c",
                             f"import sys; sys.argv = ['-', {str(out)!r}]\n"
                             f"try:\n    exec({child_code!r})\nfinally:\n    {listing}")
    if command is None:
        pytest.skip("cannot mount a small tmpfs here (no unshare -rm)")
    child = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120, check=False)
    assert child.returncode == 1, (child.returncode, child.stdout, child.stderr[-2000:])
    error, left = child.stdout.splitlines()
    assert error == f"error: cannot write {out}: the disk is full -- free some disk space or write elsewhere"
    assert left == "[]"                              # no output, no temporary


def test_a_disk_that_fills_under_a_memory_mapped_write_is_one_line_naming_the_file(tmp_path):
    """64 MiB into a 16 MiB tmpfs. Mapped without its blocks allocated, the file's pages fault in as they are
    stored to; the first page the tmpfs has no room for kills the writer with SIGBUS, silently."""
    _fill_a_small_disk(tmp_path, "samples.npy", WRITER)


def _scratches(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".scratch"))


def test_a_scratch_map_is_removed_however_its_block_ends(tmp_path):
    with scratch_npy(tmp_path / "work", (3, 4), "uint8") as work:
        work[:] = 5
        assert int(work.sum()) == 60 and len(_scratches(tmp_path)) == 1
    with pytest.raises(ZeroDivisionError), scratch_npy(tmp_path / "work", (3, 4), "uint8"):
        1 / 0                                                   # noqa: B018  an error inside the block
    assert list(tmp_path.iterdir()) == []                       # nothing at the path, no temporary


def test_a_killed_scratch_writers_file_is_removed_by_the_next_scratch_of_that_name(tmp_path):
    killed = _holding_writer(tmp_path / "rgb", SCRATCH)
    _kill(killed)
    orphan, = _scratches(tmp_path)
    assert orphan.stat().st_size >= 64 << 20 and str(killed.pid) in orphan.name
    live = _holding_writer(tmp_path / "rgb", SCRATCH)
    try:
        mine, = (p for p in _scratches(tmp_path) if str(live.pid) in p.name)
        with scratch_npy(tmp_path / "rgb", (2,), "uint8"):
            assert orphan not in _scratches(tmp_path) and mine in _scratches(tmp_path)
    finally:
        _kill(live)


def test_a_disk_that_fills_under_a_scratch_map_is_one_line_naming_the_file(tmp_path):
    _fill_a_small_disk(tmp_path, "cache.rgb", SCRATCH)
