"""Reader for the IDX format of MNIST and Fashion-MNIST (docs/design.md §3).

An IDX file is a 4-byte magic number ``00 00 <dtype code> <ndim>``, then ``ndim``
big-endian uint32 dimensions, then the payload in C order. The files are usually
gzipped; we detect gzip by its own magic bytes, so a ``.gz`` name that a browser
already decompressed still reads.
"""
from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from advnets.errors import DataError

# dtype code -> numpy dtype (multi-byte types are big-endian on disk).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_DIMS = 16  # real files have 1 (labels) or 3 (images); anything huge is garbage


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, gzipped or not, into an array of the shape its header gives.

    The result is read-only (it may view the decompressed bytes and is shared by
    callers that cache it); take ``.copy()`` to modify it. Every problem with the
    file (missing, unreadable, corrupt gzip, bad header, wrong payload size) raises
    `DataError`.
    """
    path = Path(path)
    hint = f"delete {path} and download it again, or pass --data-dir DIR holding a good copy"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file {path} does not exist", hint) from None
    except OSError as e:
        raise DataError(f"cannot read IDX file {path}: {e.strerror or e}", hint) from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except EOFError:  # stream stops before its end marker
            raise DataError(f"{path} is a truncated gzip file", hint) from None
        except (OSError, zlib.error) as e:  # BadGzipFile (CRC, header) is an OSError
            raise DataError(f"{path} is a corrupt gzip file ({e})", hint) from None
    return parse_idx(raw, source=str(path), hint=hint)


def parse_idx(raw: bytes, source: str = "<bytes>", hint: str | None = None) -> np.ndarray:
    """Parse the (already decompressed) bytes of an IDX file; see `read_idx`."""
    hint = hint or "the data is not an IDX file; get a fresh copy"
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{source} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'})", hint)
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise DataError(f"{source} has unknown IDX dtype code 0x{code:02x}", hint)
    if not 1 <= ndim <= _MAX_DIMS:
        raise DataError(f"{source} has an invalid IDX dimension count {ndim}", hint)
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise DataError(f"{source} is truncated inside its IDX header", hint)
    dims = struct.unpack(f">{ndim}I", raw[4:offset])
    dtype = IDX_DTYPES[code]
    count = math.prod(dims)
    expected, got = count * dtype.itemsize, len(raw) - offset
    if got != expected:
        what = "truncated" if got < expected else "longer than its header says"
        raise DataError(
            f"{source} is {what}: shape {dims} needs {expected} payload bytes, found {got}", hint
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(dims)
    if dtype.byteorder == ">":  # convert to native byte order once, here
        arr = arr.astype(dtype.newbyteorder("="))
    arr.flags.writeable = False
    return arr
