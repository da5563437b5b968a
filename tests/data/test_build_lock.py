"""One builder of a cache at a time (run/lock.py), as the decoded folder cache (data/folder_cache.py) uses it:
two processes that need the same folder at once decode it once; a stalled builder is a one-line error."""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from advnets.data import folder
from advnets.data.folder_cache import cache_stem, open_folder_cache
from advnets.errors import DataError
from advnets.run.lock import TIMEOUT_ENV, build_lock
from tests.training.test_streaming import write_folder

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no fcntl: caches are not locked")

# A process that opens the cache of folder argv[1] (decoding it if needed). Its decoder logs every file it decodes
# into argv[2] and, before the first, waits for the file argv[3] to exist: the test holds a builder there.
CHILD = """
import logging, os, sys, time
from pathlib import Path
import numpy as np
from advnets.data import folder
from advnets.data.folder_cache import open_folder_cache

logging.basicConfig(level=logging.INFO, format="%(message)s")
decode, log, gate = folder.decode_image, Path(sys.argv[2]), Path(sys.argv[3])
def slow(path, size):
    while not gate.exists():
        time.sleep(0.02)
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\\n")
    return decode(path, size)
folder.decode_image = slow
d = Path(sys.argv[1])
cache = open_folder_cache(d, 8, folder.checked_listing(d)[1])
print(int(np.asarray(cache.pixels, dtype=np.int64).sum()), cache.pixels.shape)
"""


def _child(tmp_path: Path, name: str, d: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "ADVNETS_DATA": str(tmp_path / "cache")}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(d), str(tmp_path / "decoded.txt"),
                             str(tmp_path / "go")], env=env, stdout=subprocess.PIPE,
                            stderr=open(tmp_path / f"{name}.err", "w"), text=True)


def _wait_for(condition, what: str, procs, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), f"never saw {what}"
        time.sleep(0.02)


def test_two_processes_needing_one_folder_decode_it_once(tmp_path):
    d = write_folder(tmp_path / "pics", n=24).resolve()
    lock = cache_stem(d, 8, folder.checked_listing(d)[1], tmp_path / "cache").with_suffix(".lock")
    a = _child(tmp_path, "a", d)
    procs = [a]
    try:     # a holds the lock (its pid is in the lock file) and waits at the gate; then b starts, and must wait
        _wait_for(lambda: lock.exists() and f'"pid": {a.pid}' in lock.read_text(), "a take the lock", procs)
        b = _child(tmp_path, "b", d)
        procs.append(b)
        _wait_for(lambda: "waiting for process" in (tmp_path / "b.err").read_text(), "b wait", procs)
        (tmp_path / "go").touch()
        outs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], (tmp_path / "a.err").read_text() + (tmp_path / "b.err").read_text()
    assert f"waiting for process {a.pid} on host" in (tmp_path / "b.err").read_text()
    decoders = (tmp_path / "decoded.txt").read_text().split()
    assert decoders == [str(a.pid)] * 24                        # one decode of each file, all by a
    assert outs[0] == outs[1] and outs[0].strip().endswith("(24, 3, 8, 8)")
    assert not lock.exists()                                    # removed by the builder once the cache was whole


def test_a_stalled_builder_is_a_one_line_error(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(TIMEOUT_ENV, "1")
    d = write_folder(tmp_path / "pics", n=12).resolve()
    listing = folder.checked_listing(d)[1]
    lock = cache_stem(d, 8, listing, tmp_path / "cache").with_suffix(".lock")
    monkeypatch.setattr(logging.getLogger("advnets"), "propagate", True)   # the CLI's logging may have turned it off
    with build_lock(lock, "a test's cache"):                    # held here, no progress: open_folder_cache waits
        with (caplog.at_level(logging.INFO, logger="advnets"),
              pytest.raises(DataError, match=rf"waited \d+ s for process {os.getpid()} on host .* to build the "
                                             "decoded cache of .*, with no sign of progress") as info):
            open_folder_cache(d, 8, listing, tmp_path / "cache")
        assert f"waiting for process {os.getpid()}" in caplog.text          # it waited before giving up ...
        assert int(re.search(r"waited (\d+) s", str(info.value))[1]) >= 1     # ... the timeout, by its own count
        assert TIMEOUT_ENV in info.value.hint and "\n" not in str(info.value)
    # a lock file left behind by a builder that failed (or was killed) does not block: the next one builds
    lock.write_text("{}")
    cache = open_folder_cache(d, 8, listing, tmp_path / "cache")
    assert cache.pixels.shape == (12, 3, 8, 8) and not lock.exists()
    assert np.array_equal(open_folder_cache(d, 8, listing, tmp_path / "cache").pixels, cache.pixels)
