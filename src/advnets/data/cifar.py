"""CIFAR-10 from the standard python archive, read without running code from it (docs/design.md §1 and §3).

`cifar-10-python.tar.gz` (https://www.cs.toronto.edu/~kriz/cifar.html) holds `cifar-10-batches-py/` with
`data_batch_1` ... `data_batch_5` (10,000 training images each), `test_batch` (10,000) and `batches.meta`. Each
batch is a Python 2 pickle of a dict: b"data" a uint8 array (N, 3072) -- per image the 1,024 red, then green,
then blue values, each 32x32 in row-major order -- and b"labels" a list of N ints 0..9.

Splits as in the original cifar10_*.yaml: train = training images 0-40,000 (data_batch_1..4), valid =
40,000-50,000 (data_batch_5), test = test_batch.

The batches are unpickled by `_BatchUnpickler`, which resolves only the globals numpy needs to rebuild an
array (`_reconstruct`, `ndarray`, `dtype`) and a latin-1 `_codecs.encode` (bytes pickled by Python 3 under
protocol 2); any other global (os.system, builtins.eval, ...) makes loading fail with a DataError. An array is
built only from the bytes the pickle holds for it (`_PickledArray`): a declared shape larger than its data, or an
object dtype, is refused before anything is allocated. The archive is read member by member from the gzip stream;
nothing is extracted to disk, and a member larger than MAX_BATCH_BYTES is refused before it is read. An
already-extracted `cifar-10-batches-py/` folder works too.
"""
from __future__ import annotations

import functools
import io
import math
import os
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from advnets.data.download import fetch, file_key
from advnets.errors import DataError

ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
MIRRORS = ["https://www.cs.toronto.edu/~kriz/"]
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
BATCHES = (*TRAIN_BATCHES, TEST_BATCH)
SPLIT_BATCHES = {"train": TRAIN_BATCHES[:4], "valid": TRAIN_BATCHES[4:], "test": (TEST_BATCH,)}
IMAGE_SHAPE = (3, 32, 32)
LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as Python 3 pickles bytes under protocol 2, and nothing else."""
    if encoding.lower().replace("-", "") != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


class _PickledArray:
    """What numpy's `_reconstruct(ndarray, (0,), b"b")` stands for while a pickle loads: an empty array whose shape,
    dtype and data arrive with its state (the BUILD opcode calls `__setstate__`). The state is checked before an
    array is made: integer dtype, data bytes exactly as long as the declared shape needs. numpy's own
    `_reconstruct` would allocate any shape it is given, and its `__setstate__` crashes the interpreter on some
    object-dtype states."""

    def __init__(self, subtype, shape, dtype):
        if subtype is not np.ndarray or tuple(shape) != (0,):
            raise pickle.UnpicklingError(f"an array rebuilt as {getattr(subtype, '__name__', subtype)} of shape "
                                         f"{shape!r}, which numpy never pickles")
        self.array = None

    def __setstate__(self, state) -> None:
        try:
            _, shape, dtype, fortran, data = (1, *state) if len(state) == 4 else state     # 4: before numpy 1.0
            shape = tuple(int(n) for n in shape)
        except (TypeError, ValueError):
            raise pickle.UnpicklingError("an array whose state is not (version, shape, dtype, order, data)") from None
        if isinstance(data, str):
            data = data.encode("latin1")                     # Python 2 str data, read with encoding="latin1"
        if not isinstance(dtype, np.dtype) or dtype.kind not in "biu" or dtype.fields is not None \
                or dtype.subdtype is not None or not isinstance(data, bytes) or min(shape, default=0) < 0:
            raise pickle.UnpicklingError(f"an array of dtype {dtype!r} with data of type {type(data).__name__}; "
                                         "a CIFAR-10 batch holds integer arrays only")
        if math.prod(shape) * dtype.itemsize != len(data):
            raise pickle.UnpicklingError(f"an array declared {shape} of {dtype} holds {len(data):,} bytes of data, "
                                         f"not the {math.prod(shape) * dtype.itemsize:,} that shape needs")
        self.array = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def _arrays(value):
    """`value` with each `_PickledArray` replaced by its array, in dicts and lists."""
    if isinstance(value, _PickledArray):
        if value.array is None:
            raise pickle.UnpicklingError("an array without its data")
        return value.array
    if isinstance(value, dict):
        return {k: _arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_arrays(v) for v in value]
    return value


MAX_BATCH_BYTES = 64 * 2**20    # a batch file of the real archive is 31 MB: a larger one is refused before reading
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _PickledArray,     # written by numpy 1.x (the real archive)
    ("numpy._core.multiarray", "_reconstruct"): _PickledArray,    # written by numpy 2.x
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild dicts, lists, strings, numbers and numpy arrays, and call nothing else."""

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"the pickle refers to {module}.{name}, which a CIFAR-10 batch never "
                                         "does; refusing to load it") from None


