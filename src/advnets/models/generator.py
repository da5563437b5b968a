"""The generators: x = G(z), a dense MLP (the paper's MNIST, CIFAR-10 fc and TFD nets) or one whose last hidden
layer is reshaped to feature maps and turned into the image by a transposed convolution (CIFAR-10 conv).

MNIST (mnist.yaml): z (100) -> 1200 ReLU -> 1200 ReLU -> 784 sigmoid, weights uniform in +-0.05, output bias =
logit of the data's mean pixel (pylearn2's init_sigmoid_bias_from_marginals).
CIFAR-10 fc / TFD: 100 -> 8000 ReLU -> 8000 sigmoid -> image (CIFAR-10's output weights in +-0.5, linear output).
CIFAR-10 conv: 100 -> 8000 ReLU -> 8000 sigmoid, reshaped to 80 x 10 x 10 -> one transposed convolution (kernel 5,
stride 3: 3 * (10 - 1) + 5 = 32) to 3 x 32 x 32, linear, plus one bias per output value (the original's untied
bias). For other image sizes the output is centre-cropped when the convolution overshoots.

A conditional G (paper section 7, `num_classes` > 0; MLP only) reads the one-hot class label beside the noise:
G(z, c) = G([z; c]).
"""
from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from .layers import ACTIVATIONS, init_uniform, one_hot


class MLPGenerator(nn.Module):
    """x = G(z) (or G(z, c)): dense hidden layers, a sigmoid or linear output reshaped to (C, H, W)."""

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int, int], output_bias: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, num_classes: int = 0):
        """`config`'s generator_* keys shape G; `image_shape` (C, H, W) is its output; `output_bias` (C*H*W) sets
        the output layer's bias; weights are drawn from `generator`; `num_classes` > 0: conditional, G(z, c)."""
        super().__init__()
        self.config = config
        self.noise_dim, self.num_classes, self.output = config.noise_dim, num_classes, config.generator_output
        self.image_shape = tuple(image_shape)
        self.activations = config.hidden_activations()
        widths = [config.noise_dim + num_classes, *config.generator_hidden, math.prod(self.image_shape)]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        for layer in self.layers:
            init_uniform(layer, config.generator_init_range, generator)
        if output_bias is not None:
            with torch.no_grad():
                self.layers[-1].bias.copy_(output_bias.reshape(-1))
        scale = config.generator_output_init_range
        if scale:                          # drawn after the others, as the original CIFAR-10 fc model did
            with torch.no_grad():
                self.layers[-1].weight.uniform_(-scale, scale, generator=generator)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """x = G(z) (or G(z, c) for a conditional net, `labels` (B,) class indices): (B, C, H, W)."""
        c = one_hot(labels, self.num_classes, z.dtype)
        h = z if c is None else torch.cat([z, c], 1)     # (B, noise_dim [+ classes])
        for layer, name in zip(self.layers[:-1], self.activations):
            h = ACTIVATIONS[name](layer(h))              # (B, hidden)
        x = self.layers[-1](h)                           # (B, C*H*W)
        if self.output == "sigmoid":
            x = torch.sigmoid(x)                         # pixels in (0, 1)
        return x.view(-1, *self.image_shape)


class ConvGenerator(nn.Module):
    """x = G(z): dense layers, the last reshaped to (channels, h, w), then a transposed convolution to the image."""

    def __init__(self, config: ModelConfig, image_shape: tuple[int, int, int], output_bias: torch.Tensor | None = None,
                 generator: torch.Generator | None = None):
        """`config`'s generator_* keys shape G (at least one hidden layer, the last one reshaped to
        generator_conv_channels square maps); `image_shape` (C, H, W) is its output; `output_bias` (C, H, W) sets
        the untied output bias; weights are drawn from `generator`."""
        super().__init__()
        self.config = config
        self.noise_dim, self.output, self.image_shape = config.noise_dim, config.generator_output, tuple(image_shape)
        self.num_classes = 0
        self.activations = config.hidden_activations()
        channels = config.generator_conv_channels
        kernel, stride = config.generator_conv_kernel, config.generator_conv_stride
        self.conv_shape = _conv_input_shape(config.generator_hidden, channels, kernel, stride, self.image_shape)
        c, h, w = self.image_shape
        widths = [config.noise_dim, *config.generator_hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.deconv = nn.ConvTranspose2d(channels, c, kernel, stride, bias=False)
        self.bias = nn.Parameter(torch.zeros(self.image_shape))       # one per output value (untied)
        for layer in self.layers:
            init_uniform(layer, config.generator_init_range, generator)
        init_uniform(self.deconv, config.generator_output_init_range or config.generator_init_range, generator)
        if output_bias is not None:
            with torch.no_grad():
                self.bias.copy_(output_bias.reshape(self.image_shape))
        full = (self.conv_shape[1] - 1) * stride + kernel, (self.conv_shape[2] - 1) * stride + kernel
        self.crop = ((full[0] - h) // 2, (full[1] - w) // 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z                                                          # (B, noise_dim)
        for layer, name in zip(self.layers, self.activations):
            h = ACTIVATIONS[name](layer(h))                            # (B, hidden)
        x = self.deconv(h.view(-1, *self.conv_shape))                  # (B, C, H', W'), H' >= H
        top, left = self.crop
        x = x[:, :, top:top + self.image_shape[1], left:left + self.image_shape[2]] + self.bias  # (B, C, H, W)
        return torch.sigmoid(x) if self.output == "sigmoid" else x


def _conv_input_shape(hidden: tuple[int, ...], channels: int, kernel: int, stride: int,
                      image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(channels, side, side) with channels * side^2 = the last hidden width; the transposed convolution must
    cover the image."""
    _, h, w = image_shape
    width = hidden[-1]
    need = max(math.ceil(max(h - kernel, 0) / stride) + 1, math.ceil(max(w - kernel, 0) / stride) + 1)
    widths = ",".join(str(v) for v in (*hidden[:-1], channels * need * need))
    fix = (f"for {h}x{w} images with kernel {kernel} and stride {stride}, make the last hidden layer "
           f"{channels} x {need} x {need}: --set model.generator_hidden={widths}")
    side = math.isqrt(width // channels) if width % channels == 0 else 0
    if side * side * channels != width:
        raise ConfigError(f"the generator's last hidden layer ({width} units) is not "
                          f"model.generator_conv_channels={channels} square feature maps", fix)
    if (side - 1) * stride + kernel < max(h, w):
        raise ConfigError(f"the generator's {channels} x {side} x {side} feature maps give "
                          f"{(side - 1) * stride + kernel}x{(side - 1) * stride + kernel} images, smaller than the "
                          f"data's {h}x{w}", fix)
    return channels, side, side
