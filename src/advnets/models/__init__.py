"""The networks: generators (generator.py), maxout discriminators (discriminator.py), their shared layers
(layers.py), the noise prior (noise.py), and the one factory (build.py)."""
from .build import build_models
from .discriminator import MaxoutConvDiscriminator, MaxoutDiscriminator
from .generator import ConvGenerator, MLPGenerator
from .layers import class_rows, dropout_mask, label_kwargs, marginal_logits, maxout, one_hot
from .noise import sample_noise

__all__ = ["ConvGenerator", "MLPGenerator", "MaxoutConvDiscriminator", "MaxoutDiscriminator", "build_models",
           "class_rows", "dropout_mask", "label_kwargs", "marginal_logits", "maxout", "one_hot", "sample_noise"]
