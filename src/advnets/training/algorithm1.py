"""Algorithm 1 of the paper: one training iteration of the two players, and the state it changes.

    for k steps:  sample m noise vectors and m examples; update D by ascending its stochastic gradient of
                  (1/m) sum [log D(x) + log(1 - D(G(z)))]
    then:         sample m noise vectors; update G by descending (1/m) sum log(1 - D(G(z)))  (or, the
                  non-saturating loss: ascending log D(G(z)), paper section 3)

`train.schedule` alternating runs exactly that (k = train.k_discriminator_steps); simultaneous (the original
code's) updates D and G from one minibatch with the same dropout masks, both gradients taken at the same
parameters -- by hand in one pass (fused.py) for the paper's MLP nets, else through autograd with one backward pass
through D for both players (shared.py; steps.py's two-pass step for a D that is not per-example).
Everything random comes from one torch.Generator, in a fixed order, so a seed fixes the run.
Data parallel (distributed.py): each rank computes the update on its block of the global minibatch and the players'
gradients (or velocity updates) are averaged over the ranks before the step. train.precision bf16 | fp16 runs the
autograd steps (shared.py's included) under torch.autocast (fp16 with a gradient scaler, CUDA only); the fused step
is exact fp32 only.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch

from ..errors import ConfigError
from ..models.noise import sample_noise
from ..optim import make_optimizer, set_hyperparameters
from ..schedules import learning_rate
from .batches import TrainingData
from .distributed import Dist
from .fused import simultaneous_grads_fused, supports_fused
from .shared import simultaneous_grads_shared, supports_shared
from .steps import StepStats, discriminator_grads, generator_grads, simultaneous_grads_autograd


class Algorithm1:
    """The two players (G, D and their optimisers), the update counters, and one `iteration()`."""

    def __init__(self, config, generator: torch.nn.Module, discriminator: torch.nn.Module, data: TrainingData,
                 rng: torch.Generator, dist: Dist | None = None):
        self.config, self.data, self.rng, self.dist = config, data, rng, dist or Dist()
        self.generator, self.discriminator = generator, discriminator
        self.opt_g = make_optimizer(config.train, generator.parameters())
        self.opt_d = make_optimizer(config.train, discriminator.parameters())
        self.fused = config.train.schedule == "simultaneous" and supports_fused(generator, discriminator) and \
            config.train.precision == "fp32"
        self.shared = config.train.schedule == "simultaneous" and not self.fused and supports_shared(discriminator)
        device = data.device
        if config.train.precision == "fp16" and device.type != "cuda":
            raise ConfigError("train.precision=fp16 needs a CUDA GPU", "use --set train.precision=bf16 on a CPU")
        self.autocast = nullcontext() if config.train.precision == "fp32" else torch.autocast(
            device.type, dtype=torch.bfloat16 if config.train.precision == "bf16" else torch.float16)
        self.scaler = torch.amp.GradScaler(device.type) if config.train.precision == "fp16" else None
        self.peer_stop = False                     # an all-reduce said that some rank asked to stop
        self._owner = {p: opt for opt, net in ((self.opt_g, generator), (self.opt_d, discriminator))
                       for p in net.parameters()}
        self.g_updates = 0
        self.d_updates = 0

    def noise(self, n: int) -> torch.Tensor:
        """n draws of z ~ p_z, (n, noise_dim), from the run's random stream."""
        m = self.config.model
        return sample_noise(n, m.noise_dim, m.noise_prior, self.rng, self.data.device)

    def iteration(self, perm: torch.Tensor, position: int, mu: float, stop: bool = False,
                  keep: float = 1.0) -> StepStats:
        """The `position`-th iteration of an epoch whose example order is `perm`, with momentum `mu`. `stop`: this
        rank asks to stop; `peer_stop` then says whether any rank asked (always `stop` when single-process).
        `keep` < 1: G's update uses only that fraction of its samples, those D rates highest (train.top_k)."""
        t = self.config.train
        m, k = t.batch_size, t.k_discriminator_steps
        g, d = self.generator, self.discriminator
        self._set_rates(mu)
        if t.schedule == "simultaneous":
            (x, c), z, masks = self._batch(perm, position), self._noise(), self._masks(2 * m)
            c_fake = self._classes()                                       # None, as c, when unconditional
            if self.fused and hasattr(self.opt_d, "velocity_target") and hasattr(self.opt_g, "velocity_target"):
                # momentum SGD inside the gradient products: v <- mu v - lr g, then p <- p + v layer by layer
                stats = simultaneous_grads_fused(g, d, x, z, masks, t.generator_loss, self._velocity,
                                                 real_labels=c, fake_labels=c_fake,
                                                 done=None if self.dist.active else self._apply_velocity)
                self._average(self.opt_d, stats, ("d_loss", "d_real", "d_fake"), velocity=True)
                self._average(self.opt_g, stats, ("g_loss",), stop, velocity=True)
                if self.dist.active:     # the ranks' velocities averaged first, then p <- p + v
                    self.opt_d.apply_velocity()
                    self.opt_g.apply_velocity()
            else:
                grads = simultaneous_grads_fused if self.fused else \
                    simultaneous_grads_shared if self.shared else simultaneous_grads_autograd
                with self.autocast:
                    stats = grads(g, d, x, z, masks, t.generator_loss, real_labels=c, fake_labels=c_fake,
                                  **self._scale())
                self._average(self.opt_d, stats, ("d_loss", "d_real", "d_fake"))
                self._average(self.opt_g, stats, ("g_loss",), stop)
                self._step(self.opt_d, self.opt_g)
            self.d_updates += 1
        else:
            for j in range(k):                                              # k steps of D
                (x, c), z = self._batch(perm, position * k + j), self._noise()
                masks = self._masks(2 * m)
                # update D: maximise log D(x) + log(1 - D(G(z)))
                with self.autocast:
                    stats = discriminator_grads(g, d, x, z, masks, c, self._classes(), **self._scale(),
                                                penalty=t.gradient_penalty)
                self._average(self.opt_d, stats, ("d_loss", "d_real", "d_fake"))
                self._set_rates(mu)
                self._step(self.opt_d)
                self.d_updates += 1
            z, masks = self._noise(), self._masks(m)                        # one step of G, fresh noise
            # update G: minimise log(1 - D(G(z))) or maximise log D(G(z))
            with self.autocast:
                g_stats = generator_grads(g, d, z, masks, t.generator_loss, self._classes(), **self._scale(),
                                          keep=keep)
            self._average(self.opt_g, g_stats, ("g_loss",), stop)
            self._step(self.opt_g)
            stats.g_loss = g_stats.g_loss
        self.g_updates += 1
        return stats

    # ----- this rank's part of the global minibatch (all of it when single-process; distributed.py)

    def _batch(self, perm: torch.Tensor, index: int):
        m = self.config.train.batch_size
        return self.data.batch(perm, index, m, self.dist.rows(m) if self.dist.active else slice(None))

    def _noise(self) -> torch.Tensor:
        z = self.noise(self.config.train.batch_size)                    # (m, noise_dim): the global batch's
        return z[self.dist.rows(z.shape[0])] if self.dist.active else z

    def _masks(self, n: int) -> list[torch.Tensor | None]:
        """D's masks for n = m (samples) or 2m ([data; samples]) rows: this rank's rows of each half."""
        masks = self.discriminator.draw_masks(n, self.rng)
        if not self.dist.active:
            return masks
        m = self.config.train.batch_size
        return [None if u is None else torch.cat([h[self.dist.rows(m)] for h in u.split(m)]) for u in masks]

    def _classes(self) -> torch.Tensor | None:
        c = self.data.sample_classes(self.config.train.batch_size, self.rng)
        return c[self.dist.rows(c.shape[0])] if self.dist.active and c is not None else c

    def _average(self, opt, stats: StepStats, names: tuple[str, ...], stop: bool = False,
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

    def _scale(self) -> dict:
        return {} if self.scaler is None else {"loss_scale": self.scaler.scale}

    def _step(self, *opts) -> None:
        if self.scaler is None:
            for opt in opts:
                opt.step()
            return
        for opt in opts:                 # fp16: skip the step when a scaled gradient overflowed, adapt the scale
            self.scaler.step(opt)
        self.scaler.update()

    def _set_rates(self, mu: float) -> None:
        """The paper's schedules: lr decayed per update of each player, momentum from the epoch."""
        t = self.config.train
        set_hyperparameters(self.opt_d, learning_rate(self.d_updates, t.lr, t.lr_decay, t.lr_min, t.lr_decay_after), mu)
        set_hyperparameters(self.opt_g, learning_rate(self.g_updates, t.lr, t.lr_decay, t.lr_min, t.lr_decay_after), mu)

    def _velocity(self, p: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        return self._owner[p].velocity_target(p)

    def _apply_velocity(self, p: torch.Tensor) -> None:
        self._owner[p].apply_velocity_to(p)
