"""Algorithm 1's simultaneous update for the paper's MLP G and maxout D, by hand: both players' gradients from one
forward and one backward pass through D.

The original code's schedule updates D and G from one minibatch, with the same dropout masks. D has one output per
example, so the backward pass through D of *any* loss of the logits is the same per-example Jacobian scaled by
dLoss/dlogit. One pass of "unit" deltas through D therefore serves both D's loss (its weight gradients) and G's
loss (the gradient reaching G's samples): D's weight gradients are never computed for the G update, and nothing
of D's forward or backward pass is done twice. tests/training/test_step_fused.py checks it against the two-pass
autograd oracle (tests/training/oracle.py) to 1e-10 in float64.

Each weight gradient is handed to its player's destination as the matrix product that yields it
(`add_product(p, a, b)`): `optim.GradientWriter` writes it into p.grad, `optim.MomentumSGD` accumulates it into
the velocity (v <- mu v - lr (a @ b)) without storing it, and with `apply_now` moves p by v as soon as p is no longer
read, while v is still in the CPU's cache.
"""
from __future__ import annotations

import torch

from ..losses import (discriminator_loss, discriminator_loss_logit_grads, generator_loss,
                      generator_loss_logit_grad)
from ..models.discriminator import MaxoutDiscriminator
from ..models.generator import MLPGenerator
from ..models.layers import one_hot
from ..optim import GradientWriter, MomentumSGD
from .step import D_STATS, G_STATS, StepStats, both_labels


