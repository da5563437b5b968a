"""Generators, discriminators, maxout, dropout and the noise prior."""
from .conv import ConvGenerator, MaxoutConvDiscriminator
from .dense import DenseGenerator
from .dropout import dropout_mask
from .mlp import Generator, MaxoutDiscriminator, build_models, class_rows, label_kwargs, marginal_logits
from .noise import sample_noise

__all__ = ["ConvGenerator", "DenseGenerator", "Generator", "MaxoutConvDiscriminator", "MaxoutDiscriminator",
           "build_models", "class_rows", "dropout_mask", "label_kwargs", "marginal_logits", "sample_noise"]
