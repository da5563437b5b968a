"""Algorithm 1 of the paper: the two players, the state their updates change, and the step that updates them.

`Algorithm1` holds G, D, their optimisers and update counters, draws each iteration's minibatch, noise, dropout
masks and classes from the run's one random stream (in a fixed order, so a seed fixes the run), and runs one
iteration with the `Step` chosen for the run when it is built (step.py):

    train.schedule alternating                    AlternatingStep  k D steps, then one G step (the paper's listing)
    simultaneous, paper MLP nets, fp32            FusedStep        the original code's schedule, by hand
    simultaneous, anything else                   AutogradStep     the same update through autograd

The learning rate reaches the update in three places: `train.lr` in the config, `set_rates` here (the paper's
decay per update of each player, momentum from the epoch: schedules.py), and the optimiser's param_groups, which
each step reads.

Data parallel (distributed.py): each rank computes the update on its block of the global minibatch and the players'
gradients (or velocity updates) are averaged over the ranks before the step (`average`). train.precision
bf16 | fp16 runs the autograd steps under torch.autocast (fp16 with a gradient scaler, CUDA only).
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError
from ..models.noise import sample_noise
from ..optim import make_optimizer, set_hyperparameters
from ..run.checkpoint import load_state
from ..schedules import learning_rate
from .batches import TrainingData
from .distributed import Dist
from .step import Step, StepStats
from .step_alternating import AlternatingStep
from .step_autograd import AutogradStep, supports_autograd_step
from .step_fused import FusedStep, supports_fused

STEPS = {"fused": FusedStep, "autograd": AutogradStep, "alternating": AlternatingStep}


def choose_step(config, generator: torch.nn.Module, discriminator: torch.nn.Module, name: str | None = None) -> Step:
    """The step for this config and these networks (see the module docstring); `name` asks for one (benchmarks
    compare them), which must be able to compute this config's update."""
    t = config.train
    if t.schedule == "alternating":
        best = "alternating"
    elif supports_fused(generator, discriminator) and t.precision == "fp32":
        best = "fused"
    elif supports_autograd_step(discriminator):
        best = "autograd"
    else:           # build_models makes no such D
        raise ValueError(f"the simultaneous schedule needs a per-example D, not {type(discriminator).__name__}")
    allowed = {best} | ({"autograd"} if best == "fused" else set())
    if name is not None and name not in allowed:
        raise ValueError(f"step {name!r} does not compute this config's update (use {' or '.join(sorted(allowed))})")
    return STEPS[name or best]()


