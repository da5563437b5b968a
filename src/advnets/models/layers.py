"""The building blocks the networks share: maxout, dropout masks, weight init, activations, one-hot labels.

Maxout (Goodfellow et al. 2013) is written once, here, for the dense and convolutional discriminators; the fused
training step (training/step_fused.py) computes the same maximum and winner mask inline.
"""
from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid}


# ----- maxout

class _Maxout(torch.autograd.Function):
    """max over the pieces of (B, pieces, ...) -> (B, ...). The backward pass sends the gradient to the winning
    piece through a saved float winner mask: one multiplication, where autograd's amax backward (which splits the
    gradient between ties) costs about a third of a whole CIFAR-10 training step on a CPU."""

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        if z.dim() > 3:          # feature maps: an elementwise maximum keeps their memory layout (channels-last)
            out = z[:, 0]
            for piece in range(1, z.shape[1]):
                out = torch.maximum(out, z[:, piece])
        else:
            out = z.amax(dim=1)
        ctx.save_for_backward(torch.eq(z, out.unsqueeze(1), out=torch.empty_like(z)))
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (winner,) = ctx.saved_tensors
        return winner * grad.unsqueeze(1)


def maxout(z: torch.Tensor, pieces: int) -> torch.Tensor:
    """(B, pieces * units, ...) laid out piece-major -> (B, units, ...), the maximum over the pieces."""
    return _Maxout.apply(z.view(z.shape[0], pieces, -1, *z.shape[2:]))


# ----- dropout, as in pylearn2's `dropout_fprop`: each input unit is kept with an include probability and the
# kept ones are multiplied by a scale (D's input: 0.8 and x1.25; later layers: 0.5 and x2). Masks are drawn
# explicitly, from a generator the trainer owns, so that a resumed run draws the same masks as an uninterrupted one.

# Masks come from 16 random bits per unit: 4 units per 64-bit draw, about 3x cheaper than torch.bernoulli
# on CPU. The include probability is therefore rounded to a multiple of 1/65536 (0.8 -> 0.800003).
_LEVELS = 1 << 16


def dropout_mask(shape: tuple[int, int], include_prob: float, scale: float,
                 generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor | None:
    """A float mask of shape `shape` holding `scale` for kept units and 0 for dropped ones.

    Returns None when include_prob is 1 and scale is 1 (no dropout).
    """
    if include_prob >= 1.0 and scale == 1.0:
        return None
    if include_prob >= 1.0:
        # every unit kept: the threshold below (32768) does not fit the int16 bits and would drop every unit
        return torch.full(shape, float(scale), device=device)
    rows, cols = shape
    n = rows * cols
    words = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + 3) // 4,), dtype=torch.int64,
                          generator=generator, device=device)
    bits = words.view(torch.int16)[:n].view(rows, cols)           # uniform on [-32768, 32767]
    threshold = round(include_prob * _LEVELS) - _LEVELS // 2
    # the comparison written straight as float 0/1 (7x faster than a bool result and a cast), then the scale
    keep = torch.lt(bits, threshold, out=torch.empty(shape, dtype=torch.float32, device=bits.device))
    return keep.mul_(scale)


# ----- initialisation and activations

def init_uniform(layer: nn.Module, init_range: float, generator: torch.Generator | None) -> None:
    """Weights uniform in +-init_range (pylearn2's irange), drawn from `generator`; biases zero."""
    with torch.no_grad():
        layer.weight.uniform_(-init_range, init_range, generator=generator)
        if getattr(layer, "bias", None) is not None:
            layer.bias.zero_()


def marginal_logits(images: torch.Tensor) -> torch.Tensor:
    """Logit of each pixel's mean over the data, clipped to [1e-3, 1 - 1e-3] as in pylearn2. Shape (d,).

    The mean is the float64 sum over the rows divided by N: for pixels k / 255 in float32 that sum is exact (below
    about 4M rows), so a sum taken in blocks (the memmap store, training/streaming.py) gives the same bias."""
    return mean_logits(images.reshape(images.shape[0], -1).double().sum(0).cpu() / images.shape[0])


def mean_logits(mean: torch.Tensor) -> torch.Tensor:
    """`marginal_logits` from the (d,) float64 pixel means, on the CPU (one result whatever the run's device)."""
    mean = mean.cpu().clamp(1e-3, 1 - 1e-3)
    return torch.log(mean / (1 - mean)).float()


# ----- class labels of conditional nets (paper section 7)

def one_hot(labels: torch.Tensor | None, num_classes: int, dtype: torch.dtype) -> torch.Tensor | None:
    """(B,) class indices -> (B, num_classes) one-hot rows; None for an unconditional net (num_classes 0)."""
    if num_classes == 0:
        if labels is not None:
            raise ValueError("class labels given to an unconditional network")
        return None
    if labels is None:
        raise ValueError("a conditional network needs class labels")
    return torch.nn.functional.one_hot(labels, num_classes).to(dtype)


def label_kwargs(labels: torch.Tensor | None) -> dict:
    """Keyword arguments that pass class labels to a conditional net, and nothing to an unconditional one (the
    CIFAR-10 / TFD networks take no `labels`)."""
    return {} if labels is None else {"labels": labels}


def class_rows(num_classes: int, per_class: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Classes for a grid with one row per class: (num_classes * per_class,) = 0 .. 0, 1 .. 1, ..."""
    return torch.arange(num_classes, device=device).repeat_interleave(per_class)
