"""Packing (PacGAN, Lin et al. 2018): the discriminator judges `pack` examples at once, all real or all generated.

A remedy for the paper's "Helvetica scenario" (section 6: G collapsing many values of z onto one x). A single
sample that sits on one mode looks like data; `pack` samples that all sit on the same mode do not, when the data
spreads over many. So D sees the joint distribution of `pack` independent draws, p^pack, whose distance to the
data's grows with the mass G misses, and G is pushed to spread out. PacGAN changes nothing but D's input layer:
the first layer reads `pack` times as many inputs.

`PackedDiscriminator` wraps any of our discriminators (the inner one is built for inputs of `pack` times the
channels): a batch of B examples (B divisible by `pack`) is reshaped, consecutive examples together,

    (B, C, H, W) or (B, C*H*W)  ->  (B / pack, pack * C*H*W)  ->  inner D  ->  (B / pack,) logits

Concatenating flat examples is the same as stacking them along the channels, so a convolutional D packs too.
The training steps put the m data examples first and the m samples after them in one batch, so with m divisible
by `pack` every group is all real or all fake, and they split the logits in half (steps.py).
"""
from __future__ import annotations

import torch
from torch import nn


class PackedDiscriminator(nn.Module):
    """D(x_1, ..., x_pack) as one logit: the inner discriminator on `pack` examples concatenated."""

    def __init__(self, inner: nn.Module, pack: int):
        super().__init__()
        if pack < 1:
            raise ValueError(f"pack must be >= 1, got {pack}")
        if getattr(inner, "num_classes", 0):
            raise ValueError("a packed discriminator takes no class labels")
        self.inner, self.pack = inner, pack
        self.num_classes = 0
        self.image_shape = tuple(inner.image_shape)     # the inner D's input: (pack * C, H, W)

    def groups(self, batch: int) -> int:
        if batch % self.pack:
            raise ValueError(f"a packed discriminator needs a batch divisible by pack={self.pack}, got {batch}")
        return batch // self.pack

    def draw_masks(self, batch: int, generator: torch.Generator | None = None) -> list[torch.Tensor | None]:
        """The inner D's dropout masks for a batch of `batch` examples, i.e. batch / pack packed rows."""
        return self.inner.draw_masks(self.groups(batch), generator)

    def forward(self, x: torch.Tensor, masks: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        """Logits (B / pack,) for x (B, ...): row i judges examples i * pack .. i * pack + pack - 1."""
        packed = x.reshape(self.groups(x.shape[0]), -1)       # (B / pack, pack * d)
        if masks is None and self.training:
            masks = self.draw_masks(x.shape[0])
        return self.inner(packed, masks)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The inner D's hidden activations for the packed rows."""
        return self.inner.features(x.reshape(self.groups(x.shape[0]), -1))
