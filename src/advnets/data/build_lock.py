"""One process builds a cache file while the others wait: an operating-system lock on a `.lock` file beside it.

Two processes that need the same missing cache at once (the ranks of a torchrun run, or two runs on one folder)
would otherwise both build it. With

    with build_lock(stem.with_suffix(".lock"), "folder pics") as lock:
        if not built(): build(..., progress=lock.beat)

the first process to arrive builds, and the others block in `build_lock` until it is done, then find the cache
built. The lock is `flock(LOCK_EX)`, released by the operating system however its holder ends (kill -9
included), so a dead builder never blocks anyone: the next waiter takes the lock and builds. A live builder
proves it is making progress by `beat()` (it touches the lock file, at most once a second); a waiter that sees
no progress for $ADVNETS_CACHE_TIMEOUT seconds (default 300) gives up with a one-line DataError naming the
holder. A builder that succeeds removes the lock file; one that fails leaves it (harmless, reused). Without
`fcntl` (Windows) nothing is locked.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from advnets.errors import DataError, OutputError

try:
    import fcntl
except ImportError:                     # not a POSIX system: no locking
    fcntl = None

log = logging.getLogger(__name__)

TIMEOUT_ENV = "ADVNETS_CACHE_TIMEOUT"   # seconds without a sign of progress from the builder; default 300
POLL_S = 0.1                           # how often a waiter tries the lock again


class BuildLock:
    """The held lock: `beat()` tells waiters that the build is making progress (cheap; call it often)."""

    def __init__(self, file):
        self.file, self.last = file, time.monotonic()

    def beat(self) -> None:
        if self.file is not None and time.monotonic() - self.last >= 1.0:
            self.last = time.monotonic()
            try:
                os.utime(self.file.fileno())
            except OSError:             # informational only
                pass


@contextmanager
def build_lock(path: Path, what: str) -> Iterator[BuildLock]:
    """Hold the lock `path` (created, with its folder, if missing) while the body builds `what`; blocks while
    another process holds it. An OSError creating it is an OutputError; a stalled holder is a DataError."""
    if fcntl is None:
        yield BuildLock(None)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file = _acquire(path, what)
    except OSError as exc:
        raise OutputError.from_os_error(exc, path) from None
    try:
        _describe(file)
        yield BuildLock(file)
        try:                            # built: the next process finds the cache, no lock file needed
            path.unlink()
        except OSError:
            pass
    finally:
        file.close()                    # closing the descriptor releases the lock


def _acquire(path: Path, what: str):
    started, said = time.time(), False
    timeout = float(os.environ.get(TIMEOUT_ENV, "300"))
    file = open(path, "a+")
    while True:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            quiet = time.time() - max(os.fstat(file.fileno()).st_mtime, started)
            if quiet > timeout:
                holder = _holder(file)
                file.close()
                raise DataError(f"waited {quiet:.0f} s for {holder} to build {what}, with no sign of progress "
                                f"(lock file {path})", f"if that process is stuck, stop it and start again; set "
                                f"{TIMEOUT_ENV} to wait longer than {timeout:g} s") from None
            if not said:
                log.info(f"waiting for {_holder(file)}, which is building {what}")
                said = True
            time.sleep(POLL_S)
            continue
        try:         # the holder we waited for may have removed the file: lock the one now at `path`
            same = os.stat(path).st_ino == os.fstat(file.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return file
        file.close()
        file = open(path, "a+")


def _describe(file) -> None:
    try:
        file.seek(0)
        file.truncate()
        file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n")
        file.flush()
    except OSError:                     # informational only
        pass


def _holder(file) -> str:
    try:
        file.seek(0)
        info = json.loads(file.read())
        return f"process {info['pid']} on host {info['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