def _masked(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return h if mask is None else h * mask


def _d_input(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None,
             labels: torch.Tensor | None) -> torch.Tensor:
    """D's input [x; y] * mask (then the one-hot labels, not dropped out), written in one pass: (2m, d [+ c])."""
    m, pixels = x.shape
    if mask is None and labels is None:
        return torch.cat([x, y])
    u = torch.empty(2 * m, pixels + (0 if labels is None else labels.shape[1]), dtype=y.dtype, device=y.device)
    if mask is None:
        u[:m, :pixels], u[m:, :pixels] = x, y
    else:
        torch.mul(x, mask[:m], out=u[:m, :pixels])
        torch.mul(y, mask[m:], out=u[m:, :pixels])
    if labels is not None:
        u[:, pixels:] = labels
    return u


def _generator_forward(g: MLPGenerator, z: torch.Tensor, fake_labels: torch.Tensor | None):
    """x = G(z) or G([z; c]): the inputs of G's layers ([z (+ c), post-ReLU activations], (m, width) each) and the
    samples y, (m, d)."""
    c_fake = one_hot(fake_labels, g.num_classes, z.dtype)
    h = z if c_fake is None else torch.cat([z, c_fake], 1)            # (m, noise_dim [+ classes])
    inputs = [h]
    for layer in g.layers[:-1]:
        h = torch.addmm(layer.bias, h, layer.weight.t()).relu_()
        inputs.append(h)
    out = g.layers[-1]
    return inputs, torch.addmm(out.bias, h, out.weight.t()).sigmoid_()


def _generator_backward(g: MLPGenerator, delta: torch.Tensor, inputs: list[torch.Tensor], ones: torch.Tensor,
                        g_out, finish) -> None:
    """G's weight gradients from delta = dL_G/d(pre-sigmoid output), (m, d), layer by layer from the last."""
    for j in range(len(g.layers) - 1, -1, -1):
        layer = g.layers[j]
        next_delta = None
        if j > 0:
            next_delta = torch.ops.aten.threshold_backward(delta @ layer.weight, inputs[j], 0)  # through the ReLU
        g_out.add_product(layer.weight, delta.t(), inputs[j])
        g_out.add_product(layer.bias, delta.t(), ones)
        finish(g_out, layer.weight)
        finish(g_out, layer.bias)
        delta = next_delta


@torch.no_grad()
def simultaneous_grads_fused(g: MLPGenerator, d: MaxoutDiscriminator, x_real: torch.Tensor,
                             z: torch.Tensor, masks: list[torch.Tensor | None], loss_kind: str,
                             real_labels: torch.Tensor | None = None, fake_labels: torch.Tensor | None = None,
                             d_out=GradientWriter, g_out=GradientWriter, apply_now: bool = False) -> StepStats:
    """One simultaneous update's gradients for G and D, by hand (see the module docstring).

    x_real: (m, d) data, z: (m, noise_dim) noise, masks: D's dropout masks for the (2m, .) batch
    [data; samples]. Both gradients are taken at the current parameters and handed to `d_out` / `g_out`
    (`add_product`; default: each parameter's .grad). Conditional nets also take the labels, (m,) each.
    `apply_now` (momentum SGD destinations): p <- p + v as soon as the step has handed over p's gradient and will
    not read p again (each layer's input gradient is taken before its weight gradient).
    """
    m = x_real.shape[0]
    g_inputs, y = _generator_forward(g, z, fake_labels)

    # --- D forward on [data; samples] with one set of masks (the one-hot labels are not dropped out)
    c_both = one_hot(both_labels(real_labels, fake_labels), d.num_classes, y.dtype)
    u = _d_input(x_real.reshape(m, -1), y, masks[0], c_both)          # (2m, d [+ classes])
    d_inputs, pre, post = [u], [], []
    for i, layer in enumerate(d.hidden):
        zl = torch.addmm(layer.bias, u, layer.weight.t()).view(2 * m, d.pieces, -1)  # (2m, P, U)
        a = zl.amax(dim=1)                                            # (2m, U)
        pre.append(zl)
        post.append(a)
        u = _masked(a, masks[i + 1])
        d_inputs.append(u)
    logits = torch.addmm(d.output.bias, u, d.output.weight.t()).squeeze(1)   # (2m,)
    real, fake = logits[:m], logits[m:]

    # --- dLoss/dlogit for both players: D's loss on all 2m examples, G's on the m samples
    g_real, g_fake = discriminator_loss_logit_grads(real, fake)
    # update D: maximise log D(x) + log(1 - D(G(z))), i.e. descend discriminator_loss = -V/2
    g_d = torch.cat([g_real, g_fake])                                 # (2m,)
    # update G: minimise log(1 - D(G(z))) (minimax) or maximise log D(G(z)) (non-saturating)
    g_g = generator_loss_logit_grad(loss_kind, fake)                  # (m,)

    # --- one backward pass of unit deltas J = dlogit/d(.) through D
    def finish(out, p):
        if apply_now:
            out.apply_velocity(p)

    ones = torch.ones(2 * m, dtype=g_d.dtype, device=g_d.device)
    j_a = d.output.weight.expand(2 * m, -1)                           # (2m, U) dlogit/du
    for i in range(len(d.hidden) - 1, -1, -1):
        layer = d.hidden[i]
        if masks[i + 1] is not None:
            j_a = j_a * masks[i + 1]                                  # dlogit/da
        if i == len(d.hidden) - 1:                                    # D's output layer is no longer read
            d_out.add_product(d.output.weight, d_inputs[-1].t(), g_d)
            d_out.add_product(d.output.bias, g_d.unsqueeze(0), ones)
            finish(d_out, d.output.weight)
            finish(d_out, d.output.bias)
        # the winning piece of each maxout unit passes the delta on (== written as float: 4x faster)
        winner = torch.eq(pre[i], post[i].unsqueeze(1), out=torch.empty_like(pre[i]))  # (2m, P, U)
        j_z = winner.mul_(j_a.unsqueeze(1)).view(2 * m, -1)                                # (2m, P*U)
        if i > 0:
            j_a = j_z @ layer.weight                                  # (2m, U_prev) dlogit/du
        else:
            w_x = layer.weight[:, :y.shape[1]]                        # the pixels' columns, not the label's
            j_x = j_z[m:] @ w_x                                       # (m, d) dlogit/du on samples only
            if masks[0] is not None:
                j_x = j_x * masks[0][m:]
        # D's weight gradient: sum_n g_d[n] * J_z[n] (x) input[n]
        d_out.add_product(layer.weight, j_z.t(), d_inputs[i] * g_d.unsqueeze(1))
        d_out.add_product(layer.bias, j_z.t(), g_d)
        finish(d_out, layer.weight)
        finish(d_out, layer.bias)
    # G's loss: dL_G/dy = g_g * dlogit/dy  (D's weight gradients never enter)
    delta = torch.ops.aten.sigmoid_backward(j_x.mul_(g_g.unsqueeze(1)), y)  # (m, d) through the sigmoid

    _generator_backward(g, delta, g_inputs, ones[:m], g_out, finish)

    return StepStats(
        d_loss=discriminator_loss(real, fake), g_loss=generator_loss(loss_kind, fake),
        d_real=torch.sigmoid(real).mean(), d_fake=torch.sigmoid(fake).mean())


def supports_fused(g: torch.nn.Module, d: torch.nn.Module) -> bool:
    """Whether `simultaneous_grads_fused` computes these networks' update: an MLP G with ReLU hidden layers and a
    sigmoid output, and a dense maxout D (not a packed one: models/packing.py, which goes through autograd)."""
    return (isinstance(g, MLPGenerator) and set(g.activations) <= {"relu"} and g.output == "sigmoid"
            and isinstance(d, MaxoutDiscriminator))


class FusedStep:
    """The simultaneous schedule by hand (`simultaneous_grads_fused`): with momentum SGD the gradients go straight
    into the velocities and each layer moves as soon as it is done (in a distributed run after the velocities are
    averaged); with another optimiser they go into .grad and both optimisers step."""

    name = "fused"

    def __call__(self, players, perm: torch.Tensor, position: int, mu: float, stop: bool = False,
                 keep: float = 1.0) -> StepStats:
        p, t = players, players.config.train
        x, c, z, masks, c_fake = p.simultaneous_draws(perm, position)
        velocity = isinstance(p.opt_d, MomentumSGD) and isinstance(p.opt_g, MomentumSGD)
        outs = {"d_out": p.opt_d, "g_out": p.opt_g, "apply_now": not p.dist.active} if velocity else {}
        stats = simultaneous_grads_fused(p.generator, p.discriminator, x, z, masks, t.generator_loss,
                                         real_labels=c, fake_labels=c_fake, **outs)
        p.average(p.opt_d, stats, D_STATS, velocity=velocity)
        p.average(p.opt_g, stats, G_STATS, stop, velocity=velocity)
        p.apply(p.opt_d, p.opt_g, velocity=velocity)
        return stats
