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

    # The fused training step (training/step_fused.py) hands the optimiser each weight gradient as the matrix
    # product that yields it: v <- momentum * v - lr * (a @ b) is then one addmm into the velocity, and the
    # gradient itself is never stored.
    @torch.no_grad()
    def add_product(self, p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
        """v <- momentum * v - lr * (a @ b) for parameter p, whose gradient is a @ b (b a vector: a matrix-vector
        product into p flattened)."""
        state = self.state[p]
        if "velocity" not in state:
            state["velocity"] = torch.zeros_like(p)
        group = self.param_groups[0]
        _add_product(state["velocity"], a, b, group["momentum"], -group["lr"])

    @torch.no_grad()
    def apply_velocity(self, p: torch.Tensor | None = None) -> None:
        """p <- p + v once `add_product` received p's gradient (p None: every parameter). The fused step calls it
        layer by layer, while v is still in the CPU's cache; a distributed run after averaging the velocities."""
        params = [p] if p is not None else [q for group in self.param_groups for q in group["params"]]
        for q in params:
            q.add_(self.state[q]["velocity"])


class GradientWriter:
    """The fused step's other destination: p.grad <- a @ b, for an optimiser that then takes `step()`."""

    @staticmethod
    @torch.no_grad()
    def add_product(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        _add_product(p.grad, a, b, 0.0, 1.0)


def _add_product(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, beta: float, alpha: float) -> None:
    """out <- beta * out + alpha * (a @ b), in place."""
    if b.dim() == 1:
        flat = out.view(-1)
        torch.addmv(flat, a, b, beta=beta, alpha=alpha, out=flat)
    else:
        torch.addmm(out, a, b, beta=beta, alpha=alpha, out=out)


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