class Algorithm1:
    """The two players (G, D and their optimisers), the update counters, and one `iteration()`."""

    def __init__(self, config, generator: torch.nn.Module, discriminator: torch.nn.Module, data: TrainingData,
                 rng: torch.Generator, dist: Dist | None = None, step: str | None = None):
        self.config, self.data, self.rng, self.dist = config, data, rng, dist or Dist()
        self.generator, self.discriminator = generator, discriminator
        self.opt_g = make_optimizer(config.train, generator.parameters())
        self.opt_d = make_optimizer(config.train, discriminator.parameters())
        self.step = choose_step(config, generator, discriminator, step)
        device, precision = data.device, config.train.precision
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError("train.precision=fp16 needs a CUDA GPU", "use --set train.precision=bf16 on a CPU")
        self.autocast = nullcontext() if precision == "fp32" else torch.autocast(
            device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        self.peer_stop = False                     # an all-reduce said that some rank asked to stop
        self.g_updates = 0
        self.d_updates = 0

    def iteration(self, perm: torch.Tensor, position: int, mu: float, stop: bool = False,
                  keep: float = 1.0) -> StepStats:
        """One iteration of Algorithm 1 (Step.__call__ says what the arguments mean); one more G update."""
        self.set_rates(mu)
        stats = self.step(self, perm, position, mu, stop, keep)
        self.g_updates += 1
        return stats

    def noise(self, n: int) -> torch.Tensor:
        """n draws of z ~ p_z, (n, noise_dim), from the run's random stream."""
        m = self.config.model
        return sample_noise(n, m.noise_dim, m.noise_prior, self.rng, self.data.device)

    # ----- what a step draws: this rank's part of the global minibatch (all of it when single-process)

    def batch(self, perm: torch.Tensor, index: int):
        m = self.config.train.batch_size
        return self.data.batch(perm, index, m, self.dist.rows(m) if self.dist.active else slice(None))

    def batch_noise(self) -> torch.Tensor:
        z = self.noise(self.config.train.batch_size)                    # (m, noise_dim): the global batch's
        return z[self.dist.rows(z.shape[0])] if self.dist.active else z

    def masks(self, n: int) -> list[torch.Tensor | None]:
        """D's masks for n = m (samples) or 2m ([data; samples]) rows: this rank's rows of each half."""
        masks = self.discriminator.draw_masks(n, self.rng)
        if not self.dist.active:
            return masks
        m = self.config.train.batch_size
        return [None if u is None else torch.cat([h[self.dist.rows(m)] for h in u.split(m)]) for u in masks]

    def classes(self) -> torch.Tensor | None:
        c = self.data.sample_classes(self.config.train.batch_size, self.rng)
        return c[self.dist.rows(c.shape[0])] if self.dist.active and c is not None else c

    def simultaneous_draws(self, perm: torch.Tensor, position: int):
        """What one simultaneous update uses, drawn in this order: the data minibatch x and its classes c, the
        noise z, D's masks for [data; samples], the samples' classes (c and the samples' classes None when
        unconditional)."""
        (x, c), z, masks = self.batch(perm, position), self.batch_noise(), self.masks(2 * self.config.train.batch_size)
        return x, c, z, masks, self.classes()

    # ----- how a step updates the players

    def set_rates(self, mu: float) -> None:
        """The paper's schedules: lr decayed per update of each player, momentum from the epoch."""
        t = self.config.train
        set_hyperparameters(self.opt_d, learning_rate(self.d_updates, t.lr, t.lr_decay, t.lr_min, t.lr_decay_after), mu)
        set_hyperparameters(self.opt_g, learning_rate(self.g_updates, t.lr, t.lr_decay, t.lr_min, t.lr_decay_after), mu)

    def loss_scale(self) -> dict:
        """The fp16 gradient scaler's `loss_scale` keyword for the gradient functions (none otherwise)."""
        return {} if self.scaler is None else {"loss_scale": self.scaler.scale}

    def average(self, opt, stats: StepStats, names: tuple[str, ...], stop: bool = False,
                velocity: bool = False) -> None:
        """One all-reduce for one player: its gradients (or velocities), the named statistics and the stop flag."""
        if not self.dist.active:
            self.peer_stop = stop
            return
        params = [p for group in opt.param_groups for p in group["params"]]
        tensors = [opt.state[p]["velocity"] if velocity else p.grad for p in params]
        flag = torch.tensor(float(stop), device=tensors[0].device)
        out = self.dist.all_reduce_mean(tensors, [getattr(stats, n).float() for n in names] + [flag])
        for i, name in enumerate(names):
            setattr(stats, name, out[i])
        self.peer_stop = bool(out[-1] > 0)

    def apply(self, *opts, velocity: bool = False) -> None:
        """Finish the update of the players whose optimisers are given, and count D's updates: `opt.step()`
        (fp16: through the scaler, which skips a step whose scaled gradient overflowed), or with `velocity`
        (the fused step) p <- p + v where the step left it undone (a distributed run, after the average)."""
        if velocity:
            for opt in opts if self.dist.active else ():
                opt.apply_velocity()
        elif self.scaler is None:
            for opt in opts:
                opt.step()
        else:
            for opt in opts:
                self.scaler.step(opt)
            self.scaler.update()
        self.d_updates += any(opt is self.opt_d for opt in opts)

    # ----- checkpoints

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "g_updates": self.g_updates, "d_updates": self.d_updates}

    def load_state_dict(self, state: dict[str, Any], path) -> None:
        """The networks first (a mismatch names the first differing entry), then optimisers and counters."""
        load_state(self.generator, state["generator"], "generator", path)
        load_state(self.discriminator, state["discriminator"], "discriminator", path)
        try:
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
        except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {path} does not fit this run: its optimizer or random state "
                                  f"({str(exc).strip()[:80]}) is wrong", "use the run's own checkpoint, or retrain") from None
        for name, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            check_optimizer_state(opt, name, path)
        self.g_updates, self.d_updates = state["g_updates"], state["d_updates"]


def check_optimizer_state(opt: torch.optim.Optimizer, name: str, path) -> None:
    """A CheckpointError unless every tensor `opt` holds for a parameter (the velocity; Adam's exp_avg and
    exp_avg_sq, and its scalar step count) is a tensor of the parameter's shape: torch's `load_state_dict` checks
    the parameter groups, not the state, and a wrong shape would fail inside the first step."""
    params = [p for group in opt.param_groups for p in group["params"]]
    for i, p in enumerate(params):
        for key, value in opt.state.get(p, {}).items():
            expected = () if key == "step" else tuple(p.shape)
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != expected:
                what = f"of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"
                raise CheckpointError(f"checkpoint {path} does not fit this run: its {name} '{key}' of parameter {i} "
                                      f"is {what}, not a tensor of shape {expected}", "use the run's own checkpoint, or retrain")