def load_batch(raw: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Unpickle one batch file's bytes with `_BatchUnpickler`: (N, 3072) uint8 data and (N,) int64 labels."""
    hint = f"replace {source} with the file from the standard {ARCHIVE}"
    try:
        batch = _arrays(_BatchUnpickler(io.BytesIO(raw), encoding="bytes").load())
    except Exception as e:                      # anything a hostile or damaged pickle raises, code never runs
        raise DataError(f"cannot read CIFAR-10 batch {source}: {type(e).__name__}: {e}", hint) from None
    if not isinstance(batch, dict):
        raise DataError(f"CIFAR-10 batch {source} holds a {type(batch).__name__}, expected a dict", hint)
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"CIFAR-10 batch {source} has data {what}, expected uint8 (N, 3072)", hint)
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"CIFAR-10 batch {source} has labels that are not integers", hint) from None
    if labels.shape != (data.shape[0],) or (labels.size and not 0 <= labels.min() <= labels.max() <= 9):
        raise DataError(f"CIFAR-10 batch {source} has {labels.size} labels for {data.shape[0]} images "
                        "(or labels outside 0..9)", hint)
    return data, labels


@functools.lru_cache(maxsize=1)
def _read_archive(key: tuple[str, int, int]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All six batches of the archive at key[0], read in one pass over the gzip stream; cached in memory."""
    path = key[0]
    hint = f"delete {path} and download it again, or pass --data-dir DIR holding a good copy of {ARCHIVE}"
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                name = PurePosixPath(member.name)
                if member.isfile() and name.name in BATCHES and name.parent.name == FOLDER:
                    _check_size(member.size, f"{path}:{member.name}", hint)
                    batches[name.name] = load_batch(tar.extractfile(member).read(), f"{path}:{member.name}")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise DataError(f"{path} is not a readable tar.gz archive ({type(e).__name__}: {e})", hint) from None
    missing = [b for b in BATCHES if b not in batches]
    if missing:
        raise DataError(f"{path} lacks {FOLDER}/{', '.join(missing)}", hint)
    return _frozen(batches)


@functools.lru_cache(maxsize=1)
def _read_folder(keys: tuple[tuple[str, int, int], ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The six batch files of an extracted `cifar-10-batches-py` folder (keys: `file_key` of each, in the
    order of BATCHES); cached in memory."""
    batches = {}
    for b, (path, _, _) in zip(BATCHES, keys):
        try:
            _check_size(Path(path).stat().st_size, path, f"replace {path} with the file from the standard {ARCHIVE}")
            raw = Path(path).read_bytes()
        except OSError as e:
            raise DataError(f"cannot read {path}: {e.strerror or e}",
                            f"extract {ARCHIVE} again, or pass --data-dir DIR holding the archive") from None
        batches[b] = load_batch(raw, path)
    return _frozen(batches)


def _check_size(size: int, source: str, hint: str) -> None:
    """A batch file's size, as its tar header or the file system declares it, before it is read."""
    if size > MAX_BATCH_BYTES:
        raise DataError(f"CIFAR-10 batch {source} is {size:,} bytes; a real batch is about 31 MB (10,000 images)",
                        hint)


def _frozen(batches):
    for data, labels in batches.values():
        data.flags.writeable = False
        labels.flags.writeable = False
    return batches


def _extracted_folder(data_dir: Path) -> Path | None:
    """data_dir itself or data_dir/cifar-10-batches-py, when it holds every batch file."""
    for folder in (data_dir, data_dir / FOLDER):
        if all((folder / b).is_file() for b in BATCHES):
            return folder
    return None


def cifar10_split(split: str, data_dir: str | Path | None, cache_dir: Path, download: bool,
                  mirrors: list[str] | None) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 32, 32) uint8 images and (N,) int64 labels of one split ("train" | "valid" | "test").

    Looks in `data_dir` (the archive, an extracted folder, or the archive's path itself), then in
    `cache_dir`/cifar10, then downloads the archive there from `mirrors` (md5-checked) when `download` is true.
    """
    if mirrors is None:
        env = os.environ.get("ADVNETS_MIRROR")
        mirrors = [m.strip() for m in env.split(",") if m.strip()] if env else MIRRORS
    search: list[Path] = []
    batches = None
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        if data_dir.is_file():                                  # --data-dir pointing at the archive itself
            batches = _read_archive(file_key(data_dir))
        elif (folder := _extracted_folder(data_dir)) is not None:
            batches = _read_folder(tuple(file_key(folder / b) for b in BATCHES))
        search.append(data_dir)
    if batches is None:
        try:
            path = fetch(ARCHIVE, ARCHIVE_MD5, mirrors, search, Path(cache_dir) / "cifar10", download)
        except DataError as e:
            hint = (e.hint or "").replace(f"holding {ARCHIVE}", f"holding {ARCHIVE} (or its extracted {FOLDER} folder)")
            raise DataError(e.message, hint) from None
        batches = _read_archive(file_key(path))
    parts = [batches[b] for b in SPLIT_BATCHES[split]]
    images = np.concatenate([data for data, _ in parts]).reshape(-1, *IMAGE_SHAPE)  # (N, 3, 32, 32): R, G, B planes
    labels = np.concatenate([labels for _, labels in parts])
    return images, labels
