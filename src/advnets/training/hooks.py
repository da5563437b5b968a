"""How the Trainer tells the world what happens: a `Reporter` with one hook per event. The Trainer never prints;
the command line adds a console reporter, a run directory gets `RunFiles`, and the 1-D experiment or a
distributed rank chooses its own.

    class Printer(Reporter):
        def log(self, record):
            if record["kind"] == "epoch":
                print(record["epoch"], record["d_loss"], record["g_loss"])
    train(config, "runs/x", reporter=Printer())
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..figures.image_grid import save_grid
from ..run import layout


class Reporter:
    """Hooks called by the Trainer (all but `progress` by `Trainer.run`); each does nothing unless overridden."""

    def progress(self, task: str, done: int, total: int, note: str = "") -> None:
        """A long task while the Trainer is built, before training (the coverage classifier's training, when it
        is not in the cache: coverage_monitor.py): `done` of `total` units, from 0; `task` says what in words."""

    def start(self, trainer) -> None:
        """Before the first iteration of this `run()` (also of a resumed run); `trainer.coverage.summary` says
        what the coverage figures cost, when they are on."""

    def step(self, trainer, stats) -> None:
        """After every iteration; `stats` holds tensors (d_loss, g_loss, d_real, d_fake): reading them syncs."""

    def log(self, record: dict[str, Any]) -> None:
        """A metrics record: {"kind": "step" | "epoch", "step", "epoch", "d_loss", "g_loss", "d_real", "d_fake",
        and for epochs "lr", "momentum", "steps_per_s", "seconds", and the coverage figures when measured
        ("classes_captured", "class_kl" or "modes_captured", "high_quality", "reverse_kl"; "coverage_warning"
        when they fell: coverage_monitor.py)}."""

    def samples(self, epoch: int | None, step: int, images: torch.Tensor, nrow: int) -> None:
        """The fixed-noise sample grid after `step` iterations: images (N, C, H, W) in [0, 1], `nrow` per row;
        `epoch` is the epoch just completed, or None for a grid within an epoch."""

    def close(self) -> None:
        """After the last iteration of this `run()`, also when it stops with an error."""


class Reporters(Reporter):
    """Several reporters as one, called in order."""

    def __init__(self, *reporters: Reporter | None):
        self.reporters = [r for r in reporters if r is not None]

    def progress(self, task: str, done: int, total: int, note: str = "") -> None:
        for r in self.reporters:
            r.progress(task, done, total, note)

    def start(self, trainer) -> None:
        for r in self.reporters:
            r.start(trainer)

    def step(self, trainer, stats) -> None:
        for r in self.reporters:
            r.step(trainer, stats)

    def log(self, record: dict[str, Any]) -> None:
        for r in self.reporters:
            r.log(record)

    def samples(self, epoch: int | None, step: int, images: torch.Tensor, nrow: int) -> None:
        for r in self.reporters:
            r.samples(epoch, step, images, nrow)

    def close(self) -> None:
        for r in self.reporters:
            r.close()


class RunFiles(Reporter):
    """metrics.jsonl and samples/epoch_XXXX.png in a run directory."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    def log(self, record: dict[str, Any]) -> None:
        layout.append_metrics(self.run_dir, record)

    def samples(self, epoch: int | None, step: int, images: torch.Tensor, nrow: int) -> None:
        save_grid(images, layout.sample_path(self.run_dir, epoch, step), nrow=nrow)

