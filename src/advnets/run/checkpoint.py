"""Checkpoints: one dict per file, written atomically, read with safe (weights-only) deserialisation, every entry
checked for its type. What a training checkpoint holds (RESUME_KEYS) is the trainer's `TrainingState.state_dict()`.

Every checkpoint carries `checksum`, a SHA-256 of its entries (each tensor's dtype, shape and bytes, each number and
string, in a fixed key order), checked when it is read: bytes changed on disk are a one-line CheckpointError, not
weights that load silently. It is computed at save and load only, never per step. A checkpoint written before the
checksum existed (no `checksum` entry) still loads.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..config import Config, from_dict
from ..errors import AdvnetsError, CheckpointError
from ..fileio import atomic_open

FORMAT = "advnets-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write `payload` (tensors, numbers, strings, lists, dicts) to `path` via a temporary file + rename."""
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **{k: v for k, v in payload.items() if k != CHECKSUM}}
    buffer = io.BytesIO()       # serialised in memory first: a full disk is then a plain OSError of f.write
    torch.save({**payload, CHECKSUM: checksum(payload)}, buffer)
    with atomic_open(path) as f:
        f.write(buffer.getbuffer())
    return path


CHECKSUM = "checksum"


def checksum(payload: dict[str, Any]) -> str:
    """"sha256:" and the hex SHA-256 of every entry of `payload` but `checksum` itself: a tensor as its dtype,
    shape and bytes (read in place, no copy on the CPU), a number or string as its repr, dicts in sorted key
    order, lists in order."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != CHECKSUM})
    return "sha256:" + digest.hexdigest()


def _feed(digest, value) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{t.dtype}{tuple(value.shape)}:".encode())
        if t.numel():
            digest.update(t.view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}:".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, str(k))):
            digest.update(f"{type(key).__name__}:{key!r}=".encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}:".encode())
        for item in value:
            _feed(digest, item)
    elif value is None or isinstance(value, (bool, int, float, str, bytes)):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    else:           # any other type weights-only loading admits (a torch.Size, a dtype): by its name and text
        digest.update(f"{type(value).__name__}:{value};".encode())


MODEL_KEYS = ("config", "image_shape", "generator", "discriminator", "epoch", "g_updates")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    required: tuple[str, ...] = MODEL_KEYS, verify: bool = True) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; anything else is a CheckpointError, never a crash.

    `required` names the entries the caller needs; a checkpoint without one of them is refused. `verify` False
    skips the checksum and maps the tensors instead of reading them (for a caller that needs only its config).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}", "train the run first, or check the path")
    try:
        payload = torch.load(path, map_location="cpu" if not verify else map_location, weights_only=True,
                             mmap=not verify)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile,
            AttributeError, KeyError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} is damaged or not a checkpoint ({first[:160]})",
                              "delete it and resume from another checkpoint, or retrain") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an advnets checkpoint",
                              "pass a checkpoint written by `advnets train`")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {payload.get('version')}, "
                              f"this advnets reads version {VERSION}", "use the advnets version that wrote it")
    if verify and CHECKSUM in payload:         # a checkpoint written before the checksum existed has none
        _verify(payload, path)
    missing = [key for key in required if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}",
                              "it was not written by `advnets train`; pass a training checkpoint")
    for key, (ok, expected) in FIELD_TYPES.items():
        if key in payload and not ok(payload[key]):
            raise CheckpointError(f"checkpoint {path} is damaged: its '{key}' is {_kind(payload[key])}, not {expected}",
                                  "use another checkpoint, or retrain")
    return payload


def _verify(payload: dict[str, Any], path: Path) -> None:
    stored = payload[CHECKSUM]
    try:
        computed = checksum(payload)
    except (RuntimeError, TypeError, ValueError):      # a crafted entry (a sparse tensor) that save never writes
        computed = None
    if not isinstance(stored, str) or computed != stored:
        raise CheckpointError(f"checkpoint {path} is damaged: its contents do not match the checksum it was written "
                              "with (bytes changed on disk)", "resume from another checkpoint (a copy of the run), "
                              "or retrain")


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _tensor(dtype=None):
    return lambda v: isinstance(v, torch.Tensor) and (dtype is None or v.dtype == dtype)


def _state_dict(v) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in v.items())


def _optimizer_state(v) -> bool:
    return isinstance(v, dict) and isinstance(v.get("state"), dict) and isinstance(v.get("param_groups"), list) \
        and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in v["param_groups"])


# The type of every entry a checkpoint may hold: (check, what it should be). A crafted checkpoint with a wrong
# type is a CheckpointError, never a crash deeper down.
FIELD_TYPES = {
    "config": (lambda v: isinstance(v, str), "a JSON string"),
    "image_shape": (lambda v: isinstance(v, (list, tuple)) and 1 <= len(v) <= 3
                    and all(_count(n) and n > 0 for n in v) and math.prod(v) <= 1 << 24,
                    "a list of 1 to 3 positive whole numbers (at most 2^24 values in all)"),
    "num_classes": (lambda v: _count(v) and v <= 1 << 16, "a whole number from 0 to 65536"),
    "generator": (_state_dict, "a dict of tensors"), "discriminator": (_state_dict, "a dict of tensors"),
    "opt_g": (_optimizer_state, "an optimizer state"), "opt_d": (_optimizer_state, "an optimizer state"),
    "rng": (_tensor(torch.uint8), "a uint8 tensor"), "fixed_noise": (_tensor(), "a tensor"),
    "perm": (lambda v: v is None or _tensor(torch.int64)(v), "null or an int64 tensor"),
    "sums": (_tensor(), "a tensor"),
    "position": (_count, "a whole number >= 0"), "epoch": (_count, "a whole number >= 0"),
    "g_updates": (_count, "a whole number >= 0"), "d_updates": (_count, "a whole number >= 0"),
}


def _kind(value) -> str:
    return f"a {type(value).__name__}" + (f" of {value.dtype}" if isinstance(value, torch.Tensor) else "")


def checkpoint_config(payload: dict[str, Any], path: str | Path) -> Config:
    """The Config stored in a checkpoint (a CheckpointError if it does not parse)."""
    try:
        return from_dict(json.loads(payload["config"]), stored=True)
    except (json.JSONDecodeError, AdvnetsError) as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else exc.message
        raise CheckpointError(f"checkpoint {path} holds an unreadable config ({message})",
                              "use another checkpoint, or retrain") from None


def load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, path: str | Path) -> None:
    """`module.load_state_dict(state)`, with a one-line error naming the first mismatch."""
    own = module.state_dict()
    for key in sorted(set(own) | set(state)):
        if key not in state or key not in own:
            missing = "missing from" if key not in state else "unexpected in"
            raise CheckpointError(f"checkpoint {path} holds another {what}: '{key}' is {missing} it",
                                  "it was written for a different architecture; use the matching run or config")
        if tuple(own[key].shape) != tuple(state[key].shape):
            raise CheckpointError(
                f"checkpoint {path} holds another {what}: '{key}' has shape {tuple(state[key].shape)}, "
                f"this config builds {tuple(own[key].shape)}",
                "it was written for a different architecture; use the matching run or config")
    module.load_state_dict(state)


# What a training checkpoint holds beyond MODEL_KEYS; a resumed run needs all of it.
RESUME_KEYS = ("config", "image_shape", "generator", "discriminator", "opt_g", "opt_d", "rng", "fixed_noise",
               "perm", "position", "epoch", "g_updates", "d_updates", "sums")
