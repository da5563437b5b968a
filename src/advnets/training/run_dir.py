"""Preparing a run directory for the Trainer (the directory's format: advnets.run.layout)."""
from __future__ import annotations

from ..run.layout import CHECKPOINT, remove_stale_temporaries, truncate_metrics, write_config
from .checkpoint import restore_training_state


def prepare_run_dir(trainer, write: bool = True) -> bool:
    """Under the run's lock: remove temporaries a killed process left, restore the checkpoint if there is one,
    drop the metric lines after it, write config.json. True when the run starts from step 0 (a new run, or one
    that stopped before its first checkpoint: see resolve_config). `write` False (the other ranks of a distributed
    run): only restore."""
    run_dir = trainer.run_dir
    if write:
        remove_stale_temporaries(run_dir)
    from_scratch = not (run_dir / CHECKPOINT).exists()
    if not from_scratch:
        restore_training_state(trainer, run_dir / CHECKPOINT)
    if write:
        truncate_metrics(run_dir, trainer.g_updates)
        write_config(run_dir, trainer.config)
    return from_scratch
