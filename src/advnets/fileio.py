"""Atomic file writes: a file appears whole under its final name or not at all. Reads and appends that open only
regular files, never through a symbolic link and never blocking on a FIFO (a run directory is a sandbox)."""
from __future__ import annotations

import errno
import glob
import json
import math
import os
import re
import socket
import stat
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

import numpy as np
from numpy.lib import format as npy

from .errors import OutputError, RunError

TEMPORARY_SUFFIX = ".tmp"      # atomic_open's temporaries: ".NAME.PID-HOST.RANDOM.tmp" beside NAME
# ".NAME.PID-HOST.RANDOM.SUFFIX": the writer's process id, a hash of its host name, tempfile's 8 random characters
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)-(?P<host>[0-9a-f]{8})\.[a-z0-9_]{8}(?P<suffix>\..+)")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# not through a link at the final name; a FIFO opens at once (and is then refused) instead of waiting for a writer
_SAFE = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
_FIX = "advnets opens only regular files: remove it, or replace it with the file itself"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host_tag() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def writer_named(temporary: Path) -> bool:
    """Whether `temporary` has the name atomic_open gives, which names its writer."""
    return _TEMPORARY.fullmatch(temporary.name) is not None


def writer_is_gone(temporary: Path) -> bool:
    """Whether `temporary`, named by atomic_open, was left by a process of this host that no longer exists (killed
    while it wrote). False for any other name, another host's file, a live process, or a system where that cannot
    be told: such a file is never removed."""
    match = _TEMPORARY.fullmatch(temporary.name)
    if match is None or match["host"] != _host_tag() or os.name != "posix" or int(match["pid"]) == os.getpid():
        return False
    try:
        os.kill(int(match["pid"]), 0)   # signal 0 sends nothing: it asks whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):   # alive under another user (or not a process id)
        pass
    return False


def remove_dead_writers_temporaries(path: Path, suffix: str = TEMPORARY_SUFFIX) -> list[Path]:
    """Delete the temporaries of earlier writes of `path` whose writer was killed (see `writer_is_gone`)."""
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*{glob.escape(suffix)}"):
        match = _TEMPORARY.fullmatch(tmp.name)
        if match and match["name"] == path.name and match["suffix"] == suffix and writer_is_gone(tmp):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def _writer_temporary(path: Path, suffix: str) -> tuple[int, str]:
    """A new temporary file ".NAME.PID-HOST.RANDOM<suffix>" beside `path` (its folder made if needed), after
    removing those of earlier writers of `path` that were killed; (fd, its path). An OSError is an OutputError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_writers_temporaries(path, suffix)
        return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-{_host_tag()}.", suffix=suffix)
    except OSError as exc:
        raise OutputError.from_os_error(exc, path) from None


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", suffix: str = TEMPORARY_SUFFIX) -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; on success it is synced and renamed to `path` with the
    usual permissions (0666 less the umask), on any error it is removed and `path` is left as it was.

    The temporary's name, ".NAME.PID-HOST.RANDOM.tmp", says which process writes it: a process killed with
    SIGKILL cannot remove its temporary, so the next write of the same NAME removes those whose writer is gone.

    An OSError (a full disk, a file-size limit, no permission, ...) becomes an `OutputError` naming `path`; a
    BaseException (Ctrl-C, a signal turned into an exception) also removes the temporary file."""
    path = Path(path)
    fd, tmp = _writer_temporary(path, suffix)
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


def file_kind(path: str | Path) -> str | None:
    """What is at `path` when it is not a regular file ("a symbolic link", "a FIFO", ...; the link itself, not
    what it points to); None for a regular file or nothing."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else _kind(mode)


def _kind(mode: int) -> str:
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | Path, mode: str = "rb") -> IO:
    """`path` opened for reading when it is a regular file. A symbolic link at `path`, a FIFO, a device or a socket
    is a RunError naming the file (a FIFO is refused at once, it does not wait for a writer); a missing file is
    FileNotFoundError as for open()."""
    try:
        fd = os.open(path, os.O_RDONLY | _SAFE)
    except OSError as exc:
        kind = file_kind(path) if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENXIO, errno.EISDIR) else None
        if kind:
            raise RunError(f"{path}: it is {kind}, not a regular file", _FIX) from None
        raise
    return _regular(fd, path, mode, RunError)


def open_append(path: str | Path) -> IO[str]:
    """`path` opened for appending text, created if missing, only when it is (or becomes) a regular file: never
    through a symbolic link at `path` (a dangling one creates nothing), never a FIFO. An OutputError otherwise."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _SAFE, 0o666)
    except OSError as exc:
        kind = file_kind(path)
        if kind:
            raise OutputError(f"cannot write {path}: it is {kind}, not a regular file", _FIX) from None
        raise OutputError.from_os_error(exc, path) from None
    return _regular(fd, path, "a", OutputError)


