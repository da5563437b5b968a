"""Operating-system locks on a small file: one writer per run directory (`RunLock`, on RUN/.lock) and one builder
per data cache (`build_lock`, on a `.lock` file beside the cache; data/folder_cache.py uses it).

Both are `flock(LOCK_EX)`, so the operating system releases a lock when its holder exits, however it exits (kill -9
included): a dead holder never blocks anyone, unlike a PID file. The holder writes its process id, host and start
time into the file, for the one-line message that a refused writer or a waiting builder gets. A lock file is
opened without following a symbolic link (O_NOFOLLOW): the holder truncates and writes it, so a link planted at its
path must not redirect that write. Without `fcntl` (Windows) nothing is locked.

Why not the `filelock` package (torch installs it): its flock lock records no holder, so the message could not name
the process (filelock 3 opens the file with O_TRUNC at every attempt, erasing what a holder wrote; only filelock 4
hands the holder its descriptor);
a run lock must refuse at once while a cache waiter must give up only when the builder stops making progress
(`BuildLock.beat`), where filelock's timeout counts the whole wait; and torch pins neither of its two major
versions, whose APIs differ. What it does about links and replaced files, this module does too.

This module imports nothing of advnets but its errors, so the data package can use it without importing the run
package's other modules (advnets/run/__init__.py imports none of them).
"""
from __future__ import annotations

import errno
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..errors import DataError, OutputError, RunError

try:
    import fcntl
except ImportError:                     # not a POSIX system: no locking
    fcntl = None

log = logging.getLogger(__name__)

LOCK = ".lock"                          # a run directory's lock file
TIMEOUT_ENV = "ADVNETS_CACHE_TIMEOUT"   # seconds without a sign of progress from a cache's builder; default 300
POLL_S = 0.1                            # how often a waiting builder tries the lock again
DESCRIBE_WAIT_S = 2.0                   # how long a refused writer waits for a new holder to write who it is


# ----- one flock, shared by both locks

def _open(path: Path) -> IO[str]:
    """The lock file at `path`, created if missing (mode 0666 less the umask), never through a symbolic link, and
    only a regular file (a FIFO planted there is refused at once)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0),
                     0o666)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise OutputError(f"cannot write the lock file {path}: it is a symbolic link",
                          "remove it; advnets creates the file again") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OutputError(f"cannot write the lock file {path}: it is not a regular file (a FIFO, device or socket)",
                          "remove it; advnets creates the file again")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "r+")


def _try_lock(file: IO[str], path: Path) -> bool | None:
    """flock(LOCK_EX | LOCK_NB) on `file`: True when it is ours; False when another process holds it; None when the
    file at `path` was removed or replaced since `file` was opened (its holder removed it: open `path` again)."""
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    try:
        same = os.stat(path).st_ino == os.fstat(file.fileno()).st_ino
    except FileNotFoundError:
        same = False
    return True if same else None


def _describe(file: IO[str]) -> None:
    """Write who holds the lock into its file (read by `_holder`)."""
    try:
        file.seek(0)
        file.truncate()
        file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                               "started": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
        file.flush()
    except OSError:                     # informational only (a full disk must not stop a lock)
        pass


def _holder(file: IO[str], wait: float = 0.0) -> str:
    """"process PID on host HOST (started TIME)", as the holder wrote it; "another process" when unreadable.
    `wait`: seconds to wait for a holder that has just taken the lock and not yet written who it is (a race)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            file.seek(0)
            info = json.loads(file.read())
            started = f" (started {info['started']})" if "started" in info else ""
            return f"process {info['pid']} on host {info['host']}{started}"
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() >= deadline:
                return "another process"
        time.sleep(0.01)


# ----- a run directory: one writer, refused at once

class RunLock:
    """The exclusive right to write `run_dir`. `RunLock.acquire(run_dir)` takes it or raises RunError."""

    def __init__(self, run_dir: Path, file: IO[str] | None, created: bool):
        self.run_dir, self.file, self.created = run_dir, file, created

    @classmethod
    def acquire(cls, run_dir: str | Path, create: bool = True) -> RunLock:
        """Lock `run_dir` (made first when `create`; else it must exist). A directory another live process holds
        is a RunError naming that process."""
        run_dir = Path(run_dir)
        created = False
        try:
            if not run_dir.is_dir():
                if not create:
                    raise RunError(f"{run_dir} is not a run directory (no such directory)",
                                   "pass the directory given to `advnets train --out`")
                created = _make_dir(run_dir)
            file = _lock_run_dir(run_dir)
        except OSError as exc:
            if exc.errno is not None and exc.filename is None:
                exc.filename = str(run_dir)
            raise OutputError.from_os_error(exc, run_dir, "pass an --out directory you can write to") from None
        _describe(file)
        return cls(run_dir, file, created)

    @property
    def held(self) -> bool:
        return self.file is not None

    def release(self, abandon: bool = False) -> None:
        """Give the directory up. `abandon`: the run never started, so a directory this lock created is removed
        again (when it holds nothing but the lock file)."""
        if self.file is None:
            return
        if abandon and self.created:
            try:
                (self.run_dir / LOCK).unlink()
                self.run_dir.rmdir()
            except OSError:
                pass
        self.file.close()               # closing the descriptor releases the lock
        self.file = None

    def __del__(self):
        if getattr(self, "file", None) is not None:
            self.file.close()


def _make_dir(run_dir: Path) -> bool:
    """Make `run_dir`; False when another process made it first (a race for a new run: the lock then decides)."""
    try:
        run_dir.mkdir(parents=True)
        return True
    except FileExistsError:
        if run_dir.is_dir():
            return False
        raise


def _lock_run_dir(run_dir: Path) -> IO[str]:
    """RUN/.lock, locked (open but not locked without fcntl); a RunError naming the holder when another process
    has it."""
    path = run_dir / LOCK
    while True:
        file = _open(path)
        state = True if fcntl is None else _try_lock(file, path)
        if state:
            return file
        holder = _holder(file, DESCRIBE_WAIT_S) if state is False else None
        file.close()
        if holder is not None:
            raise RunError(f"{run_dir} is being trained by {holder}",
                           "wait for it to finish (or stop it), or pass another --out")


# ----- a data cache: one builder, the others wait

class BuildLock:
    """The held lock: `beat()` tells waiters that the build is making progress (cheap; call it often)."""

    def __init__(self, file: IO[str] | None):
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
    """Hold the lock `path` (created, with its folder, if missing) while the body builds `what`:

        with build_lock(stem.with_suffix(".lock"), "folder pics") as lock:
            if not built(): build(..., progress=lock.beat)

    The first process to arrive builds; the others block here until it is done, then find the cache built. A dead
    builder's lock is free at once, so the next waiter builds. A waiter that sees no `beat()` for
    $ADVNETS_CACHE_TIMEOUT seconds (default 300) gives up with a DataError naming the holder. A builder that
    succeeds removes the lock file; one that fails leaves it (harmless, reused). An OSError creating the lock is an
    OutputError."""
    if fcntl is None:
        yield BuildLock(None)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file = _wait_for_lock(path, what)
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


def _wait_for_lock(path: Path, what: str) -> IO[str]:
    started, said = time.time(), False
    timeout = float(os.environ.get(TIMEOUT_ENV, "300"))
    file = _open(path)
    while True:
        state = _try_lock(file, path)
        if state:
            return file
        if state is None:               # the builder we waited for removed the file: lock the one now at `path`
            file.close()
            file = _open(path)
            continue
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
