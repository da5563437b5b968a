"""Stopping a training run cleanly: the first Ctrl-C (SIGINT), SIGTERM (what schedulers and `docker stop` send) or
SIGHUP (a closed terminal or SSH session) asks the loop to stop after the current iteration and checkpoint; a second
signal stops at once. A signal the process was started ignoring (`nohup` ignores SIGHUP; a shell's background
job ignores SIGINT) stays ignored: the run survives what its user chose to survive."""
from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM) + ((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())


class stop_on_signals:
    """Context manager: while inside, SIGINT / SIGTERM / SIGHUP call `request_stop()` (main thread only), except
    those whose handler is SIG_IGN on entry."""

    def __init__(self, request_stop):
        self.request_stop, self.previous = request_stop, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, frame):
        self.request_stop(signal.Signals(signum).name)
        for sig, previous in self.previous.items():     # a second signal acts as it would without us
            signal.signal(sig, previous)

    def __exit__(self, *exc):
        for sig, previous in self.previous.items():
            signal.signal(sig, previous)
        self.previous = {}
        return False
