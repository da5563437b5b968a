"""A fully connected generator with a chosen activation per hidden layer.

The original CIFAR-10 and TFD generators (cifar10_fully_connected.yaml, tfd_pretrain/pretrain.yaml) are
100 -> 8000 ReLU -> 8000 sigmoid -> image, where the MNIST one (`mlp.Generator`) is all ReLU. `DenseGenerator`
is that `Generator` with per-layer activations, and optionally a different init range for its output layer (the
CIFAR-10 one draws it from +-0.5). It is a subclass, not the class itself, so the fused step (written for ReLU
hidden layers) leaves it to autograd: `steps.supports_fused` checks the exact type.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .mlp import Generator

ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid}


def expand_activations(activations: tuple[str, ...], layers: int) -> tuple[str, ...]:
    """One activation per hidden layer: a single value applies to all of them."""
    activations = tuple(activations)
    if len(activations) == 1:
        activations = activations * layers
    if len(activations) != layers:
        raise ConfigError(f"model.generator_activations has {len(activations)} values for {layers} hidden layers",
                          "give one activation for all layers, or one per entry of model.generator_hidden")
    unknown = [a for a in activations if a not in ACTIVATIONS]
    if unknown:
        raise ConfigError(f"unknown generator activation '{unknown[0]}'", f"choose from {', '.join(ACTIVATIONS)}")
    return activations


def init_uniform(weight: torch.Tensor, init_range: float, generator: torch.Generator | None) -> None:
    with torch.no_grad():
        weight.uniform_(-init_range, init_range, generator=generator)


class DenseGenerator(Generator):
    """x = G(z): hidden layers with the given activations (relu | sigmoid), output sigmoid or linear."""

    def __init__(self, noise_dim: int, hidden: tuple[int, ...], image_shape: tuple[int, int, int],
                 activations: tuple[str, ...] = ("relu",), init_range: float = 0.05,
                 output_bias: torch.Tensor | None = None, generator: torch.Generator | None = None,
                 output: str = "sigmoid", output_init_range: float = 0.0):
        super().__init__(noise_dim, hidden, image_shape, init_range, output_bias, generator, output)
        self.activations = expand_activations(activations, len(hidden))
        if output_init_range:
            init_uniform(self.layers[-1].weight, output_init_range, generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z                                                     # (B, noise_dim)
        for layer, name in zip(self.layers[:-1], self.activations):
            h = ACTIVATIONS[name](layer(h))                       # (B, hidden)
        x = self.layers[-1](h)                                    # (B, C*H*W)
        if self.output == "sigmoid":
            x = torch.sigmoid(x)
        return x.view(-1, *self.image_shape)