def _regular(fd: int, path, mode: str, error: type) -> IO:
    """The descriptor `fd` of `path` as a blocking file object when it is a regular file; closed and `error` if not."""
    mode_bits = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode_bits):
        os.close(fd)
        what = f"it is {_kind(mode_bits)}, not a regular file"
        raise error(f"cannot write {path}: {what}" if error is OutputError else f"{path}: {what}", _FIX)
    os.set_blocking(fd, True)
    return os.fdopen(fd, mode)


def read_regular(path: str | Path) -> bytes:
    """The bytes of `path` (see `open_regular`)."""
    with open_regular(path) as f:
        return f.read()


def load_npy(path: str | Path, mmap: bool = False) -> np.ndarray:
    """A .npy file (see `open_regular`), without pickles; `mmap`: as a read-only memory map of the open file."""
    with open_regular(path) as f:
        if not mmap:
            return np.load(f, allow_pickle=False)
        version = npy.read_magic(f)
        read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran_order, dtype = read_header(f)
        if fortran_order or dtype.hasobject:
            raise ValueError(f"{path} holds a Fortran-ordered or object array")
        if 0 in shape:
            return np.empty(shape, dtype)
        return np.memmap(f, dtype=dtype, mode="r", shape=shape, offset=f.tell())


def check_no_links(root: str | Path, path: str | Path) -> None:
    """Refuse (OutputError) to write `path` when a folder between `root` and it (`root` itself not included) is a
    symbolic link or not a directory: a write there would land outside `root`. The final name may be a link:
    atomic_open's rename replaces the link, it does not write through it."""
    root, path = Path(root), Path(path)
    for folder in reversed(path.parents):
        if folder == root or root not in folder.parents:
            continue
        kind = file_kind(folder)
        if kind == "a directory":
            continue
        if kind is not None:
            raise OutputError(f"cannot write {path}: {folder} is {kind}, not a directory of {root}",
                              f"advnets writes inside {root} only: remove {folder}, or replace it with a folder")


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_save_npy(path: str | Path, array) -> None:
    with atomic_open(path) as f:
        np.save(f, array)


@contextmanager
def atomic_npy(path: str | Path, shape: tuple[int, ...], dtype="float32") -> Iterator:
    """A writable memory map of a new .npy file of `shape`: fill it in parts (memory stays flat whatever its
    size); on success it is flushed and renamed to `path`, on any error removed.

    The file's blocks are allocated before it is mapped: a store into a mapped page the disk has no room for is a
    SIGBUS that kills the process without a word, where a full disk at allocation is an OutputError naming `path`."""
    header = {"descr": npy.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    with atomic_open(path) as f:
        npy.write_array_header_1_0(f, header)
        f.flush()
        if 0 in shape:
            yield np.empty(shape, dtype)
            return
        _allocate(f.fileno(), f.tell() + math.prod(shape) * np.dtype(dtype).itemsize)
        array = np.memmap(f, dtype=dtype, mode="w+", offset=f.tell(), shape=shape)
        try:
            yield array
            array.flush()
        finally:
            del array


SCRATCH_SUFFIX = ".scratch"    # scratch_npy's temporaries: ".NAME.PID-HOST.RANDOM.scratch" beside NAME


@contextmanager
def scratch_npy(path: str | Path, shape: tuple[int, ...], dtype="float32") -> Iterator:
    """A writable memory map of `shape` in a temporary file beside `path`, for work too large for memory; the file
    is removed when the block ends, however it ends, and nothing is ever written at `path` itself.

    As in `atomic_npy`, the blocks are allocated before the map is used (a full disk is an OutputError naming
    `path`, not a SIGBUS), and as in `atomic_open` the name says which process writes it, so the next scratch of
    the same `path` removes one whose writer was killed."""
    path = Path(path)
    fd, tmp = _writer_temporary(path, SCRATCH_SUFFIX)
    try:
        with os.fdopen(fd, "w+b") as f:
            size = math.prod(shape) * np.dtype(dtype).itemsize
            if size == 0:
                yield np.empty(shape, dtype)
                return
            _allocate(f.fileno(), size)
            array = np.memmap(f, dtype=dtype, mode="w+", shape=shape)
            try:
                yield array
            finally:
                del array
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError.from_os_error(exc, path) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _allocate(fd: int, size: int) -> None:
    """Reserve `size` bytes of disk for the file `fd` (an OSError, ENOSPC or EFBIG, when there is no room). Where
    the system or the file system cannot (no posix_fallocate: macOS, Windows; EOPNOTSUPP, EINVAL), the file is
    only extended, as np.memmap would do."""
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
    os.ftruncate(fd, size)


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
