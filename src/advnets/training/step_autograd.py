"""Algorithm 1's simultaneous update for any G and a per-example D, through autograd, with one backward pass
through D for both players.

The plain way (tests/training/oracle.py, the reference this step is checked against) asks autograd twice: D's loss back to D's weights, then G's loss back through
all of D again into G. But D gives one logit per example (per packed row for a packed D), and each logit depends
on its own example only (dropout, maxout and pooling act per example), so the backward pass of any loss of the
logits through D is the same per-example Jacobian J_n = dlogit_n/d(input, weights) scaled by dLoss/dlogit_n
(the reasoning of fused.py, here for any network autograd can differentiate):

    one pass with grad_outputs = dL_D/dlogit   ->  D's weight gradients (exactly the first call's)
                                                   and, on the samples, dL_D/dlogit_n * J_n(x_n)
    times r_n = (dL_G/dlogit_n) / (dL_D/dlogit_n) per sample (per packed row)  ->  dL_G/dx_n, what the second
                                                   call gives; then one pass through G.

With losses.py's losses, on a fake logit f over m fake logits: dL_D/df = sigmoid(f) / 2m and dL_G/df = -sigmoid(f)/m
(minimax) or -sigmoid(-f)/m (non-saturating), so r = -2, or -2 exp(-f). The ratio is taken from the derivatives
autograd gives for the losses (times the fp16 gradient scaler's scale, `loss_scale`) in the logits' dtype, so it is
what the two calls would have used. It goes wrong only when dL_D/df is tiny (D sure that a sample is fake): then
D's pass works with subnormal numbers, whose rounding r would scale up. The step falls back to the two backward
passes (on the same forward pass) when any dL_D/df is below tiny / eps of the logits' dtype (float32: ~1e-31, i.e.
f below about -66; fp16: 0.06, a few units of the scaled loss) or any r is not finite; above that bound a subnormal
rounding, scaled by r, costs at most eps^2 relative to dL_G/df. The check reads one number back from the device.

D is also run on the data and on the samples as two calls (same masks, split by rows), so that the input gradient
of D's first layer is taken on the m samples only, not also on the data (docs/performance.md has the measurement).
tests/training/test_step_autograd.py checks the step against the two-pass oracle in float64: convolutional and
dense nets, conditional and packed ones, both generator losses, and the fallback.
"""
from __future__ import annotations

import torch

from ..losses import discriminator_loss, generator_loss
from ..models.discriminator import MaxoutConvDiscriminator, MaxoutDiscriminator
from ..models.layers import label_kwargs
from ..models.packing import PackedDiscriminator
from .step import D_STATS, G_STATS, StepStats, full, set_grads, unscaled

# Discriminators whose logit n depends on example n (packed: on packed row n) only
PER_EXAMPLE = (MaxoutDiscriminator, MaxoutConvDiscriminator)


def supports_autograd_step(d: torch.nn.Module) -> bool:
    """Whether `simultaneous_grads_autograd` computes this D's update: one logit per example (or per packed row)."""
    return isinstance(d.inner if isinstance(d, PackedDiscriminator) else d, PER_EXAMPLE)


def _rows(masks):
    """D's masks for the 2m batch [data; samples] -> those of the data's rows and those of the samples' rows."""
    if masks is None:
        return None, None
    return ([None if u is None else u[:u.shape[0] // 2] for u in masks],
            [None if u is None else u[u.shape[0] // 2:] for u in masks])


def _logit_grads(real: torch.Tensor, fake: torch.Tensor, loss_kind: str, loss_scale):
    """The losses (float32 under autocast) and their (scaled) derivatives with respect to the logits."""
    real_l, fake_l = (full(h.detach()).requires_grad_() for h in (real, fake))
    d_loss, g_loss = discriminator_loss(real_l, fake_l), generator_loss(loss_kind, fake_l)
    gd_real, gd_fake = torch.autograd.grad(loss_scale(d_loss), [real_l, fake_l])
    (gg_fake,) = torch.autograd.grad(loss_scale(g_loss), [fake_l])
    return d_loss.detach(), g_loss.detach(), gd_real.to(real.dtype), gd_fake.to(fake.dtype), gg_fake


def simultaneous_grads_autograd(g: torch.nn.Module, d: torch.nn.Module, x_real: torch.Tensor, z: torch.Tensor,
                              masks, loss_kind: str, real_labels: torch.Tensor | None = None,
                              fake_labels: torch.Tensor | None = None, loss_scale=unscaled) -> StepStats:
    """Both players' gradients of one simultaneous update, written into .grad (see the module docstring)."""
    fake_images = g(z, **label_kwargs(fake_labels))                       # (m, ...) G's graph ends here
    y = fake_images.detach().requires_grad_()                             # D's graph starts at the samples
    real_masks, fake_masks = _rows(masks)
    real = d(x_real, real_masks, **label_kwargs(real_labels))           # (m,) or (m / pack,)
    fake = d(y, fake_masks, **label_kwargs(fake_labels))
    # update D: maximise log D(x) + log(1 - D(G(z)));  update G: minimise log(1 - D(G(z))) (minimax) or
    # maximise log D(G(z)) (non-saturating) -- both at the same parameters, from the same batch and masks
    d_loss, g_loss, gd_real, gd_fake, gg_fake = _logit_grads(real, fake, loss_kind, loss_scale)
    ratio = gg_fake / gd_fake.to(gg_fake.dtype)                        # (m,) dL_G/df / dL_D/df per sample
    info = torch.finfo(fake.dtype)
    shared = bool(torch.isfinite(ratio).all() & (gd_fake.abs() >= info.tiny / info.eps).all())
    d_params, g_params = list(d.parameters()), list(g.parameters())
    # one backward pass through D: its weight gradients, and dL_D/df_n * J_n on each sample
    grads = torch.autograd.grad([real, fake], d_params + [y], grad_outputs=[gd_real, gd_fake],
                                retain_graph=not shared)
    set_grads(d_params, grads[:-1])
    if shared:
        dy = (grads[-1].reshape(fake.shape[0], -1) * ratio.unsqueeze(1)).to(y.dtype).view_as(y)
    else:        # fallback: a second pass through D with G's loss, as the two-pass oracle does
        (dy,) = torch.autograd.grad(fake, [y], grad_outputs=gg_fake.to(fake.dtype))
    set_grads(g_params, torch.autograd.grad(fake_images, g_params, grad_outputs=dy))
    real, fake = full(real.detach()), full(fake.detach())
    return StepStats(d_loss, g_loss, torch.sigmoid(real).mean(), torch.sigmoid(fake).mean())


class AutogradStep:
    """The simultaneous schedule through autograd: one minibatch, one set of masks, both players' gradients at the
    same parameters, then both optimisers step (through the fp16 gradient scaler when there is one)."""

    name = "autograd"

    def __call__(self, players, perm: torch.Tensor, position: int, mu: float, stop: bool = False,
                 keep: float = 1.0) -> StepStats:
        p, t = players, players.config.train
        x, c, z, masks, c_fake = p.simultaneous_draws(perm, position)
        with p.autocast:
            stats = simultaneous_grads_autograd(p.generator, p.discriminator, x, z, masks, t.generator_loss,
                                                real_labels=c, fake_labels=c_fake, **p.loss_scale())
        p.average(p.opt_d, stats, D_STATS)
        p.average(p.opt_g, stats, G_STATS, stop)
        p.apply(p.opt_d, p.opt_g)
        return stats
