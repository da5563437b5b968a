"""Checkpoints: one dict per file, written atomically, read with safe (weights-only) deserialisation."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError
from .fileio import atomic_open

FORMAT = "advnets-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write `payload` (tensors, numbers, strings, lists, dicts) to `path` via a temporary file + rename."""
    path = Path(path)
    with atomic_open(path) as f:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, f)
    return path


MODEL_KEYS = ("config", "image_shape", "generator", "discriminator", "epoch", "g_updates")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    required: tuple[str, ...] = MODEL_KEYS) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; anything else is a CheckpointError, never a crash.

    `required` names the entries the caller needs; a checkpoint without one of them is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}", "train the run first, or check the path")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
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
    missing = [key for key in required if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}",
                              "it was not written by `advnets train`; pass a training checkpoint")
    return payload


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
