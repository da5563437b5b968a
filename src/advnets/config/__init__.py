"""Configs: the schema (frozen dataclasses, the paper's MNIST setup as defaults, the checks of their values), values
coerced from the schema's annotations, presets as data, overrides.

    from advnets.config import make_config
    config = make_config("paper-mnist-5k", ["train.epochs=5"])      # or make_config("runs/q/config.json")
"""
from .coerce import from_dict
from .files import load_config_data
from .overrides import make_config, parse_override, read_config_file, with_overrides
from .presets import PRESETS, preset_names
from .schema import DATASETS, Config, DataConfig, ModelConfig, TrainConfig

__all__ = ["DATASETS", "PRESETS", "Config", "DataConfig", "ModelConfig", "TrainConfig", "from_dict", "load_config_data",
           "make_config", "parse_override", "preset_names", "read_config_file", "with_overrides"]
