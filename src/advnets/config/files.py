"""Reading a config file (JSON or YAML) into plain values, bounded: a config is a few kilobytes of three sections of
flat keys, so a file that is large, deeply nested or expands into many values (a YAML alias bomb: nine aliases of
nine aliases of ... a list) is refused in one line before any of it is coerced or printed."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

MAX_BYTES = 1 << 20          # 1 MiB: `advnets config` writes about 3 KB
MAX_DEPTH = 6                # config -> section -> list value -> item is 3 levels; a few more for a clear message
MAX_VALUES = 10_000          # values after YAML aliases are expanded; a full config has about 100


def load_config_data(path: Path, hint: str | None = None) -> Any:
    """The parsed contents of the JSON or YAML (.yaml, .yml) file `path`, not yet checked against the schema.
    Unreadable, not UTF-8, too large, invalid, too deep or too many values: a ConfigError naming `path` (with
    `hint`)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path} ({exc.strerror or exc})", hint) from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_BYTES >> 20} MiB; a config is a few kilobytes",
                          hint or "give a config written by `advnets config` or a run's config.json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                          hint) from None
    data = _parse_yaml(path, text, hint) if path.suffix in (".yaml", ".yml") else _parse_json(path, text, hint)
    check_extent(data, str(path), hint)
    return data


def _parse_json(path: Path, text: str, hint: str | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})", hint) from None
    except RecursionError:          # the C parser gives up past Python's recursion limit (about 1,000 levels)
        raise ConfigError(f"{path} is nested more than {MAX_DEPTH} levels deep", hint) from None


def _parse_yaml(path: Path, text: str, hint: str | None) -> Any:
    try:
        return yaml.safe_load(text)        # aliases are shared, not copied: check_extent counts them expanded
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({str(exc).splitlines()[0]})", hint) from None
    except RecursionError:
        raise ConfigError(f"{path} is nested more than {MAX_DEPTH} levels deep", hint) from None


def check_extent(data: Any, where: str, hint: str | None = None) -> None:
    """Refuse `data` nested deeper than MAX_DEPTH or holding more than MAX_VALUES values, counting a value shared
    by YAML aliases once per use (as printing or copying it would). Stops counting at the first excess, so the
    cost is bounded whatever the sharing."""
    stack, count = [(data, 1)], 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ConfigError(f"{where} holds more than {MAX_VALUES:,} values (YAML aliases counted expanded); "
                              "a config has about 100", hint)
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise ConfigError(f"{where} is nested more than {MAX_DEPTH} levels deep", hint)
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
