"""A run directory as a format, read and written without the training package: its layout (layout.py), the lock
of its one writer (lock.py), checkpoints (checkpoint.py), a finished run loaded for sampling (loaded.py), its HTML
report (report.py, curves.py) and its generator exported (export.py).

    from advnets.run import load_run
    images = load_run("runs/demo").sample(64)
"""
import importlib

# The names load on first use (PEP 562): the data package imports lock.py for its caches' build lock, which runs
# this file first, and loaded.py imports the data package; importing loaded.py here would make that a cycle.
_EXPORTS = {"LoadedRun": "loaded", "load_run": "loaded"}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["LoadedRun", "load_run"]
