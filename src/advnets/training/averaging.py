"""A moving average of G's weights (`train.generator_ema`): the G that the samples, the grids and the coverage
figures use, while training goes on with the raw G.

Simultaneous gradient steps make G circle around an equilibrium rather than settle in it; averaging its recent
weights lands nearer the centre (Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training";
Karras et al. sample ProGAN and StyleGAN the same way). Training itself is unchanged: D always plays the raw G, so a
run with the average computes exactly the weights of the run without it.

After t updates the average moves towards G by 1 - beta_t, beta_t = min(decay, (1 + t) / (10 + t)): the warm-up
of TensorFlow's ExponentialMovingAverage(num_updates), so that early grids show the current G, not its
initialisation. Written by hand: a lerp per parameter is all it takes, and its state must go into our checkpoints.
"""
from __future__ import annotations

import copy

import torch


class GeneratorAverage:
    """An exponential moving average of a generator's parameters (buffers are copied as they are)."""

    def __init__(self, generator: torch.nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(generator).eval().requires_grad_(False)
        self.updates = 0

    def weight(self) -> float:
        """How far the next update moves the average towards G: 1 - beta_t."""
        return 1.0 - min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, generator: torch.nn.Module) -> None:
        """Fold G's current weights into the average (call after every G update)."""
        w = self.weight()
        for avg, p in zip(self.module.parameters(), generator.parameters()):
            avg.lerp_(p.detach(), w)
        for avg, b in zip(self.module.buffers(), generator.buffers()):
            avg.copy_(b)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"weights": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["weights"])
        self.updates = int(state["updates"])
