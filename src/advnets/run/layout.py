"""A run directory as a format: its layout, its config.json, its metrics.jsonl, and the checks that make resuming
safe. Training writes it; evaluation, reports and export read it through this module without the training package.

    RUN/.lock                  held by the process that writes the run (lock.py)
    RUN/config.json            the full Config (written before training starts)
    RUN/metrics.jsonl          one JSON object per line: {"kind": "epoch" | "step", "step", "epoch", ...}
    RUN/samples/epoch_XXXX.png  the fixed-noise sample grid after an epoch (step_XXXXXXXX.png: within one)
    RUN/events.out.tfevents.*  TensorBoard scalars and grids (train.tensorboard)
    RUN/checkpoints/last.pt    everything a resumed run needs (checkpoint.py)
    RUN/eval/*.json            what `advnets eval` and the extensions measured (report.py shows them)

A run directory is a sandbox: its files are read and appended to only when they are regular files (never through a
symbolic link, never a FIFO: fileio.open_regular), nothing is written through a linked folder inside it, and no
output of a command replaces the files a resume needs (`check_output`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..config import Config, from_dict
from ..errors import AdvnetsError, ConfigError, OutputError, RunError
from ..fileio import (TEMPORARY_SUFFIX, atomic_write_text, check_no_links, file_kind, open_append, open_regular,
                      writer_is_gone, writer_named)
from .checkpoint import checkpoint_config, load_checkpoint
from .lock import LOCK

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoints/last.pt"
SAMPLES = "samples"
EVAL = "eval"
TENSORBOARD = "events.out.tfevents."

# Settings that may change when a run is resumed: they do not change what the run computes.
RESUMABLE_CHANGES = {"train.epochs", "train.max_steps", "train.device", "train.sample_every_epochs",
                     "train.checkpoint_every_epochs", "train.sample_every_steps", "train.checkpoint_every_steps",
                     "train.log_every_steps", "train.tensorboard", "train.coverage_every_epochs",
                     "train.coverage_samples", "data.data_dir", "data.download", "data.storage", "data.workers"}


def read_config_data(run_dir: str | Path):
    """The parsed JSON of a run directory's config.json, not yet checked against the schema."""
    path = Path(run_dir) / CONFIG
    if not os.path.lexists(path):
        raise RunError(f"{run_dir} is not a run directory (no {CONFIG})",
                       "pass the directory given to `advnets train --out`")
    try:
        with open_regular(path) as f:
            return json.loads(f.read())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})",
                          "restore the file or start a new run") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})",
                          "restore the file or start a new run") from None
    except RecursionError:
        raise ConfigError(f"{path} is nested too deeply to be a config", "restore the file or start a new run") from None


def read_config(run_dir: str | Path) -> Config:
    """The config.json of a run directory, as a checked Config."""
    path = Path(run_dir) / CONFIG
    data = read_config_data(run_dir)
    try:
        return from_dict(data, stored=True)
    except AdvnetsError as exc:
        raise ConfigError(f"{path}: {exc.message}", exc.hint) from None


def stored_config(run_dir: str | Path, notes: list[str] | None = None) -> Config:
    """The config a resumed run continues with, before any change asked for at resume (the CLI applies --set to
    it). With a checkpoint: the checkpoint's copy, with config.json's values of the settings in RESUMABLE_CHANGES
    (the last resume may have changed them); a config.json that is missing or damaged is recovered from the
    checkpoint, and a line appended to `notes` says so (the trainer then rewrites the file). Without a
    checkpoint: config.json."""
    return _stored(Path(run_dir), notes)[0]


def _stored(run_dir: Path, notes: list[str] | None) -> tuple[Config, dict[str, Any]]:
    """`stored_config`, and the settings outside RESUMABLE_CHANGES in which config.json differs from the
    checkpoint's copy (a hand edit), each with config.json's value."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        return read_config(run_dir), {}
    saved = checkpoint_config(load_checkpoint(path, required=("config",), verify=False), path)
    try:
        edited = read_config(run_dir)
    except AdvnetsError as exc:
        if notes is not None:
            what = f"{run_dir / CONFIG} is missing" if isinstance(exc, RunError) else exc.message
            notes.append(f"{what}: recovered from {path}, which holds the run's config; config.json is written again")
        return saved, {}
    old, new = _flatten(saved.to_dict()), _flatten(edited.to_dict())
    edits = {k: new[k] for k in old if old[k] != new[k] and k not in RESUMABLE_CHANGES}
    return _merged(saved, edited), edits


def resolve_config(run_dir: Path, config: Config | None, resume: bool, notes: list[str] | None = None) -> Config:
    """The run's config: the given one for a new run; for a resumed run the stored one (`stored_config`), with
    only the settings in RESUMABLE_CHANGES taken from `config`. Writes nothing; `notes` gets a line when
    config.json was recovered from the checkpoint.

    A resumed run keeps its settings: a change to another one is refused, whether given in `config` or made by
    hand in config.json (the checkpoint's copy is the reference); a hand edit that `config` repeats counts as
    given there.

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
            changed = changed_settings(stored, config)
            if changed:
                raise RunError(f"{run_dir} holds a run that stopped before its first checkpoint, with other "
                               f"settings ({changed})", f"repeat its command, continue it with --resume {run_dir}, "
                               "choose another output directory, or delete it")
        return config
    stored, edits = _stored(run_dir, notes)
    given = {} if config is None else _flatten(config.to_dict())
    hand = sorted(k for k, v in edits.items() if k not in given or given[k] != v)
    if hand:
        old = _flatten(stored.to_dict())
        raise ConfigError(f"{run_dir / CONFIG} differs from the checkpoint's config in "
                          + ", ".join(f"{k}: {old[k]!r} -> {edits[k]!r}" for k in hand[:4])
                          + ", which a resumed run cannot change",
                          f"restore config.json (or delete it: {CHECKPOINT} holds the config), or start a new run "
                          "with the new settings in another output directory")
    if config is None:
        return stored
    changed = changed_settings(stored, config)
    if changed:
        raise ConfigError(f"cannot resume {run_dir} with different settings ({changed})",
                          "resume without them, or start a new run with another output directory")
    return _merged(stored, config)


def _merged(stored: Config, config: Config) -> Config:
    """`stored` with the settings in RESUMABLE_CHANGES taken from `config`."""
    old, new = _flatten(stored.to_dict()), _flatten(config.to_dict())
    return from_dict({s: {k: (new if f"{s}.{k}" in RESUMABLE_CHANGES else old)[f"{s}.{k}"] for k in v}
                      for s, v in stored.to_dict().items()})


def changed_settings(stored: Config, config: Config) -> str:
    """The settings outside RESUMABLE_CHANGES in which `config` differs from `stored`, up to four of them as
    "key: old -> new" joined by commas ("" when none): what makes a run a different run, the rule that decides
    whether a run directory can be resumed with `config` (and whether a kept run holds a benchmark's settings)."""
    old, new = _flatten(stored.to_dict()), _flatten(config.to_dict())
    changed = sorted(k for k in old if old[k] != new[k] and k not in RESUMABLE_CHANGES)
    return ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in changed[:4])


