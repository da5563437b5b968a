"""Dropout as in pylearn2's `dropout_fprop`: each input unit is kept with an include probability and the
kept ones are multiplied by a scale (D's input: 0.8 and x1.25; later layers: 0.5 and x2, DESIGN.md §1).

Masks are drawn explicitly, from a generator the trainer owns, so that a run is reproducible and a resumed
run draws the same masks as an uninterrupted one.
"""
from __future__ import annotations

import torch

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
    rows, cols = shape
    n = rows * cols
    words = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + 3) // 4,), dtype=torch.int64,
                          generator=generator, device=device)
    bits = words.view(torch.int16)[:n].view(rows, cols)           # uniform on [-32768, 32767]
    threshold = round(include_prob * _LEVELS) - _LEVELS // 2
    return (bits < threshold).to(torch.float32).mul_(scale)
