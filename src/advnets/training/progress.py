"""Where a run is in its data: completed epochs, the current epoch's example order and position in it, and the
running sums of the step statistics since the epoch began (the epoch line's means)."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import CheckpointError

STATS = ("d_loss", "g_loss", "d_real", "d_fake")


class Progress:
    def __init__(self, device: torch.device):
        self.epoch, self.position = 0, 0          # completed epochs; iterations done in the current one
        self.perm: torch.Tensor | None = None     # the current epoch's example order, drawn at its first iteration
        self.sums = torch.zeros(len(STATS), dtype=torch.float64, device=device)

    def order(self, rng: torch.Generator, n: int) -> torch.Tensor:
        """The current epoch's order of the n examples, drawn from the run's stream when the epoch starts."""
        if self.perm is None:
            self.perm = torch.randperm(n, generator=rng, device=self.sums.device)
        return self.perm

    def add(self, stats) -> None:
        """One iteration done, with these StepStats."""
        self.position += 1
        self.sums += torch.stack([getattr(stats, s).double() for s in STATS])

    def means(self) -> dict[str, float]:
        """The mean of each statistic over the iterations since the epoch began."""
        return {s: round(v, 6) for s, v in zip(STATS, (self.sums / max(self.position, 1)).tolist(), strict=True)}

    def next_epoch(self) -> None:
        self.epoch += 1
        self.perm, self.position = None, 0
        self.sums.zero_()

    def finite(self) -> bool:
        return bool(torch.isfinite(self.sums).all())

    def state_dict(self) -> dict[str, Any]:
        return {"perm": self.perm, "position": self.position, "epoch": self.epoch, "sums": self.sums}

    def load_state_dict(self, state: dict[str, Any], n: int, per_epoch: int, path) -> None:
        """Refuses (CheckpointError) a state that does not fit n examples and per_epoch iterations an epoch."""
        perm = state["perm"]
        checks = {"perm": perm is None or (tuple(perm.shape) == (n,) and 0 <= int(perm.min()) <= int(perm.max()) < n),
                  "position": state["position"] <= per_epoch, "sums": state["sums"].numel() == self.sums.numel()}
        bad = next((key for key, ok in checks.items() if not ok), None)
        if bad is not None:
            raise CheckpointError(f"checkpoint {path} does not fit this run: its {bad} is wrong",
                                  "use the run's own checkpoint, or retrain")
        self.perm = None if perm is None else perm.to(self.sums.device)
        self.position, self.epoch = state["position"], state["epoch"]
        self.sums = state["sums"].to(self.sums.device, self.sums.dtype).reshape(self.sums.shape)
