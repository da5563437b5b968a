"""Atomic file writes: a file appears whole under its final name or not at all."""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

import numpy as np
from numpy.lib import format as npy

from .errors import OutputError

TEMPORARY_SUFFIX = ".tmp"      # atomic_open's temporaries: ".NAME.RANDOM.tmp" beside NAME


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", suffix: str = ".tmp") -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; on success it is synced and renamed to `path` with the
    usual permissions (0666 less the umask), on any error it is removed and `path` is left as it was.

    An OSError (a full disk, a file-size limit, no permission, ...) becomes an `OutputError` naming `path`; a
    BaseException (Ctrl-C, a signal turned into an exception) also removes the temporary file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        raise OutputError.from_os_error(exc, path) from None
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError.from_os_error(exc, path) from None
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_save_npy(path: str | Path, array) -> None:
    with atomic_open(path) as f:
        np.save(f, array)


@contextmanager
def atomic_npy(path: str | Path, shape: tuple[int, ...], dtype="float32") -> Iterator:
    """A writable memory map of a new .npy file of `shape`: fill it in parts (memory stays flat whatever its
    size); on success it is flushed and renamed to `path`, on any error removed."""
    header = {"descr": npy.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    with atomic_open(path) as f:
        npy.write_array_header_1_0(f, header)
        f.flush()
        if 0 in shape:
            yield np.empty(shape, dtype)
            return
        array = np.memmap(f, dtype=dtype, mode="w+", offset=f.tell(), shape=shape)
        try:
            yield array
            array.flush()
        finally:
            del array


def save_figure(fig, path: str | Path, dpi: int = 150) -> Path:
    """Write a matplotlib figure as PNG: to a temporary name first, then renamed into place."""
    path = Path(path)
    with atomic_open(path) as f:
        fig.savefig(f, format="png", dpi=dpi)
    return path


def write_json(path: str | Path, report) -> Path:
    """A report as indented JSON, written atomically. JSON has no NaN or infinity: a report holding one is a
    ValueError (reports write null where a number is missing: `finite_or_null`)."""
    atomic_write_text(path, json.dumps(report, indent=1, allow_nan=False) + "\n")
    return Path(path)


def finite_or_null(value):
    """`value` with every NaN or infinite float in it (in dicts, lists and tuples) replaced by None (JSON's null)."""
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
