"""Configs: the schema (frozen dataclasses, the paper's MNIST setup as defaults), presets as data, overrides.

    from advnets.config import make_config
    config = make_config("paper-mnist-5k", ["train.epochs=5"])      # or make_config("runs/q/config.json")
"""
from .overrides import make_config, parse_override, read_config_file, with_overrides
from .presets import PRESETS, preset_names
from .schema import Config, DataConfig, ModelConfig, TrainConfig, from_dict

__all__ = ["Config", "DataConfig", "ModelConfig", "PRESETS", "TrainConfig", "from_dict", "make_config",
           "parse_override", "preset_names", "read_config_file", "with_overrides"]
