"""One iteration of Algorithm 1, behind one interface: a `Step` is called with the players (algorithm1.py) and
the iteration's place in the epoch, draws what it needs from the players' random stream, updates both players
and returns the iteration's `StepStats`. Three steps, one chosen per run (algorithm1.choose_step):

* `FusedStep` (step_fused.py): the simultaneous schedule for the paper's MLP G and maxout D, gradients by hand in
  one pass through D, momentum SGD inside the gradient products. fp32 only.
* `AutogradStep` (step_autograd.py): the simultaneous schedule for any G and per-example D, through autograd with
  one backward pass through D for both players; under autocast for bf16 / fp16.
* `AlternatingStep` (step_alternating.py): Algorithm 1 as printed, k D steps then one G step.

tests/training/oracle.py holds the plain two-pass autograd version of the simultaneous update, which the fused and
one-backward steps are checked against.

The helpers here are shared by the steps: losses from logits taken to float32 under autocast (`full`), D's logits
on [data; samples] split by count (`halves`), gradients handed to the optimisers (`set_grads`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

D_STATS = ("d_loss", "d_real", "d_fake")     # the statistics averaged with D's update in a distributed run
G_STATS = ("g_loss",)


@dataclass
class StepStats:
    d_loss: torch.Tensor | None = None   # discriminator_loss (= -V/2 on the batch)
    g_loss: torch.Tensor | None = None   # the generator loss being minimised
    d_real: torch.Tensor | None = None   # mean D(x) on data
    d_fake: torch.Tensor | None = None   # mean D(G(z)) on samples


class Step(Protocol):
    name: str      # "fused" | "autograd" | "alternating": what the start line and the benchmarks report

    def __call__(self, players, perm: torch.Tensor, position: int, mu: float, stop: bool,
                 keep: float) -> StepStats:
        """Update `players` (algorithm1.Algorithm1) by the `position`-th iteration of an epoch whose example order
        is `perm`, with momentum `mu`; `stop`: this rank asks to stop (players.peer_stop then says whether any
        rank did); `keep` < 1: G's update uses only that fraction of its samples, those D rates highest
        (train.top_k)."""


def set_grads(params, grads) -> None:
    """p.grad = g: autograd's fresh tensors become the gradients, without a copy (for G's 8000 x 8000 layer a copy
    would read and write 256 MB again per step)."""
    for p, g in zip(params, grads, strict=True):
        p.grad = g


def unscaled(loss: torch.Tensor) -> torch.Tensor:
    return loss


def full(logits: torch.Tensor) -> torch.Tensor:
    """Logits from an autocast region (bf16 / fp16) in float32 for the losses; float32 / float64 unchanged."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def both_labels(real_labels: torch.Tensor | None, fake_labels: torch.Tensor | None) -> torch.Tensor | None:
    return None if real_labels is None else torch.cat([real_labels, fake_labels])


def halves(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D's logits on [data; samples] -> (real, fake). By the logits' count, not by m: a packed D (models/packing.py)
    gives one logit per `pack` examples."""
    half = logits.shape[0] // 2
    return logits[:half], logits[half:]
