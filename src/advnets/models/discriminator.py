"""The paper's convolutional CIFAR-10 networks (Figure 2 c-d; cifar10_convolutional.yaml, DESIGN.md §1).

G: z (100) -> 8000 ReLU -> 8000 sigmoid, reshaped to 80 x 10 x 10 -> one transposed convolution ("deconv",
   kernel 5, stride 3: 3 * (10 - 1) + 5 = 32) to 3 x 32 x 32, linear, plus one bias per output value (the
   original's tied_b: 0). For other image sizes the output is centre-cropped when the convolution overshoots.
D: three maxout convolution layers -- 32 units x 2 pieces kernel 8 pad 4, max-pool 4 stride 2 (3x32x32 -> 33x33
   -> 16x16); 32 x 2 kernel 8 pad 3, pool 4/2 (-> 15x15 -> 7x7); 192 x 2 kernel 5 pad 3, pool 2/2 (-> 9x9 -> 5x5)
   -- then maxout 500 x 5 and one logit. Pooling keeps the partial windows at the border (cuda-convnet's sizes,
   PyTorch's ceil_mode). Dropout on the input of every layer, as for MNIST (0.8 x1.25 on the image, 0.5 x2 later),
   elementwise on feature maps as pylearn2 did. Weights uniform in +-0.05 (G) and +-0.005 (D), biases 0.

The trainer keeps data flattened: D accepts (B, C*H*W) or (B, C, H, W); G returns (B, C, H, W).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .dense import ACTIVATIONS, DenseGenerator, expand_activations, init_uniform
from .dropout import dropout_mask
from .mlp import MaxoutDiscriminator


class ConvGenerator(nn.Module):
    """x = G(z): dense layers, the last reshaped to (channels, h, w), then a transposed convolution to the image."""

    def __init__(self, noise_dim: int, hidden: tuple[int, ...], image_shape: tuple[int, int, int],
                 activations: tuple[str, ...] = ("relu",), conv_channels: int = 80, kernel: int = 5,
                 stride: int = 3, init_range: float = 0.05, output_bias: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, output: str = "linear", output_init_range: float = 0.0):
        super().__init__()
        if output not in ("sigmoid", "linear"):
            raise ValueError(f"unknown generator output {output!r}")
        if not hidden:
            raise ConfigError("model.architecture=conv needs at least one generator hidden layer to reshape",
                              "e.g. --set model.generator_hidden=8000,8000")
        self.noise_dim, self.output, self.image_shape = noise_dim, output, tuple(image_shape)
        self.activations = expand_activations(activations, len(hidden))
        self.conv_shape = _conv_input_shape(tuple(hidden), conv_channels, kernel, stride, self.image_shape)
        c, h, w = self.image_shape
        widths = [noise_dim, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.deconv = nn.ConvTranspose2d(conv_channels, c, kernel, stride, bias=False)
        self.bias = nn.Parameter(torch.zeros(self.image_shape))       # one per output value (untied)
        for layer in self.layers:
            init_uniform(layer.weight, init_range, generator)
            nn.init.zeros_(layer.bias)
        init_uniform(self.deconv.weight, output_init_range or init_range, generator)
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


class _Maxout(torch.autograd.Function):
    """max over the pieces of (B, pieces, ...) -> (B, ...). The backward pass sends the gradient to the winning
    piece through a saved float winner mask: one multiplication, where autograd's amax backward (which splits the
    gradient between ties) costs about a third of a whole CIFAR-10 training step on a CPU."""

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
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


def _pooled(side: int, kernel: int, stride: int) -> int:
    """Output side of max pooling with partial border windows kept (PyTorch ceil_mode)."""
    out = -(-(side - kernel) // stride) + 1
    return out - 1 if (out - 1) * stride >= side else out


class MaxoutConvDiscriminator(nn.Module):
    """D(x) as a logit: maxout convolution layers with max pooling, maxout dense layers, dropout on every input.

    A maxout convolution is one convolution to units*pieces feature maps laid out piece-major,
    (B, pieces, units, H, W), and the maximum over the pieces; max pooling follows it.
    """

    def __init__(self, image_shape: tuple[int, int, int], conv_units: tuple[int, ...], conv_pieces: int,
                 kernels: tuple[int, ...], pads: tuple[int, ...], pool_shapes: tuple[int, ...],
                 pool_strides: tuple[int, ...], units: tuple[int, ...], pieces: int, init_range: float = 0.005,
                 input_include_prob: float = 0.8, input_scale: float = 1.25, hidden_include_prob: float = 0.5,
                 hidden_scale: float = 2.0, generator: torch.Generator | None = None):
        super().__init__()
        n = len(conv_units)
        if n == 0 or not all(len(v) == n for v in (kernels, pads, pool_shapes, pool_strides)):
            raise ConfigError(f"the discriminator's convolution settings differ in length: units {list(conv_units)}, "
                              f"kernels {list(kernels)}, pads {list(pads)}, pools {list(pool_shapes)}, "
                              f"pool strides {list(pool_strides)}", "give one value per convolution layer")
        self.image_shape, self.conv_pieces = tuple(image_shape), conv_pieces
        self.units, self.pieces = tuple(units), pieces
        self.pools = list(zip(pool_shapes, pool_strides))
        shapes = [self.image_shape]                                    # the input of every convolution layer
        for u, k, p, (ps, st) in zip(conv_units, kernels, pads, self.pools):
            c, h, w = shapes[-1]
            h, w = h + 2 * p - k + 1, w + 2 * p - k + 1
            if h < 1 or w < 1:
                raise ConfigError(f"a {k}x{k} convolution with padding {p} does not fit {shapes[-1][1]}x{shapes[-1][2]}"
                                  " feature maps", "use smaller model.discriminator_conv_kernels or larger images")
            shapes.append((u, _pooled(h, ps, st), _pooled(w, ps, st)))
        self.input_shapes = shapes[:-1]
        self.flat = math.prod(shapes[-1])
        self.convs = nn.ModuleList(nn.Conv2d(s[0], u * conv_pieces, k, padding=p)
                                   for s, u, k, p in zip(self.input_shapes, conv_units, kernels, pads))
        widths = [self.flat, *units]
        self.hidden = nn.ModuleList(nn.Linear(a, b * pieces) for a, b in zip(widths[:-1], widths[1:]))
        self.output = nn.Linear(widths[-1], 1)
        for layer in [*self.convs, *self.hidden, self.output]:
            init_uniform(layer.weight, init_range, generator)
            nn.init.zeros_(layer.bias)
        self.widths = [math.prod(s) for s in self.input_shapes] + widths    # every layer's input size
        self.dropout = [(input_include_prob, input_scale)] + \
            [(hidden_include_prob, hidden_scale)] * (len(self.widths) - 1)

    def draw_masks(self, batch: int, generator: torch.Generator | None = None) -> list[torch.Tensor | None]:
        """One dropout mask per layer input, (batch, size of that input) each, in layer order."""
        device = self.output.weight.device
        return [dropout_mask((batch, w), p, s, generator, device) for w, (p, s) in zip(self.widths, self.dropout)]

    def _conv_block(self, i: int, h: torch.Tensor) -> torch.Tensor:
        h = maxout(self.convs[i](h), self.conv_pieces)                 # (B, pieces * units, H, W) -> (B, units, H, W)
        ps, st = self.pools[i]
        return F.max_pool2d(h, ps, st, ceil_mode=True) if ps > 1 or st > 1 else h

    @staticmethod
    def _maxout(layer: nn.Linear, h: torch.Tensor, pieces: int) -> torch.Tensor:
        return maxout(layer(h), pieces)                                # (B, pieces * units) -> (B, units)

    def forward(self, x: torch.Tensor, masks: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        """Logits of D(x), shape (B,). In training mode, dropout masks are drawn unless given."""
        b = x.shape[0]
        if masks is None and self.training:
            masks = self.draw_masks(b)
        masks = masks or [None] * len(self.widths)
        h = x.reshape(b, *self.image_shape)                            # (B, C, H, W)
        for i in range(len(self.convs)):
            if masks[i] is not None:
                h = h * masks[i].view_as(h)
            h = self._conv_block(i, h)
        h = h.reshape(b, -1)                                           # (B, flat)
        for j, layer in enumerate(self.hidden):
            if masks[len(self.convs) + j] is not None:
                h = h * masks[len(self.convs) + j]
            h = self._maxout(layer, h, self.pieces)
        if masks[-1] is not None:
            h = h * masks[-1]
        return self.output(h).squeeze(1)                               # (B,)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Hidden activations without dropout: (B, units, H, W) per convolution layer, (B, units) per dense one."""
        h, out = x.reshape(x.shape[0], *self.image_shape), []
        for i in range(len(self.convs)):
            h = self._conv_block(i, h)
            out.append(h)
        h = h.reshape(h.shape[0], -1)
        for layer in self.hidden:
            h = self._maxout(layer, h, self.pieces)
            out.append(h)
        return out


