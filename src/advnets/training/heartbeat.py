"""A heartbeat between the ranks of a distributed run: a stopped rank (SIGSTOP, Ctrl-Z, a frozen machine) is named
in one line within a bounded time, instead of holding the others in a collective for its whole timeout.

Why not a short collective timeout: a rank waits in an all-reduce for as long as its peers take to reach it, and
rank 0 alone writes checkpoints, sample grids and evaluations between steps, which may take minutes on a big run. A
heartbeat tells a busy peer from a stopped one. Each rank runs a thread that adds 1 to a counter of its own in the
run's key-value store (the TCPStore at MASTER_ADDR:MASTER_PORT that torchrun starts and the process group uses) every
few seconds, and reads its peers' counters. That thread beats while its rank's main thread writes a checkpoint; it
stops only when the whole process stops. Counters, not times: each rank measures a peer's silence on its own
monotonic clock, so the machines' clocks need not agree.

When a peer's counter has not moved for $ADVNETS_DIST_HEARTBEAT seconds (default 90; 0 turns the heartbeat off):
* the main thread, waiting in a collective (Dist waits in slices of a second on Gloo and looks at `error` between
  them), raises the DistributedError naming the silent rank; the CLI prints it in one line;
* the process cannot then leave the usual way: tearing the process group down, and the interpreter's exit, wait for
  the Gloo threads still blocked on the silent peer, up to the collectives' timeout. So once the main thread has
  ended, this thread (not a daemon: the interpreter's exit waits for it first) ends the process, with status 1;
* a main thread that is not in such a wait (a GPU run, or a gather) does not see the error: GRACE_S seconds later
  this thread logs the line itself and ends the process.
"""
from __future__ import annotations

import datetime
import logging
import os
import socket
import sys
import threading
import time

import torch.distributed as td

from ..errors import AdvnetsError, ConfigError

log = logging.getLogger(__name__)

HEARTBEAT_ENV = "ADVNETS_DIST_HEARTBEAT"  # seconds a rank may give no sign of life; default 90, 0 for no heartbeat
DEFAULT_S = 90.0
GRACE_S = 10.0                            # how long the main thread has to raise the error before this thread exits
KEY = "advnets/heartbeat"                 # KEY/RANK: the rank's beats; KEY/RANK/who: its process id and host


class DistributedError(AdvnetsError):
    """Another rank died or stopped answering; the run stops (resume it from its last checkpoint)."""


def seconds_from_env(name: str, default: float) -> float:
    """A number of seconds from the environment variable `name` (`default` when unset); a ConfigError if it is not
    a non-negative number."""
    text = os.environ.get(name, "").strip()
    try:
        value = float(text) if text else default
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"{name}={text!r} is not a number of seconds", f"set it to a number such as {default:g}")
    return value


class Heartbeat:
    """This rank's beat and its watch over the others (started by `Heartbeat.start`, ended by `stop`)."""

    def __init__(self, store, rank: int, world_size: int, limit: float):
        self.store, self.rank, self.world_size, self.limit = store, rank, world_size, limit
        self.interval = min(5.0, max(0.1, limit / 6))
        self.error: DistributedError | None = None
        self.raised = False                       # the main thread has raised `error` (so the CLI printed it)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="advnets-heartbeat", daemon=False)

    @classmethod
    def start(cls, rank: int, world_size: int) -> Heartbeat | None:
        """The heartbeat of this rank, beating; None when $ADVNETS_DIST_HEARTBEAT is 0 or the run has no TCPStore at
        MASTER_ADDR:MASTER_PORT (a process group made another way)."""
        limit = seconds_from_env(HEARTBEAT_ENV, DEFAULT_S)
        host, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT", "")
        if not limit or not host or not port.isdigit():
            return None
        try:
            store = td.TCPStore(host, int(port), is_master=False, wait_for_workers=False,
                                timeout=datetime.timedelta(seconds=limit))
            store.set(f"{KEY}/{rank}/who", f"process {os.getpid()} on host {socket.gethostname()}")
        except (RuntimeError, ValueError, OSError) as exc:
            log.debug(f"no heartbeat: the store at {host}:{port} did not answer ({exc})")
            return None
        beat = cls(store, rank, world_size, limit)
        beat._thread.start()
        return beat

    def check(self) -> None:
        """Raise the error the watch found, if any (the main thread calls it while it waits)."""
        if self.error is not None:
            self.raised = True
            raise self.error

    def stop(self) -> None:
        """End the beat (after the ranks' last barrier: a peer still running must not see this rank fall silent)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        main = threading.main_thread()
        try:
            self._watch(main)
        except (RuntimeError, OSError) as exc:    # the store stopped answering (its host is stopped or gone)
            if self._stop.is_set() or not main.is_alive():
                return
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
            self.error = DistributedError(f"rank {self.rank} of {self.world_size} lost contact with the run's "
                                          f"key-value store ({first})", "the process that holds it (torchrun, or "
                                          "rank 0) stopped or died; resume with `advnets train --resume RUN`")
        if self.error is not None:
            self._end_process(main)

    def _watch(self, main: threading.Thread) -> None:
        """Beat, and read the peers' beats, until stopped, until the main thread ends, or until a peer is silent
        for longer than the limit (then `error` names it)."""
        peers = [r for r in range(self.world_size) if r != self.rank]
        seen: dict[int, tuple[int, float]] = {}             # peer: (its count, when this rank saw it change)
        beat = time.monotonic() + self.interval
        while not self._stop.wait(min(self.interval, 0.25)) and main.is_alive():    # (an exit waits for this)
            if time.monotonic() < beat:
                continue
            beat = time.monotonic() + self.interval
            self.store.add(f"{KEY}/{self.rank}", 1)
            for peer in peers:
                count, now = self.store.add(f"{KEY}/{peer}", 0), time.monotonic()
                if peer not in seen or seen[peer][0] != count:
                    seen[peer] = (count, now)
                elif now - seen[peer][1] > self.limit:
                    self.error = self._silent(peer, now - seen[peer][1])
                    return

    def _silent(self, peer: int, seconds: float) -> DistributedError:
        try:
            who = f" ({self.store.get(f'{KEY}/{peer}/who').decode()})"
        except (RuntimeError, UnicodeDecodeError):
            who = ""
        return DistributedError(
            f"rank {peer} of {self.world_size}{who} has given no sign of life for {seconds:.0f} s: it is stopped "
            "(SIGSTOP, Ctrl-Z) or its machine froze, so the run cannot go on",
            f"end that process and resume with `advnets train --resume RUN`; {HEARTBEAT_ENV} sets how long a rank "
            f"may be silent (now {self.limit:g} s)")

    def _end_process(self, main: threading.Thread) -> None:
        """Give the main thread GRACE_S seconds to raise `error`, then end the process: the Gloo threads blocked on
        the silent peer would hold its exit for the collectives' whole timeout."""
        deadline = time.monotonic() + GRACE_S
        while main.is_alive() and (self.raised or time.monotonic() < deadline):
            if self._stop.wait(0.1) and main.is_alive():
                return                            # stopped by a main thread that goes on (the Python API's choice)
        if not self.raised or main.is_alive():
            log.error(str(self.error))
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os._exit(1)
