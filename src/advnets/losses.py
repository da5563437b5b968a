"""The value function and the two generator losses, all from D's logits (never log of a sigmoid).

With D(x) = sigmoid(l(x)):  log D(x) = -softplus(-l(x)),  log(1 - D(x)) = -softplus(l(x)).
"""
from __future__ import annotations

import torch
from torch.nn.functional import softplus


def value_function(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Minibatch estimate of V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))] (paper eq. 1)."""
    return -softplus(-real_logits).mean() - softplus(fake_logits).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """What D minimises: -V/2, the mean cross-entropy over the real and fake halves of the batch.

    The factor 1/2 is the original code's (`d_obj = 0.5 * (cost(1, D(x)) + cost(0, D(G(z))))`); with it the
    paper's learning rate 0.1 gives the original step sizes.
    """
    return 0.5 * (softplus(-real_logits).mean() + softplus(fake_logits).mean())


def minimax_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The saturating loss of the minimax game: minimise E_z[log(1 - D(G(z)))] = -E[softplus(l)].

    Its gradient vanishes when D rejects the samples confidently, early in training (paper section 3).
    """
    return -softplus(fake_logits).mean()


def nonsaturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating loss: maximise E_z[log D(G(z))], i.e. minimise E[softplus(-l)] (paper section 3)."""
    return softplus(-fake_logits).mean()


def generator_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """`kind` is "minimax" or "non-saturating"."""
    if kind == "minimax":
        return minimax_generator_loss(fake_logits)
    if kind == "non-saturating":
        return nonsaturating_generator_loss(fake_logits)
    raise ValueError(f"unknown generator loss {kind!r}")


# Derivatives with respect to the logits, used by the fused training step (checked against autograd in tests).

def discriminator_loss_logit_grads(real_logits: torch.Tensor, fake_logits: torch.Tensor):
    """d discriminator_loss / d logits for the real and the fake half: (-sigmoid(-r)/2m, sigmoid(f)/2m)."""
    return (-0.5 / real_logits.numel()) * torch.sigmoid(-real_logits), \
        (0.5 / fake_logits.numel()) * torch.sigmoid(fake_logits)


def generator_loss_logit_grad(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """d generator_loss / d fake logits: -sigmoid(f)/m (minimax) or -sigmoid(-f)/m (non-saturating)."""
    sign = 1.0 if kind == "minimax" else -1.0
    if kind not in ("minimax", "non-saturating"):
        raise ValueError(f"unknown generator loss {kind!r}")
    return (-1.0 / fake_logits.numel()) * torch.sigmoid(sign * fake_logits)