def build_image_models(model_config, image_shape: tuple[int, int, int], output_bias: torch.Tensor | None,
                       generator: torch.Generator | None = None) -> tuple[nn.Module, nn.Module]:
    """G and D for `model.architecture` conv, or mlp with non-ReLU hidden layers; G first, then D."""
    m = model_config
    bias = output_bias if m.generator_output_bias == "marginals" else None
    if m.architecture == "conv":
        g = ConvGenerator(m.noise_dim, m.generator_hidden, image_shape, m.generator_activations,
                          m.generator_conv_channels, m.generator_conv_kernel, m.generator_conv_stride,
                          m.generator_init_range, bias, generator, m.generator_output, m.generator_output_init_range)
        d = MaxoutConvDiscriminator(image_shape, m.discriminator_conv_units, m.discriminator_conv_pieces,
                                    m.discriminator_conv_kernels, m.discriminator_conv_pads,
                                    m.discriminator_pool_shapes, m.discriminator_pool_strides,
                                    m.discriminator_units, m.discriminator_pieces, m.discriminator_init_range,
                                    m.discriminator_input_include_prob, m.discriminator_input_scale,
                                    m.discriminator_hidden_include_prob, m.discriminator_hidden_scale, generator)
        return g, d
    g = DenseGenerator(m.noise_dim, m.generator_hidden, image_shape, m.generator_activations,
                       m.generator_init_range, bias, generator, m.generator_output, m.generator_output_init_range)
    d = MaxoutDiscriminator(image_shape, m.discriminator_units, m.discriminator_pieces, m.discriminator_init_range,
                            m.discriminator_input_include_prob, m.discriminator_input_scale,
                            m.discriminator_hidden_include_prob, m.discriminator_hidden_scale, generator)
    return g, d
