"""The one factory: G and D from a `ModelConfig` (config/schema.py).

`model.architecture` mlp gives `MLPGenerator` + `MaxoutDiscriminator` (the paper's MNIST, CIFAR-10 fc and TFD
nets), conv gives `ConvGenerator` + `MaxoutConvDiscriminator` (CIFAR-10 conv). Both are initialised from one
torch.Generator, G first, then D, so a seed fixes every weight.
"""
from __future__ import annotations

import torch
from torch import nn

from .discriminator import DiscriminatorConfig, MaxoutConvDiscriminator, MaxoutDiscriminator
from .generator import ConvGenerator, GeneratorConfig, MLPGenerator
from .packing import PackedDiscriminator


def generator_config(model_config, image_shape: tuple[int, int, int], num_classes: int = 0) -> GeneratorConfig:
    m = model_config
    return GeneratorConfig(m.noise_dim, tuple(image_shape), tuple(m.generator_hidden), tuple(m.generator_activations),
                           m.generator_output, m.generator_init_range, m.generator_output_init_range, num_classes,
                           m.generator_conv_channels, m.generator_conv_kernel, m.generator_conv_stride)


def discriminator_config(model_config, image_shape: tuple[int, int, int], num_classes: int = 0
                         ) -> DiscriminatorConfig:
    m = model_config
    conv = m.architecture == "conv"
    return DiscriminatorConfig(
        tuple(image_shape), tuple(m.discriminator_units), m.discriminator_pieces, m.discriminator_init_range,
        m.discriminator_input_include_prob, m.discriminator_input_scale, m.discriminator_hidden_include_prob,
        m.discriminator_hidden_scale, num_classes,
        tuple(m.discriminator_conv_units) if conv else (), m.discriminator_conv_pieces,
        tuple(m.discriminator_conv_kernels) if conv else (), tuple(m.discriminator_conv_pads) if conv else (),
        tuple(m.discriminator_pool_shapes) if conv else (), tuple(m.discriminator_pool_strides) if conv else ())


def build_models(model_config, image_shape: tuple[int, int, int], output_bias: torch.Tensor | None,
                 generator: torch.Generator | None = None, num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """G and D from a `ModelConfig`, initialised from `generator` (G first, then D). `output_bias` (the logits of
    the data's pixel marginals) is used when `model.generator_output_bias` is "marginals"; `num_classes` > 0 makes
    the nets conditional (model.conditional)."""
    m = model_config
    if bool(num_classes) != m.conditional:
        raise ValueError(f"model.conditional is {m.conditional} but num_classes is {num_classes}")
    bias = output_bias if m.generator_output_bias == "marginals" else None
    g_config = generator_config(m, image_shape, num_classes)
    c, h, w = image_shape
    d_config = discriminator_config(m, (m.pack * c, h, w), num_classes)      # pack examples stacked on channels
    if m.architecture == "conv":
        g, d = ConvGenerator(g_config, bias, generator), MaxoutConvDiscriminator(d_config, generator)
    else:
        g, d = MLPGenerator(g_config, bias, generator), MaxoutDiscriminator(d_config, generator)
    return g, (PackedDiscriminator(d, m.pack) if m.pack > 1 else d)
