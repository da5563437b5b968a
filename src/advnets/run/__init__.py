"""A run directory as a format, read and written without the training package: its layout (layout.py), the lock
of its one writer (lock.py), checkpoints (checkpoint.py), a finished run loaded for sampling (loaded.py), its HTML
report (report.py) and its generator exported (export.py).

    from advnets.run import load_run
    images = load_run("runs/demo").sample(64)
"""
