"""Building a Config: defaults, then a preset (or a config file), then `section.key=value` overrides."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .coerce import from_dict, parse_value
from .files import load_config_data
from .presets import PRESETS, preset_names
from .schema import Config, did_you_mean


def make_config(preset: str | Path | None = None,
                overrides: list[str] | dict[str, Any] | None = None) -> Config:
    """Defaults, then a named preset or a config file, then `section.key=value` overrides (strings or a dict).

    `preset` is a preset name (`preset_names()`) or the path of a JSON or YAML config file, such as a run's
    config.json or the output of `advnets config`; a file may give only some keys, the rest keep their defaults.
    """
    base, values = Config(), {}
    if preset is not None:
        if str(preset) in PRESETS:
            values.update(PRESETS[str(preset)])
        elif _looks_like_path(preset):
            base = read_config_file(preset)
        else:
            raise ConfigError(f"unknown preset '{preset}'", did_you_mean(str(preset), PRESETS) or
                              f"choose one of {', '.join(preset_names())}, or give a config file (.json, .yaml)")
    if isinstance(overrides, dict):
        values.update(overrides)
    else:
        values.update(parse_override(item) for item in overrides or [])
    return with_overrides(base, values)


def _looks_like_path(preset: str | Path) -> bool:
    text = str(preset)
    return isinstance(preset, Path) or "/" in text or text.endswith((".json", ".yaml", ".yml")) or Path(text).exists()


def read_config_file(path: str | Path) -> Config:
    """A Config from a JSON or YAML file holding sections data / model / train (any subset of the keys)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist", "give an existing .json or .yaml file, or a preset")
    data = load_config_data(path)
    try:
        return from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}", exc.hint) from None


def parse_override(item: str) -> tuple[str, Any]:
    """'train.lr=0.05' -> ('train.lr', 0.05): the value is read as JSON where it parses, else as text."""
    key, sep, raw = item.partition("=")
    if not sep:
        raise ConfigError(f"override '{item}' is not of the form section.key=value",
                          "for example --set train.lr=0.05")
    return key.strip(), parse_value(raw.strip())


def with_overrides(config: Config, values: dict[str, Any]) -> Config:
    """Return `config` with dotted keys replaced (`{"train.lr": 0.05}`); from_dict checks the keys and values."""
    nested = config.to_dict()
    for key, value in values.items():
        section, dot, name = key.partition(".")
        if not dot:
            raise ConfigError(f"override key '{key}' needs a section", "write it as section.key, e.g. train.lr")
        nested.setdefault(section, {})[name] = value
    return from_dict(nested)
