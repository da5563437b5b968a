"""Optimisers: pylearn2's momentum SGD (the original code's) and Adam."""
from __future__ import annotations

import torch


class MomentumSGD(torch.optim.Optimizer):
    """Classical momentum in pylearn2's form: v <- momentum * v - lr * g;  p <- p + v.

    Unlike torch.optim.SGD (v <- momentum * v + g; p <- p - lr * v), the learning rate sits inside the
    velocity, which matters when lr decays. `lr` and `momentum` are set per update by the trainer.
    """

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.5):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, mu = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p)
                v = state["velocity"]
                v.mul_(mu).add_(p.grad, alpha=-lr)
                p.add_(v)

    # The fused training step can compute v <- momentum * v - lr * g inside the matrix product that yields g
    # (steps.simultaneous_grads_fused with target=velocity_target); apply_velocity then finishes the step.
    def velocity_target(self, p: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        """(velocity of p, momentum, -lr): where a fused gradient product should accumulate."""
        state = self.state[p]
        if "velocity" not in state:
            state["velocity"] = torch.zeros_like(p)
        group = self.param_groups[0]
        return state["velocity"], group["momentum"], -group["lr"]

    @torch.no_grad()
    def apply_velocity_to(self, p: torch.Tensor) -> None:
        """p <- p + v for one parameter, once velocity_target received its gradient (the fused step calls it
        layer by layer, while v is still in the CPU's cache)."""
        p.add_(self.state[p]["velocity"])

    @torch.no_grad()
    def apply_velocity(self) -> None:
        """p <- p + v for every parameter, after velocity_target received this update's gradients."""
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(self.state[p]["velocity"])


def make_optimizer(train_config, params) -> torch.optim.Optimizer:
    """The optimiser a TrainConfig names, for one network's parameters."""
    if train_config.optimizer == "sgd":
        return MomentumSGD(params, lr=train_config.lr, momentum=train_config.momentum_start)
    if train_config.optimizer == "adam":
        return torch.optim.Adam(params, lr=train_config.lr, betas=train_config.adam_betas)
    raise ValueError(f"unknown optimizer {train_config.optimizer!r}")


def set_hyperparameters(optimizer: torch.optim.Optimizer, lr: float, momentum: float | None) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
        if momentum is not None and "momentum" in group:
            group["momentum"] = momentum
