"""The paper's MNIST networks (DESIGN.md §1): an MLP generator and a maxout discriminator with dropout.

G: z (100) -> 1200 ReLU -> 1200 ReLU -> 784 sigmoid, weights uniform in +-0.05, output bias = logit of the
   data's mean pixel (pylearn2's init_sigmoid_bias_from_marginals).
D: x (784) -> maxout 240x5 -> maxout 240x5 -> 1 logit, weights uniform in +-0.005, dropout on the input of
   every layer (0.8 x1.25 on x, 0.5 x2 later).

Conditional nets (paper section 7, item 1; `num_classes` > 0): the one-hot class label c is concatenated to
G's input, G(z, c) = G([z; c]), and to D's input after its dropout, D(x, c) = D([mask * x; c]): the label is
never dropped.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .dropout import dropout_mask


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


def marginal_logits(images: torch.Tensor) -> torch.Tensor:
    """Logit of each pixel's mean over the data, clipped to [1e-3, 1 - 1e-3] as in pylearn2. Shape (d,)."""
    mean = images.reshape(images.shape[0], -1).double().mean(0).clamp(1e-3, 1 - 1e-3)
    return torch.log(mean / (1 - mean)).float()


def _init_linear(layer: nn.Linear, init_range: float, generator: torch.Generator | None) -> None:
    with torch.no_grad():
        layer.weight.uniform_(-init_range, init_range, generator=generator)
        layer.bias.zero_()


class Generator(nn.Module):
    """x = G(z): ReLU hidden layers and a sigmoid output reshaped to `image_shape` (C, H, W)."""

    def __init__(self, noise_dim: int, hidden: tuple[int, ...], image_shape: tuple[int, int, int],
                 init_range: float = 0.05, output_bias: torch.Tensor | None = None,
                 generator: torch.Generator | None = None, output: str = "sigmoid", num_classes: int = 0):
        super().__init__()
        if output not in ("sigmoid", "linear"):
            raise ValueError(f"unknown generator output {output!r}")
        self.noise_dim = noise_dim
        self.num_classes = num_classes
        self.output = output
        self.image_shape = tuple(image_shape)
        widths = [noise_dim + num_classes, *hidden, math.prod(image_shape)]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        for layer in self.layers:
            _init_linear(layer, init_range, generator)
        if output_bias is not None:
            with torch.no_grad():
                self.layers[-1].bias.copy_(output_bias.reshape(-1))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """x = G(z) (or G(z, c) for a conditional net, `labels` (B,) class indices): (B, C, H, W)."""
        c = one_hot(labels, self.num_classes, z.dtype)
        h = z if c is None else torch.cat([z, c], 1)     # (B, noise_dim [+ classes])
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))                     # (B, hidden)
        x = self.layers[-1](h)                           # (B, C*H*W)
        if self.output == "sigmoid":
            x = torch.sigmoid(x)                         # pixels in (0, 1)
        return x.view(-1, *self.image_shape)


class MaxoutDiscriminator(nn.Module):
    """D(x) as a logit: maxout hidden layers, dropout on every layer's input while training.

    A maxout layer is one linear map to units*pieces values laid out piece-major, (B, pieces, units),
    and the maximum over the pieces.
    """

    def __init__(self, image_shape: tuple[int, int, int], units: tuple[int, ...], pieces: int,
                 init_range: float = 0.005, input_include_prob: float = 0.8, input_scale: float = 1.25,
                 hidden_include_prob: float = 0.5, hidden_scale: float = 2.0,
                 generator: torch.Generator | None = None, num_classes: int = 0):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.units = tuple(units)
        self.pieces = pieces
        self.num_classes = num_classes
        widths = [math.prod(image_shape), *units]
        inputs = [widths[0] + num_classes, *widths[1:-1]]     # the first layer also reads the one-hot label
        self.hidden = nn.ModuleList(nn.Linear(a, b * pieces) for a, b in zip(inputs, widths[1:]))
        self.output = nn.Linear(widths[-1], 1)
        for layer in [*self.hidden, self.output]:
            _init_linear(layer, init_range, generator)
        # (include probability, scale) for the input of each layer, in order
        self.dropout = [(input_include_prob, input_scale)] + \
            [(hidden_include_prob, hidden_scale)] * len(units)

    def draw_masks(self, batch: int, generator: torch.Generator | None = None) -> list[torch.Tensor | None]:
        """One dropout mask per layer input, for a batch of `batch` examples."""
        device = self.output.weight.device
        widths = [math.prod(self.image_shape), *self.units]
        return [dropout_mask((batch, w), p, s, generator, device) for w, (p, s) in zip(widths, self.dropout)]

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
            z = layer(h)                                  # (B, pieces * units)
            h = z.view(z.shape[0], self.pieces, -1).amax(dim=1)  # (B, units)
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
            z = layer(h)
            h = z.view(z.shape[0], self.pieces, -1).amax(dim=1)
            out.append(h)
        return out


def build_models(model_config, image_shape: tuple[int, int, int], output_bias: torch.Tensor | None,
                 generator: torch.Generator | None = None, num_classes: int = 0
                 ) -> tuple[Generator, MaxoutDiscriminator]:
    """G and D from a `ModelConfig`, initialised from `generator` (G first, then D); `num_classes` > 0 makes
    them conditional (model.conditional)."""
    m = model_config
    if bool(num_classes) != m.conditional:
        raise ValueError(f"model.conditional is {m.conditional} but num_classes is {num_classes}")
    if m.architecture != "mlp" or set(m.generator_activations) != {"relu"} or m.generator_output_init_range:
        from .conv import build_image_models   # the CIFAR-10 / TFD networks (conv, or sigmoid hidden layers)

        return build_image_models(m, image_shape, output_bias, generator)
    bias = output_bias if m.generator_output_bias == "marginals" else None
    g = Generator(m.noise_dim, m.generator_hidden, image_shape, m.generator_init_range, bias, generator,
                  m.generator_output, num_classes)
    d = MaxoutDiscriminator(image_shape, m.discriminator_units, m.discriminator_pieces,
                            m.discriminator_init_range, m.discriminator_input_include_prob,
                            m.discriminator_input_scale, m.discriminator_hidden_include_prob,
                            m.discriminator_hidden_scale, generator, num_classes)
    return g, d
