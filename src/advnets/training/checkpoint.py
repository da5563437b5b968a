"""The training state a resumed run needs (networks, optimisers, random stream, fixed noise, position in the
data), written to and read from a checkpoint dict (advnets.run.checkpoint)."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, DivergedError, RunError
from ..run.checkpoint import RESUME_KEYS, checkpoint_config, load_checkpoint, load_state, save_checkpoint


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
