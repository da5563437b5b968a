"""A run directory as a format: its layout, its config.json, its metrics.jsonl, and the checks that make resuming
safe. Training writes it; evaluation, reports and export read it through this module without the training package.

    RUN/.lock                  held by the process that writes the run (lock.py)
    RUN/config.json            the full Config (written before training starts)
    RUN/metrics.jsonl          one JSON object per line: {"kind": "epoch" | "step", "step", "epoch", ...}
    RUN/samples/epoch_XXXX.png  the fixed-noise sample grid after an epoch (step_XXXXXXXX.png: within one)
    RUN/events.out.tfevents.*  TensorBoard scalars and grids (train.tensorboard)
    RUN/checkpoints/last.pt    everything a resumed run needs (checkpoint.py)
    RUN/eval/*.json            what `advnets eval` and the extensions measured (report.py shows them)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import Config, from_dict
from ..errors import AdvnetsError, ConfigError, OutputError, RunError
from ..fileio import TEMPORARY_SUFFIX, atomic_write_text, writer_is_gone, writer_named
from .checkpoint import checkpoint_config, load_checkpoint

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoints/last.pt"
SAMPLES = "samples"
EVAL = "eval"

# Settings that may change when a run is resumed: they do not change what the run computes.
RESUMABLE_CHANGES = {"train.epochs", "train.max_steps", "train.device", "train.sample_every_epochs",
                     "train.checkpoint_every_epochs", "train.sample_every_steps", "train.checkpoint_every_steps",
                     "train.log_every_steps", "train.tensorboard", "data.data_dir", "data.download",
                     "data.storage", "data.workers"}


def read_config_data(run_dir: str | Path):
    """The parsed JSON of a run directory's config.json, not yet checked against the schema."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory (no {CONFIG})",
                       "pass the directory given to `advnets train --out`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})",
                          "restore the file or start a new run") from None


def read_config(run_dir: str | Path) -> Config:
    """The config.json of a run directory, as a checked Config."""
    path = Path(run_dir) / CONFIG
    data = read_config_data(run_dir)
    try:
        return from_dict(data)
    except AdvnetsError as exc:
        raise ConfigError(f"{path}: {exc.message}", exc.hint) from None


def resolve_config(run_dir: Path, config: Config | None, resume: bool) -> Config:
    """The run's config: the given one for a new run; for a resumed run the stored one, with only the settings in
    RESUMABLE_CHANGES taken from `config`. Writes nothing.

    A directory whose run stopped before its first checkpoint (killed, diverged, a full disk) is never a dead end:
    `resume` starts it again from step 0 with its stored config, and a new run with the same settings (those in
    RESUMABLE_CHANGES may differ) replaces it. A run with a checkpoint is only ever continued."""
    has_checkpoint = (run_dir / CHECKPOINT).exists()
    if not resume:
        if config is None:
            raise ConfigError("no config given for a new run")
        if has_checkpoint:
            raise RunError(f"{run_dir} already holds a run",
                           "pass --resume to continue it, or choose another output directory")
        if (run_dir / CONFIG).exists():
            try:
                stored = read_config(run_dir)
            except AdvnetsError:        # an unreadable config.json and no checkpoint: nothing to keep
                return config
            changed = _changes(stored, config)
            if changed:
                raise RunError(f"{run_dir} holds a run that stopped before its first checkpoint, with other "
                               f"settings ({changed})", f"repeat its command, continue it with --resume {run_dir}, "
                               "choose another output directory, or delete it")
        return config
    if not (run_dir / CONFIG).exists() and has_checkpoint:      # config.json lost: the checkpoint has it
        stored = checkpoint_config(load_checkpoint(run_dir / CHECKPOINT, required=("config",)), run_dir / CHECKPOINT)
    else:
        stored = read_config(run_dir)
    if config is None:
        return stored
    changed = _changes(stored, config)
    if changed:
        raise ConfigError(f"cannot resume {run_dir} with different settings ({changed})",
                          "resume without them, or start a new run with another output directory")
    old, new = _flatten(stored.to_dict()), _flatten(config.to_dict())
    return from_dict({s: {k: (new if f"{s}.{k}" in RESUMABLE_CHANGES else old)[f"{s}.{k}"] for k in v}
                      for s, v in stored.to_dict().items()})


def _changes(stored: Config, config: Config) -> str:
    """The settings outside RESUMABLE_CHANGES in which `config` differs from `stored` ("" when none)."""
    old, new = _flatten(stored.to_dict()), _flatten(config.to_dict())
    changed = sorted(k for k in old if old[k] != new[k] and k not in RESUMABLE_CHANGES)
    return ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in changed[:4])


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete the temporary files of writes that a killed process left behind beside config.json, metrics.jsonl,
    samples/ and checkpoints/: those atomic_open names ".NAME.PID-HOST.RANDOM.tmp" whose writer is gone (never a
    live process's, e.g. an `advnets sample --out RUN/samples/x.png` running beside the trainer), and those of the
    older form ".NAME.RANDOM.tmp", which no running version writes. Returns what was removed."""
    removed = []
    for folder in (run_dir, run_dir / SAMPLES, (run_dir / CHECKPOINT).parent):
        for path in folder.glob(".*" + TEMPORARY_SUFFIX) if folder.is_dir() else ():
            if path.is_file() and (writer_is_gone(path) if writer_named(path) else path.name.count(".") >= 3):
                try:
                    path.unlink()
                    removed.append(path)
                except FileNotFoundError:
                    pass
    return removed


def write_config(run_dir: Path, config: Config) -> None:
    atomic_write_text(run_dir / CONFIG, config.to_json() + "\n")


def sample_path(run_dir: Path, epoch: int | None, step: int) -> Path:
    """samples/epoch_XXXX.png for the grid at the end of an epoch, else samples/step_XXXXXXXX.png."""
    return run_dir / SAMPLES / (f"epoch_{epoch:04d}.png" if epoch is not None else f"step_{step:08d}.png")


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one line (a crash mid-append leaves a partial line, which readers skip and a resume removes)."""
    try:
        with open(run_dir / METRICS, "a") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as exc:
        raise OutputError.from_os_error(exc, run_dir / METRICS) from None


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of metrics.jsonl; a line cut short by a crash mid-append (or otherwise unreadable) is skipped."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Keep the metric records up to `step` (the checkpoint a run resumes from), dropping later and broken lines."""
    path = run_dir / METRICS
    if not path.exists():
        return
    lines = path.read_text(errors="replace").splitlines()
    keep = [json.dumps(r) for r in read_metrics(run_dir) if r.get("step", 0) <= step]
    if keep != lines:
        atomic_write_text(path, "".join(line + "\n" for line in keep))


def _flatten(nested: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{s}.{k}": v for s, values in nested.items() for k, v in values.items()}
