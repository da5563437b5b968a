"""Checkpoints: one dict per file, written atomically, read with safe (weights-only) deserialisation; and the
training state a resumed run needs (networks, optimisers, random stream, fixed noise, position in the data)."""
from __future__ import annotations

import io
import json
import math
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..config import Config, from_dict
from ..errors import AdvnetsError, CheckpointError, DivergedError, RunError
from ..fileio import atomic_open

FORMAT = "advnets-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write `payload` (tensors, numbers, strings, lists, dicts) to `path` via a temporary file + rename."""
    path = Path(path)
    buffer = io.BytesIO()       # serialised in memory first: a full disk is then a plain OSError of f.write
    torch.save({"format": FORMAT, "version": VERSION, **payload}, buffer)
    with atomic_open(path) as f:
        f.write(buffer.getbuffer())
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
    for key, (ok, expected) in FIELD_TYPES.items():
        if key in payload and not ok(payload[key]):
            raise CheckpointError(f"checkpoint {path} is damaged: its '{key}' is {_kind(payload[key])}, not {expected}",
                                  "use another checkpoint, or retrain")
    return payload


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
        return from_dict(json.loads(payload["config"]))
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


def _finite(trainer) -> bool:
    nets = (trainer.generator, trainer.discriminator) + (() if trainer.average is None else (trainer.average.module,))
    return bool(torch.isfinite(trainer.sums).all()) and all(bool(torch.isfinite(p).all())
                                                            for net in nets for p in net.parameters())


def check_finite_state(trainer) -> None:
    """Refuse to log or checkpoint a diverged state (a loss or a weight NaN or infinite): the last checkpoint, if
    any, stays the last finite state."""
    if _finite(trainer):
        return
    t = trainer.config.train
    path = None if trainer.run_dir is None else trainer.run_dir / "checkpoints" / "last.pt"
    kept = (f"{path} still holds the last finite state" if path is not None and path.exists()
            else "no checkpoint was written before it")
    raise DivergedError(
        f"training diverged in epoch {trainer.epoch + 1} (a loss or a weight became NaN or infinite by step "
        f"{trainer.g_updates}); {kept}",
        f"start a new run (another --out) with a lower learning rate, e.g. --set train.lr={t.lr / 4:g}")


def save_training_state(trainer, path: Path, rank_rng: list[torch.Tensor] | None = None) -> Path:
    """Checkpoint everything `restore_training_state` needs, after checking that it is finite. `rank_rng`: the
    random state of every rank of a distributed run, in rank order (all equal: the ranks share one stream)."""
    check_finite_state(trainer)
    a, rank_rng = trainer.algorithm, rank_rng or [trainer.rng.get_state()]
    if any(not torch.equal(s, rank_rng[0]) for s in rank_rng):
        raise RuntimeError("the ranks' random streams drifted apart")     # a bug, never the user's doing
    return save_checkpoint(path, {
        "config": trainer.config.to_json(), "image_shape": list(trainer.data.image_shape),
        "num_classes": trainer.data.num_classes,
        "generator": a.generator.state_dict(), "discriminator": a.discriminator.state_dict(),
        "opt_g": a.opt_g.state_dict(), "opt_d": a.opt_d.state_dict(),
        "rng": trainer.rng.get_state(), "rng_device": trainer.device.type, "rank_rng": rank_rng,
        "world_size": len(rank_rng), "fixed_noise": trainer.fixed_noise,
        "perm": trainer.perm, "position": trainer.position, "epoch": trainer.epoch,
        "g_updates": a.g_updates, "d_updates": a.d_updates, "sums": trainer.sums,
        **({} if trainer.average is None else {"generator_average": trainer.average.state_dict()})})


def restore_training_state(trainer, path: Path) -> None:
    """Put a trainer back where the checkpoint at `path` left it; the model must be the one the config builds."""
    payload = load_checkpoint(path, trainer.device, RESUME_KEYS)
    saved = checkpoint_config(payload, path)
    if saved.model != trainer.config.model or list(payload["image_shape"]) != list(trainer.data.image_shape) or \
            payload.get("num_classes", 0) != trainer.data.num_classes:
        raise RunError(f"checkpoint {path} was written for another model than {path.parent.parent / 'config.json'} "
                       "describes", "restore the run's original config.json, or start a new run")
    a = trainer.algorithm
    load_state(a.generator, payload["generator"], "generator", path)
    load_state(a.discriminator, payload["discriminator"], "discriminator", path)
    n, per_epoch, perm = len(trainer.data), trainer.iterations_per_epoch(), payload["perm"]
    checks = {"fixed_noise": tuple(payload["fixed_noise"].shape) == tuple(trainer.fixed_noise.shape),
              "perm": perm is None or (tuple(perm.shape) == (n,) and 0 <= int(perm.min()) <= int(perm.max()) < n),
              "position": payload["position"] <= per_epoch, "sums": payload["sums"].numel() == trainer.sums.numel()}
    try:
        bad = next((key for key, ok in checks.items() if not ok), None)
        if bad is None:
            a.opt_g.load_state_dict(payload["opt_g"])
            a.opt_d.load_state_dict(payload["opt_d"])
            _restore_rng(trainer, payload, path)
            _restore_average(trainer, payload)
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
        bad = f"optimizer or random state ({str(exc).strip()[:80]})"
    if bad is not None:
        raise CheckpointError(f"checkpoint {path} does not fit this run: its {bad} is wrong",
                              "use the run's own checkpoint, or retrain")
    trainer.fixed_noise = payload["fixed_noise"].to(trainer.device, trainer.fixed_noise.dtype)
    trainer.perm = None if payload["perm"] is None else payload["perm"].to(trainer.device)
    trainer.position, trainer.epoch = payload["position"], payload["epoch"]
    a.g_updates, a.d_updates = payload["g_updates"], payload["d_updates"]
    trainer.sums = payload["sums"].to(trainer.device, trainer.sums.dtype).reshape(trainer.sums.shape)


def _restore_average(trainer, payload: dict[str, Any]) -> None:
    """The moving average of G (train.generator_ema); one turned on at resume starts from the restored G."""
    if trainer.average is None:
        return
    if "generator_average" in payload:
        trainer.average.load_state_dict(payload["generator_average"])
    else:
        trainer.average = type(trainer.average)(trainer.algorithm.generator, trainer.average.decay)


def _restore_rng(trainer, payload: dict[str, Any], path: Path) -> None:
    if payload.get("rng_device", "cpu") == trainer.device.type:
        trainer.rng.set_state(payload["rng"].cpu())
    else:   # a CPU generator's state means nothing to a CUDA one: a new stream, derived from the seed and the step
        warnings.warn(f"checkpoint {path} was written on {payload['rng_device']}, this run computes on "
                      f"{trainer.device.type}: the random stream restarts from seed and step (the weights continue)")
        trainer.rng.manual_seed(trainer.config.train.seed * 1_000_003 + payload["g_updates"])
