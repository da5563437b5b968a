"""The discriminators: D(x) as one logit per example, maxout layers with dropout on the input of every layer.

MNIST (mnist.yaml): x (784) -> maxout 240 units x 5 pieces -> maxout 240 x 5 -> 1 logit, weights uniform in
+-0.005, dropout 0.8 (kept inputs x1.25) on x and 0.5 (x2) on the later layers' inputs.
CIFAR-10 conv (cifar10_convolutional.yaml): three maxout convolution layers -- 32 units x 2 pieces kernel 8 pad 4,
max-pool 4 stride 2 (3x32x32 -> 33x33 -> 16x16); 32 x 2 kernel 8 pad 3, pool 4/2 (-> 15x15 -> 7x7); 192 x 2 kernel
5 pad 3, pool 2/2 (-> 9x9 -> 5x5) -- then maxout 500 x 5 and one logit. Pooling keeps the partial windows at the
border (cuda-convnet's sizes, PyTorch's ceil_mode). Dropout is elementwise on feature maps, as pylearn2 did.

A maxout layer is one linear map (or convolution) to units * pieces values laid out piece-major,
(B, pieces, units, ...), and the maximum over the pieces (layers.maxout).

A conditional D (paper section 7, `num_classes` > 0; dense only) reads the one-hot label after its input dropout:
D(x, c) = D([mask * x; c]), so the label is never dropped.
"""
from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from .layers import dropout_mask, init_uniform, maxout, one_hot


def _layer_dropout(config: ModelConfig, layers: int) -> list[tuple[float, float]]:
    """(include probability, scale) for the input of each of `layers` layers of D, in order: the input's, then the
    hidden layers'."""
    return [(config.discriminator_input_include_prob, config.discriminator_input_scale)] + \
        [(config.discriminator_hidden_include_prob, config.discriminator_hidden_scale)] * (layers - 1)


