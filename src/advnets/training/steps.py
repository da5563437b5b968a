"""Gradients of Algorithm 1's updates through autograd, written into the networks' `.grad` buffers.

* `simultaneous_grads_autograd`: the original code's schedule (D and G updated from one minibatch, with the same
  dropout masks) for any pair of modules; `fused.simultaneous_grads_fused` computes the same by hand, faster.
* `discriminator_grads` / `generator_grads`: the separate steps of Algorithm 1 as printed (k D steps, then one G
  step on fresh noise); the G step asks autograd for G's gradients only.

Under torch.autocast (train.precision bf16 | fp16) the logits are taken to float32 before the losses, and
`loss_scale` (fp16's gradient scaler) multiplies each loss before its gradient. Each returns `StepStats`
(tensors, so no device sync per step). For conditional nets (paper section 7) each also takes the class labels
of the data (`real_labels`) and of the samples (`fake_labels`), (m,) class indices.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..losses import discriminator_loss, generator_loss
from ..models.layers import label_kwargs


@dataclass
class StepStats:
    d_loss: torch.Tensor | None = None   # discriminator_loss (= -V/2 on the batch)
    g_loss: torch.Tensor | None = None   # the generator loss being minimised
    d_real: torch.Tensor | None = None   # mean D(x) on data
    d_fake: torch.Tensor | None = None   # mean D(G(z)) on samples


def grad_buffer(p: torch.Tensor) -> torch.Tensor:
    if p.grad is None:
        p.grad = torch.zeros_like(p)
    return p.grad



def set_grads(params, grads) -> None:
    for p, g in zip(params, grads):
        grad_buffer(p).copy_(g)



def _unscaled(loss: torch.Tensor) -> torch.Tensor:
    return loss


def _full(logits: torch.Tensor) -> torch.Tensor:
    """Logits from an autocast region (bf16 / fp16) in float32 for the losses; float32 / float64 unchanged."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def both_labels(real_labels: torch.Tensor | None, fake_labels: torch.Tensor | None) -> torch.Tensor | None:
    return None if real_labels is None else torch.cat([real_labels, fake_labels])



def halves(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D's logits on [data; samples] -> (real, fake). By the logits' count, not by m: a packed D (models/packing.py)
    gives one logit per `pack` examples."""
    half = logits.shape[0] // 2
    return logits[:half], logits[half:]


def simultaneous_grads_autograd(g: torch.nn.Module, d: torch.nn.Module, x_real: torch.Tensor,
                                z: torch.Tensor, masks, loss_kind: str, real_labels: torch.Tensor | None = None,
                                fake_labels: torch.Tensor | None = None, loss_scale=_unscaled) -> StepStats:
    """The same update as `simultaneous_grads_fused`, through autograd, for any G and D."""
    m = x_real.shape[0]
    fake_images = g(z, **label_kwargs(fake_labels))
    batch = torch.cat([x_real.reshape(m, -1), fake_images.reshape(m, -1)])
    logits = d(batch, masks, **label_kwargs(both_labels(real_labels, fake_labels)))
    real, fake = (_full(h) for h in halves(logits))
    # update D: maximise log D(x) + log(1 - D(G(z)));  update G: minimise log(1 - D(G(z))) (minimax) or
    # maximise log D(G(z)) (non-saturating) -- both at the same parameters, from the same batch and masks
    d_loss, g_loss = discriminator_loss(real, fake), generator_loss(loss_kind, fake)
    d_params, g_params = list(d.parameters()), list(g.parameters())
    set_grads(d_params, torch.autograd.grad(loss_scale(d_loss), d_params, retain_graph=True))
    set_grads(g_params, torch.autograd.grad(loss_scale(g_loss), g_params))
    return StepStats(d_loss.detach(), g_loss.detach(), torch.sigmoid(real).mean().detach(),
                     torch.sigmoid(fake).mean().detach())


def discriminator_grads(g: torch.nn.Module, d: torch.nn.Module, x_real: torch.Tensor, z: torch.Tensor,
                        masks, real_labels: torch.Tensor | None = None,
                        fake_labels: torch.Tensor | None = None, loss_scale=_unscaled,
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
    real, fake = (_full(h) for h in halves(logits))
    # update D: maximise log D(x) + log(1 - D(G(z)))
    d_loss = discriminator_loss(real, fake)
    objective = d_loss
    if penalty:
        # R1 (Mescheder et al. 2018): penalty / 2 * mean over D's real inputs (packed rows) of ||d logit / dx||^2;
        # each logit depends on its own row only, so one gradient of the logits' sum gives every row's gradient
        (dx,) = torch.autograd.grad(real.sum(), batch, create_graph=True)
        objective = d_loss + penalty / 2 * _full(dx[:m]).pow(2).sum() / real.shape[0]
    d_params = list(d.parameters())
    set_grads(d_params, torch.autograd.grad(loss_scale(objective), d_params))
    return StepStats(d_loss=d_loss.detach(), d_real=torch.sigmoid(real).mean().detach(),
                     d_fake=torch.sigmoid(fake).mean().detach())


def generator_grads(g: torch.nn.Module, d: torch.nn.Module, z: torch.Tensor, masks,
                    loss_kind: str, fake_labels: torch.Tensor | None = None, loss_scale=_unscaled,
                    keep: float = 1.0) -> StepStats:
    """Algorithm 1's G step on m fresh samples; D's weight gradients are not computed. `keep` < 1: top-k training
    (Sinha et al. 2020, train.top_k), the loss only over the round(keep * n) logits D rates highest (n: D's logits,
    one per packed row when packed), so the samples D rejects most give G no gradient."""
    labels = label_kwargs(fake_labels)
    fake = _full(d(g(z, **labels), masks, **labels))
    if keep < 1.0:
        k = max(1, round(keep * fake.shape[0]))
        fake = fake.reshape(-1).topk(k).values
    # update G: minimise log(1 - D(G(z))) (minimax) or maximise log D(G(z)) (non-saturating)
    g_loss = generator_loss(loss_kind, fake)
    g_params = list(g.parameters())
    set_grads(g_params, torch.autograd.grad(loss_scale(g_loss), g_params))
    return StepStats(g_loss=g_loss.detach(), d_fake=torch.sigmoid(fake).mean().detach())
