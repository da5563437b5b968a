"""A Config from plain values (a run's config.json, a YAML file, `--set` text): each value turned into the type its
key's annotation names (config/schema.py), unknown keys refused with a "did you mean" hint, then validated.

    int                 a whole number (2.0 and 1e3 are whole; 1.5, true and "2" are not)
    float               any number, stored as float (not true / false)
    bool                true or false only
    str, Literal[...]   text (the Literal's choices are checked by validation)
    X | None            null, or an X
    tuple[X, ...]       a list of X, one X, or comma-separated text ("1200,1200"); tuple[X, X] alike
"""
from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin

from ..errors import ConfigError
from .files import MAX_DEPTH, check_extent
from .schema import SECTIONS, Config, did_you_mean, field_types


# Keys whose default changed, with the value that a config stored by a run before then (a config.json or a
# checkpoint's copy that lacks the key) meant: that run resumes as it was. Coverage was opt-in until the default
# became null ("auto": on for some datasets).
STORED_DEFAULTS: dict[str, dict[str, Any]] = {"train": {"coverage_every_epochs": 0}}


def from_dict(data: dict[str, Any], stored: bool = False) -> Config:
    """Build a Config from a nested dict (e.g. a run's config.json). Unknown keys are errors; absent keys keep
    their defaults, or with `stored` (a config a run wrote: run/layout.py, run/checkpoint.py) the values of
    STORED_DEFAULTS."""
    if not isinstance(data, dict):
        raise ConfigError("a config must be a JSON object with sections data, model, train")
    check_extent(data, "the config")
    _check_keys(data, SECTIONS, "config")
    given = {name: data.get(name, {}) for name in SECTIONS}
    for name, values in given.items():                        # every key known before any value is read
        if not isinstance(values, dict):
            raise ConfigError(f"config section '{name}' must be an object, got {values!r}")
        _check_keys(values, field_types(SECTIONS[name]), f"config section '{name}'")
    if stored:
        given = {name: {**STORED_DEFAULTS.get(name, {}), **values} for name, values in given.items()}
    sections = {}
    for name, values in given.items():
        kinds = field_types(SECTIONS[name])
        sections[name] = SECTIONS[name](**{key: coerce(f"{name}.{key}", kinds[key], value)
                                           for key, value in values.items()})
    return Config(**sections).validate()


def parse_value(raw: str) -> Any:
    """JSON where it parses (numbers, true/false/null, lists), else the plain string."""
    try:
        return json.loads(raw)
    except ValueError:                                         # not JSON, or a number too long to read
        return raw
    except RecursionError:                                     # lists nested past Python's recursion limit
        raise ConfigError(f"the value '{raw[:20]}...' is nested more than {MAX_DEPTH} levels deep") from None


def coerce(where: str, kind: Any, value: Any) -> Any:
    """`value` as the type annotation `kind` says (see the module docstring); `where` ("train.lr") names the key
    in the error."""
    origin, args = get_origin(kind), get_args(kind)
    if origin is tuple:
        return _items(where, args[0], value)
    if origin in (Union, types.UnionType):                     # X | None
        return None if value is None else coerce(where, next(a for a in args if a is not type(None)), value)
    return _SCALARS[str if origin is Literal else kind](where, value)


def _items(where: str, kind: Any, value: Any) -> tuple:
    """A tuple of `kind` from a list, one value, or comma-separated text (each item read as JSON unless text)."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
        value = items if kind is str or get_origin(kind) is Literal else [parse_value(v) for v in items]
    if not isinstance(value, (list, tuple)):
        value = [value]
    try:
        return tuple(coerce(where, kind, v) for v in value)
    except ConfigError:
        name = _NAMES[str if get_origin(kind) is Literal else kind]
        raise ConfigError(f"{where} must be a list of {name}, got {value!r}") from None


def _boolean(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def _whole(where: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} must be a whole number, got {value!r}")
    return value


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    try:
        return float(value)
    except OverflowError:                                      # an integer beyond float's range
        raise ConfigError(f"{where} must be a finite number, got an integer of {len(str(value))} digits") from None


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value


_SCALARS: dict[type, Callable[[str, Any], Any]] = {bool: _boolean, int: _whole, float: _number, str: _text}
_NAMES = {bool: "true / false", int: "whole numbers", float: "numbers", str: "strings"}


def _check_keys(given: dict[str, Any], known: dict[str, Any], where: str) -> None:
    for key in given:
        if key not in known:
            hint = did_you_mean(key, known) or f"known keys: {', '.join(sorted(known))}"
            raise ConfigError(f"unknown key '{key}' in {where}", hint)
