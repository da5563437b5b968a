"""The reference the simultaneous steps are checked against: Algorithm 1's simultaneous update (the original code's
schedule: D and G from one minibatch, with the same dropout masks, both gradients at the same parameters) in the
plainest form, two autograd calls through the whole graph, for any G and D. advnets itself never runs it: the fused
step (step_fused.py) and the one-backward autograd step (step_autograd.py) compute the same update faster."""
from __future__ import annotations

import torch

from advnets.losses import discriminator_loss, generator_loss
from advnets.models.layers import label_kwargs
from advnets.training.step import StepStats, both_labels, full, halves, unscaled


def simultaneous_grads_two_pass(g: torch.nn.Module, d: torch.nn.Module, x_real: torch.Tensor,
                                z: torch.Tensor, masks, loss_kind: str, real_labels: torch.Tensor | None = None,
                                fake_labels: torch.Tensor | None = None, loss_scale=unscaled) -> StepStats:
    """Both players' gradients of one simultaneous update, written into .grad."""
    m = x_real.shape[0]
    fake_images = g(z, **label_kwargs(fake_labels))
    batch = torch.cat([x_real.reshape(m, -1), fake_images.reshape(m, -1)])
    logits = d(batch, masks, **label_kwargs(both_labels(real_labels, fake_labels)))
    real, fake = (full(h) for h in halves(logits))
    # update D: maximise log D(x) + log(1 - D(G(z)));  update G: minimise log(1 - D(G(z))) (minimax) or
    # maximise log D(G(z)) (non-saturating) -- both at the same parameters, from the same batch and masks
    d_loss, g_loss = discriminator_loss(real, fake), generator_loss(loss_kind, fake)
    d_params, g_params = list(d.parameters()), list(g.parameters())
    for p, grad in zip(d_params, torch.autograd.grad(loss_scale(d_loss), d_params, retain_graph=True), strict=True):
        p.grad = grad
    for p, grad in zip(g_params, torch.autograd.grad(loss_scale(g_loss), g_params), strict=True):
        p.grad = grad
    return StepStats(d_loss.detach(), g_loss.detach(), torch.sigmoid(real).mean().detach(),
                     torch.sigmoid(fake).mean().detach())