class MaxoutDiscriminator(nn.Module):
    """D(x) (or D(x, c)) as a logit: dense maxout hidden layers, dropout on every layer's input while training."""

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int, int],
                 generator: torch.Generator | None = None, num_classes: int = 0):
        """`config`'s discriminator_* keys shape D; `image_shape` (C, H, W) is its input; weights are drawn from
        `generator`; `num_classes` > 0: conditional, D(x, c)."""
        super().__init__()
        self.config = config
        self.image_shape, self.units = tuple(image_shape), tuple(config.discriminator_units)
        self.pieces, self.num_classes = config.discriminator_pieces, num_classes
        widths = [math.prod(self.image_shape), *self.units]
        inputs = [widths[0] + self.num_classes, *widths[1:-1]]     # the first layer also reads the one-hot label
        self.hidden = nn.ModuleList(nn.Linear(a, b * self.pieces) for a, b in zip(inputs, widths[1:]))
        self.output = nn.Linear(widths[-1], 1)
        for layer in [*self.hidden, self.output]:
            init_uniform(layer, config.discriminator_init_range, generator)
        self.widths = widths                                        # every layer's input size (label excluded)
        self.dropout = _layer_dropout(config, len(widths))

    def draw_masks(self, batch: int, generator: torch.Generator | None = None) -> list[torch.Tensor | None]:
        """One dropout mask per layer input, (batch, size of that input) each, in layer order."""
        device = self.output.weight.device
        return [dropout_mask((batch, w), p, s, generator, device) for w, (p, s) in zip(self.widths, self.dropout)]

    def forward(self, x: torch.Tensor, masks: list[torch.Tensor | None] | None = None,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of D(x) (or D(x, c), `labels` (B,) class indices), shape (B,). In training mode, dropout
        masks are drawn unless given."""
        h = x.reshape(x.shape[0], -1)                    # (B, d)
        c = one_hot(labels, self.num_classes, h.dtype)
        if masks is None and self.training:
            masks = self.draw_masks(h.shape[0])
        for i, layer in enumerate(self.hidden):
            if masks is not None and masks[i] is not None:
                h = h * masks[i]
            if i == 0 and c is not None:
                h = torch.cat([h, c], 1)                  # (B, d + classes)
            h = maxout(layer(h), self.pieces)             # (B, pieces * units) -> (B, units)
        if masks is not None and masks[-1] is not None:
            h = h * masks[-1]
        return self.output(h).squeeze(1)                  # (B,)

    def features(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Hidden maxout activations without dropout, one (B, units) tensor per layer."""
        h, out = x.reshape(x.shape[0], -1), []
        c = one_hot(labels, self.num_classes, h.dtype)
        if c is not None:
            h = torch.cat([h, c], 1)
        for layer in self.hidden:
            h = maxout(layer(h), self.pieces)
            out.append(h)
        return out


def _pooled(side: int, kernel: int, stride: int) -> int:
    """Output side of max pooling with partial border windows kept (PyTorch ceil_mode)."""
    out = -(-(side - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= side else out


class MaxoutConvDiscriminator(nn.Module):
    """D(x) as a logit: maxout convolution layers with max pooling, maxout dense layers, dropout on every input.
    Accepts (B, C*H*W) or (B, C, H, W)."""

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int, int],
                 generator: torch.Generator | None = None):
        """`config`'s discriminator_* keys shape D: discriminator_conv_* and pool_* the convolution layers (one value
        per layer each), discriminator_units the dense ones; `image_shape` (C, H, W) is its input; weights are drawn
        from `generator`."""
        super().__init__()
        m = config
        self.config, self.num_classes = config, 0
        self.image_shape, self.conv_pieces = tuple(image_shape), m.discriminator_conv_pieces
        self.units, self.pieces = tuple(m.discriminator_units), m.discriminator_pieces
        self.pools = list(zip(m.discriminator_pool_shapes, m.discriminator_pool_strides))
        units, kernels, pads = m.discriminator_conv_units, m.discriminator_conv_kernels, m.discriminator_conv_pads
        shapes = [self.image_shape]                                    # the input of every convolution layer
        for u, k, p, (ps, st) in zip(units, kernels, pads, self.pools):
            _, h, w = shapes[-1]
            h, w = h + 2 * p - k + 1, w + 2 * p - k + 1
            if h < 1 or w < 1:
                raise ConfigError(f"a {k}x{k} convolution with padding {p} does not fit {shapes[-1][1]}x{shapes[-1][2]}"
                                  " feature maps", "use smaller model.discriminator_conv_kernels or larger images")
            shapes.append((u, _pooled(h, ps, st), _pooled(w, ps, st)))
        self.input_shapes = shapes[:-1]
        self.flat = math.prod(shapes[-1])
        self.convs = nn.ModuleList(nn.Conv2d(s[0], u * self.conv_pieces, k, padding=p)
                                   for s, u, k, p in zip(self.input_shapes, units, kernels, pads))
        widths = [self.flat, *self.units]
        self.hidden = nn.ModuleList(nn.Linear(a, b * self.pieces) for a, b in itertools.pairwise(widths))
        self.output = nn.Linear(widths[-1], 1)
        for layer in [*self.convs, *self.hidden, self.output]:
            init_uniform(layer, m.discriminator_init_range, generator)
        self.widths = [math.prod(s) for s in self.input_shapes] + widths    # every layer's input size
        self.dropout = _layer_dropout(config, len(self.widths))

    def draw_masks(self, batch: int, generator: torch.Generator | None = None) -> list[torch.Tensor | None]:
        """One dropout mask per layer input, (batch, size of that input) each, in layer order."""
        device = self.output.weight.device
        return [dropout_mask((batch, w), p, s, generator, device) for w, (p, s) in zip(self.widths, self.dropout)]

    def _conv_block(self, i: int, h: torch.Tensor) -> torch.Tensor:
        h = maxout(self.convs[i](h), self.conv_pieces)                 # (B, pieces * units, H, W) -> (B, units, H, W)
        ps, st = self.pools[i]
        return F.max_pool2d(h, ps, st, ceil_mode=True) if ps > 1 or st > 1 else h

    def forward(self, x: torch.Tensor, masks: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        """Logits of D(x), shape (B,). In training mode, dropout masks are drawn unless given."""
        b = x.shape[0]
        if masks is None and self.training:
            masks = self.draw_masks(b)
        masks = masks or [None] * len(self.widths)
        # (B, C, H, W) stored channels-last: the convolutions are ~20% faster, max pooling ~15x (torch 2.13, CPU)
        h = x.reshape(b, *self.image_shape).contiguous(memory_format=torch.channels_last)
        for i in range(len(self.convs)):
            if masks[i] is not None:
                h = h * masks[i].view_as(h)
            h = self._conv_block(i, h)
        h = h.reshape(b, -1)                                           # (B, flat)
        for j, layer in enumerate(self.hidden):
            if masks[len(self.convs) + j] is not None:
                h = h * masks[len(self.convs) + j]
            h = maxout(layer(h), self.pieces)
        if masks[-1] is not None:
            h = h * masks[-1]
        return self.output(h).squeeze(1)                               # (B,)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Hidden activations without dropout: (B, units, H, W) per convolution layer, (B, units) per dense one."""
        h, out = x.reshape(x.shape[0], *self.image_shape).contiguous(memory_format=torch.channels_last), []
        for i in range(len(self.convs)):
            h = self._conv_block(i, h)
            out.append(h)
        h = h.reshape(h.shape[0], -1)
        for layer in self.hidden:
            h = maxout(layer(h), self.pieces)
            out.append(h)
        return out
