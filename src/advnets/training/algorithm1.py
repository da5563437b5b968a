"""Algorithm 1 of the paper: one training iteration of the two players, and the state it changes.

    for k steps:  sample m noise vectors and m examples; update D by ascending its stochastic gradient of
                  (1/m) sum [log D(x) + log(1 - D(G(z)))]
    then:         sample m noise vectors; update G by descending (1/m) sum log(1 - D(G(z)))  (or, the
                  non-saturating loss: ascending log D(G(z)), paper section 3)

`train.schedule` alternating runs exactly that (k = train.k_discriminator_steps); simultaneous (the original
code's) updates D and G from one minibatch with the same dropout masks, both gradients taken at the same
parameters -- by hand in one pass (fused.py) for the paper's MLP nets, else through autograd (steps.py).
Everything random comes from one torch.Generator, in a fixed order, so a seed fixes the run.
"""
from __future__ import annotations

import torch

from ..models.noise import sample_noise
from ..optim import make_optimizer, set_hyperparameters
from ..schedules import learning_rate
from .batches import TrainingData
from .fused import simultaneous_grads_fused, supports_fused
from .steps import StepStats, discriminator_grads, generator_grads, simultaneous_grads_autograd


class Algorithm1:
    """The two players (G, D and their optimisers), the update counters, and one `iteration()`."""

    def __init__(self, config, generator: torch.nn.Module, discriminator: torch.nn.Module, data: TrainingData,
                 rng: torch.Generator):
        self.config, self.data, self.rng = config, data, rng
        self.generator, self.discriminator = generator, discriminator
        self.opt_g = make_optimizer(config.train, generator.parameters())
        self.opt_d = make_optimizer(config.train, discriminator.parameters())
        self.fused = config.train.schedule == "simultaneous" and supports_fused(generator, discriminator)
        self._owner = {p: opt for opt, net in ((self.opt_g, generator), (self.opt_d, discriminator))
                       for p in net.parameters()}
        self.g_updates = 0
        self.d_updates = 0

    def noise(self, n: int) -> torch.Tensor:
        """n draws of z ~ p_z, (n, noise_dim), from the run's random stream."""
        m = self.config.model
        return sample_noise(n, m.noise_dim, m.noise_prior, self.rng, self.data.images.device)

    def iteration(self, perm: torch.Tensor, position: int, mu: float) -> StepStats:
        """The `position`-th iteration of an epoch whose example order is `perm`, with momentum `mu`."""
        t = self.config.train
        m, k, rng = t.batch_size, t.k_discriminator_steps, self.rng
        g, d, data = self.generator, self.discriminator, self.data
        self._set_rates(mu)
        if t.schedule == "simultaneous":
            (x, c), z, masks = data.batch(perm, position, m), self.noise(m), d.draw_masks(2 * m, rng)
            c_fake = data.sample_classes(m, rng)                           # None, as c, when unconditional
            if self.fused and hasattr(self.opt_d, "velocity_target") and hasattr(self.opt_g, "velocity_target"):
                # momentum SGD inside the gradient products: v <- mu v - lr g, then p <- p + v layer by layer
                stats = simultaneous_grads_fused(g, d, x, z, masks, t.generator_loss, self._velocity,
                                                 real_labels=c, fake_labels=c_fake, done=self._apply_velocity)
            else:
                grads = simultaneous_grads_fused if self.fused else simultaneous_grads_autograd
                stats = grads(g, d, x, z, masks, t.generator_loss, real_labels=c, fake_labels=c_fake)
                self.opt_d.step()
                self.opt_g.step()
            self.d_updates += 1
        else:
            for j in range(k):                                              # k steps of D
                (x, c), z = data.batch(perm, position * k + j, m), self.noise(m)
                masks = d.draw_masks(2 * m, rng)
                # update D: maximise log D(x) + log(1 - D(G(z)))
                stats = discriminator_grads(g, d, x, z, masks, c, data.sample_classes(m, rng))
                self._set_rates(mu)
                self.opt_d.step()
                self.d_updates += 1
            z, masks = self.noise(m), d.draw_masks(m, rng)                  # one step of G, fresh noise
            # update G: minimise log(1 - D(G(z))) or maximise log D(G(z))
            g_stats = generator_grads(g, d, z, masks, t.generator_loss, data.sample_classes(m, rng))
            self.opt_g.step()
            stats.g_loss = g_stats.g_loss
        self.g_updates += 1
        return stats

    def _set_rates(self, mu: float) -> None:
        """The paper's schedules: lr decayed per update of each player, momentum from the epoch."""
        t = self.config.train
        set_hyperparameters(self.opt_d, learning_rate(self.d_updates, t.lr, t.lr_decay, t.lr_min), mu)
        set_hyperparameters(self.opt_g, learning_rate(self.g_updates, t.lr, t.lr_decay, t.lr_min), mu)

    def _velocity(self, p: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        return self._owner[p].velocity_target(p)

    def _apply_velocity(self, p: torch.Tensor) -> None:
        self._owner[p].apply_velocity_to(p)