def is_run_dir(folder: Path) -> bool:
    """Whether `folder` holds a run: two of config.json, checkpoints/last.pt, metrics.jsonl and .lock (any one of
    them may be lost or not written yet)."""
    return sum(os.path.lexists(folder / name) for name in (CONFIG, CHECKPOINT, METRICS, LOCK)) >= 2


def check_run_files(run_dir: Path) -> None:
    """Refuse (RunError) a run directory whose own files or folders are symbolic links, FIFOs, devices or sockets:
    training reads and writes them, and must neither block nor reach outside the directory."""
    for name, wanted in ((CONFIG, None), (METRICS, None), (LOCK, None), (CHECKPOINT, None),
                         (SAMPLES, "a directory"), (EVAL, "a directory"), (Path(CHECKPOINT).parent, "a directory")):
        kind = file_kind(run_dir / name)
        if kind is not None and kind != wanted:
            what = "regular file" if wanted is None else "folder"
            raise RunError(f"{run_dir / name} is {kind}, not a {what}",
                           f"advnets keeps a run's files inside it: remove it, or replace it with the {what} itself")


def check_output(path: str | Path) -> Path:
    """Refuse (RunError) an output path that would replace a run's own files, whatever directory it is given
    from: config.json, metrics.jsonl, .lock, anything under checkpoints/, an existing sample grid or TensorBoard
    file of the trainer; or a path inside a run directory that goes through a symbolic link (a linked folder
    would take the write outside the run). Every command's output passes here before it is written. Returns
    `path`."""
    path = Path(path)
    lexical = path.absolute()               # ".." kept: RUN/link/.. is the parent of its target, not RUN
    for run_dir in filter(is_run_dir, lexical.parents):
        try:
            check_no_links(run_dir, lexical)
        except OutputError as exc:
            raise RunError(exc.message, exc.hint) from None
    real = lexical.parent.resolve() / lexical.name       # a link at the final name is replaced, not followed
    run_dir = next((p for p in real.parents if is_run_dir(p)), None)
    if run_dir is None:
        return path
    inside = real.relative_to(run_dir)
    first = inside.parts[0]
    own = first in (CONFIG, METRICS, LOCK, Path(CHECKPOINT).parts[0]) or os.path.lexists(real) and (
        first.startswith(TENSORBOARD) or first == SAMPLES and real.name.startswith(("epoch_", "step_")))
    if own:
        raise RunError(f"{path} would replace {inside.as_posix()}, a file of the run {run_dir}",
                       "choose an output path outside the run's checkpoints/, config.json, metrics.jsonl, .lock and "
                       "sample grids")
    return path


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
        with open_append(run_dir / METRICS) as f:
            f.write(json.dumps(record) + "\n")
    except OSError as exc:
        raise OutputError.from_os_error(exc, run_dir / METRICS) from None


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of metrics.jsonl; a line cut short by a crash mid-append (or otherwise unreadable, or whose step
    is not a whole number) is skipped."""
    records = []
    for line in _metrics_lines(Path(run_dir)):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):                  # RecursionError: nested too deeply
            continue
        step = record.get("step", 0) if isinstance(record, dict) else None
        if isinstance(step, int) and not isinstance(step, bool):       # "step": "abc" or null: a broken line
            records.append(record)
    return records


def truncate_metrics(run_dir: Path, step: int) -> None:
    """Keep the metric records up to `step` (the checkpoint a run resumes from), dropping later and broken lines."""
    path = run_dir / METRICS
    if not os.path.lexists(path):
        return
    lines = _metrics_lines(run_dir)
    keep = [json.dumps(r) for r in read_metrics(run_dir) if r.get("step", 0) <= step]
    if keep != lines:
        atomic_write_text(path, "".join(line + "\n" for line in keep))


def _metrics_lines(run_dir: Path) -> list[str]:
    """The lines of metrics.jsonl (none when it is missing), read only from a regular file (a RunError else)."""
    try:
        with open_regular(run_dir / METRICS) as f:
            return f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return []


def _flatten(nested: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{s}.{k}": v for s, values in nested.items() for k, v in values.items()}
