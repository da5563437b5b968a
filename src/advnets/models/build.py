"""The one factory: G and D from the `model` section of a Config (config/schema.py ModelConfig).

`model.architecture` mlp gives `MLPGenerator` + `MaxoutDiscriminator` (the paper's MNIST, CIFAR-10 fc and TFD
nets), conv gives `ConvGenerator` + `MaxoutConvDiscriminator` (CIFAR-10 conv). Both are initialised from one
torch.Generator, G first, then D, so a seed fixes every weight.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .discriminator import MaxoutConvDiscriminator, MaxoutDiscriminator
from .generator import ConvGenerator, MLPGenerator
from .packing import PackedDiscriminator


def build_models(model_config: ModelConfig, image_shape: tuple[int, int, int], output_bias: torch.Tensor | None,
                 generator: torch.Generator | None = None, num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """G and D from a `ModelConfig` (checked first: `ModelConfig.validate`), initialised from `generator` (G
    first, then D). `output_bias` (the logits of the data's pixel marginals) is used when
    `model.generator_output_bias` is "marginals"; `num_classes` > 0 makes the nets conditional (model.conditional)."""
    m = model_config.validate()
    if bool(num_classes) != m.conditional:
        raise ValueError(f"model.conditional is {m.conditional} but num_classes is {num_classes}")
    bias = output_bias if m.generator_output_bias == "marginals" else None
    c, h, w = image_shape
    packed = (m.pack * c, h, w)                        # D's input: pack examples stacked on the channels
    if m.architecture == "conv":
        g, d = ConvGenerator(m, image_shape, bias, generator), MaxoutConvDiscriminator(m, packed, generator)
    else:
        g = MLPGenerator(m, image_shape, bias, generator, num_classes)
        d = MaxoutDiscriminator(m, packed, generator, num_classes)
    return g, (PackedDiscriminator(d, m.pack) if m.pack > 1 else d)
