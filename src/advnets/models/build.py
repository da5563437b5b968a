"""The one factory: G and D from the `model` section of a Config (config/schema.py ModelConfig).

`model.architecture` mlp gives `MLPGenerator` + `MaxoutDiscriminator` (the paper's MNIST, CIFAR-10 fc and TFD
nets), conv gives `ConvGenerator` + `MaxoutConvDiscriminator` (CIFAR-10 conv). Both are initialised from one
torch.Generator, G first, then D, so a seed fixes every weight.

Their size is known before any weight is allocated: `parameter_count` builds them on PyTorch's meta device (shapes
only, no memory), and `check_model_memory` refuses a config whose networks would not fit in memory.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from ..memory import available_ram
from .discriminator import MaxoutConvDiscriminator, MaxoutDiscriminator
from .generator import ConvGenerator, MLPGenerator
from .packing import PackedDiscriminator

# float32 copies of every parameter while training: the weights, their gradients and the optimiser's state (SGD's
# velocity; Adam's two moments make it five, and G's moving average one more, but activations are not counted
# either: the check is a floor that catches sizes off by orders of magnitude, not a prediction)
TRAINING_COPIES = 4


def build_models(model_config: ModelConfig, image_shape: tuple[int, int, int], output_bias: torch.Tensor | None,
                 generator: torch.Generator | None = None, num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """G and D from a `ModelConfig` (checked first: `ModelConfig.validate`), initialised from `generator` (G
    first, then D). `output_bias` (the logits of the data's pixel marginals) is used when
    `model.generator_output_bias` is "marginals"; `num_classes` > 0 makes the nets conditional (model.conditional).
    The trainer calls `check_model_memory` first."""
    return _nets(model_config, image_shape, output_bias, generator, num_classes)


def parameter_count(model_config: ModelConfig, image_shape: tuple[int, int, int], num_classes: int = 0) -> int:
    """The number of parameters of G and D together, from their shapes alone (built on the meta device)."""
    with torch.device("meta"):
        g, d = _nets(model_config, image_shape, None, None, num_classes)
    return sum(p.numel() for net in (g, d) for p in net.parameters())


def check_model_memory(model_config: ModelConfig, image_shape: tuple[int, int, int], num_classes: int = 0,
                       device: torch.device | None = None, copies: int = TRAINING_COPIES) -> int:
    """Refuse (ConfigError) networks whose `copies` float32 copies of the parameters exceed the memory available on
    `device` (default and for any CPU: the RAM). Returns the parameter count."""
    device = device or torch.device("cpu")
    count = parameter_count(model_config, image_shape, num_classes)
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else available_ram()
    need = count * 4 * copies
    if free is not None and need > free:
        m = model_config
        what = "weights" if copies == 1 else f"weights, gradients and optimiser state ({copies} float32 copies)"
        raise ConfigError(f"model.noise_dim {m.noise_dim}, model.generator_hidden {list(m.generator_hidden)} and "
                          f"model.discriminator_units {list(m.discriminator_units)} give G and D {count:,} parameters: "
                          f"their {what} take {need / 2**30:,.1f} GiB, more than the {free / 2**30:,.1f} GiB "
                          f"available on {device}", "use smaller layers (e.g. the defaults: --set "
                          "model.generator_hidden=1200,1200 --set model.discriminator_units=240,240)")
    return count


def _nets(m: ModelConfig, image_shape: tuple[int, int, int], output_bias: torch.Tensor | None,
          generator: torch.Generator | None, num_classes: int) -> tuple[nn.Module, nn.Module]:
    m = m.validate()
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
