"""Algorithm 1 as printed (`train.schedule` alternating): k steps of D, each on a fresh minibatch, then one step of G
on fresh noise; the G step asks autograd for G's gradients only.

    for k steps:  sample m noise vectors and m examples; update D by ascending its stochastic gradient of
                  (1/m) sum [log D(x) + log(1 - D(G(z)))]
    then:         sample m noise vectors; update G by descending (1/m) sum log(1 - D(G(z)))  (or, the
                  non-saturating loss: ascending log D(G(z)), paper section 3)

Under torch.autocast (train.precision bf16 | fp16) the logits are taken to float32 before the losses, and
`loss_scale` (fp16's gradient scaler) multiplies each loss before its gradient. Each gradient function returns
`StepStats` (tensors, so no device sync per step). For conditional nets (paper section 7) each also takes the class
labels of the data (`real_labels`) and of the samples (`fake_labels`), (m,) class indices.
"""
from __future__ import annotations

import torch

from ..losses import discriminator_loss, generator_loss
from ..models.layers import label_kwargs
from .step import D_STATS, G_STATS, StepStats, both_labels, full, halves, set_grads, unscaled


def discriminator_grads(g: torch.nn.Module, d: torch.nn.Module, x_real: torch.Tensor, z: torch.Tensor,
                        masks, real_labels: torch.Tensor | None = None,
                        fake_labels: torch.Tensor | None = None, loss_scale=unscaled,
                        penalty: float = 0.0) -> StepStats:
    """Algorithm 1's D step: ascend V on m data and m samples (G is not differentiated). `penalty` > 0 adds the
    R1 gradient penalty (train.gradient_penalty) to D's loss; the reported d_loss stays -V/2."""
    m = x_real.shape[0]
    with torch.no_grad():
        fake_images = g(z, **label_kwargs(fake_labels))
    batch = torch.cat([x_real.reshape(m, -1), fake_images.reshape(m, -1)])
    if penalty:
        batch.requires_grad_()
    logits = d(batch, masks, **label_kwargs(both_labels(real_labels, fake_labels)))
    real, fake = (full(h) for h in halves(logits))
    # update D: maximise log D(x) + log(1 - D(G(z)))
    d_loss = discriminator_loss(real, fake)
    objective = d_loss
    if penalty:
        # R1 (Mescheder et al. 2018): penalty / 2 * mean over D's real inputs (packed rows) of ||d logit / dx||^2;
        # each logit depends on its own row only, so one gradient of the logits' sum gives every row's gradient
        (dx,) = torch.autograd.grad(real.sum(), batch, create_graph=True)
        objective = d_loss + penalty / 2 * full(dx[:m]).pow(2).sum() / real.shape[0]
    d_params = list(d.parameters())
    set_grads(d_params, torch.autograd.grad(loss_scale(objective), d_params))
    return StepStats(d_loss=d_loss.detach(), d_real=torch.sigmoid(real).mean().detach(),
                     d_fake=torch.sigmoid(fake).mean().detach())


def generator_grads(g: torch.nn.Module, d: torch.nn.Module, z: torch.Tensor, masks,
                    loss_kind: str, fake_labels: torch.Tensor | None = None, loss_scale=unscaled,
                    keep: float = 1.0) -> StepStats:
    """Algorithm 1's G step on m fresh samples; D's weight gradients are not computed. `keep` < 1: top-k training
    (Sinha et al. 2020, train.top_k), the loss only over the round(keep * n) logits D rates highest (n: D's logits,
    one per packed row when packed), so the samples D rejects most give G no gradient."""
    labels = label_kwargs(fake_labels)
    fake = full(d(g(z, **labels), masks, **labels))
    if keep < 1.0:
        k = max(1, round(keep * fake.shape[0]))
        fake = fake.reshape(-1).topk(k).values
    # update G: minimise log(1 - D(G(z))) (minimax) or maximise log D(G(z)) (non-saturating)
    g_loss = generator_loss(loss_kind, fake)
    g_params = list(g.parameters())
    set_grads(g_params, torch.autograd.grad(loss_scale(g_loss), g_params))
    return StepStats(g_loss=g_loss.detach(), d_fake=torch.sigmoid(fake).mean().detach())


class AlternatingStep:
    """k D steps on fresh minibatches, then one G step on fresh noise (train.k_discriminator_steps)."""

    name = "alternating"

    def __call__(self, players, perm: torch.Tensor, position: int, mu: float, stop: bool = False,
                 keep: float = 1.0) -> StepStats:
        p, t = players, players.config.train
        g, d, k, m = p.generator, p.discriminator, t.k_discriminator_steps, t.batch_size
        for j in range(k):                                                  # k steps of D
            (x, c), z = p.batch(perm, position * k + j), p.batch_noise()
            masks = p.masks(2 * m)
            # update D: maximise log D(x) + log(1 - D(G(z)))
            with p.autocast:
                stats = discriminator_grads(g, d, x, z, masks, c, p.classes(), **p.loss_scale(),
                                            penalty=t.gradient_penalty)
            p.average(p.opt_d, stats, D_STATS)
            p.set_rates(mu)                      # D's learning rate decays per D update
            p.apply(p.opt_d)
        z, masks = p.batch_noise(), p.masks(m)                              # one step of G, fresh noise
        # update G: minimise log(1 - D(G(z))) or maximise log D(G(z))
        with p.autocast:
            g_stats = generator_grads(g, d, z, masks, t.generator_loss, p.classes(), **p.loss_scale(), keep=keep)
        p.average(p.opt_g, g_stats, G_STATS, stop)
        p.apply(p.opt_g)
        stats.g_loss = g_stats.g_loss
        return stats
