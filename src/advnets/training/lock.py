"""One run directory, one writer: an operating-system lock on RUN/.lock, held while a Trainer lives.

The lock is `flock(LOCK_EX | LOCK_NB)`, so the operating system releases it when its holder exits, however it
exits (kill -9 included): a dead run never blocks anyone, unlike a PID file. The holder writes its process id,
host and start time into the file, for the one-line message another writer gets. Without `fcntl` (Windows) runs
are not locked.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from ..errors import OutputError, RunError

try:
    import fcntl
except ImportError:                     # not a POSIX system: no locking
    fcntl = None

LOCK = ".lock"


class RunLock:
    """The exclusive right to write `run_dir`. `RunLock.acquire(run_dir)` takes it or raises RunError."""

    def __init__(self, run_dir: Path, file, created: bool):
        self.run_dir, self.file, self.created = run_dir, file, created

    @classmethod
    def acquire(cls, run_dir: str | Path, create: bool = True) -> "RunLock":
        """Lock `run_dir` (made first when `create`; else it must exist). A directory another live process holds
        is a RunError naming that process."""
        run_dir = Path(run_dir)
        created = False
        try:
            if not run_dir.is_dir():
                if not create:
                    raise RunError(f"{run_dir} is not a run directory (no such directory)",
                                   "pass the directory given to `advnets train --out`")
                run_dir.mkdir(parents=True)
                created = True
            while True:
                file = open(run_dir / LOCK, "a+")
                if fcntl is None or _locked(file, run_dir):
                    break
        except OSError as exc:
            if exc.errno is not None and exc.filename is None:
                exc.filename = str(run_dir)
            raise OutputError.from_os_error(exc, run_dir, "pass an --out directory you can write to") from None
        lock = cls(run_dir, file, created)
        lock._describe()
        return lock

    def _describe(self) -> None:
        try:
            self.file.seek(0)
            self.file.truncate()
            self.file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                        "started": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
            self.file.flush()
        except OSError:                 # informational only (a full disk must not stop a lock)
            pass

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


def _locked(file, run_dir: Path) -> bool:
    """Try to lock `file`: True when locked; False when the lock file was replaced meanwhile (try again); a
    RunError when another process holds it."""
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(file)
        file.close()
        raise RunError(f"{run_dir} is being trained by {holder}",
                       "wait for it to finish (or stop it), or pass another --out") from None
    try:   # an abandoned directory's lock file may have been removed between our open and our lock
        same = os.stat(run_dir / LOCK).st_ino == os.fstat(file.fileno()).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        file.close()
    return same


def _holder(file) -> str:
    try:
        file.seek(0)
        info = json.loads(file.read())
        return f"process {info['pid']} on host {info['host']} (started {info['started']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"
