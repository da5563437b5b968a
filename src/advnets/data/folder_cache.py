"""An image folder decoded once into a uint8 .npy file, read back as a memory map (`data.storage` memmap).

Where: ``<cache>/folders/`` (the download cache: $ADVNETS_DATA, default ~/.cache/advnets), three files per folder
and image size, ``F-K.npy`` (pixels (N, C, size, size) uint8, C = 1 when every image is grey, else 3),
``F-K.labels.npy`` (the (N,) int64 classes of a folder with one subfolder per class) and ``F-K.json`` (what the
others hold, written last). F is a hash of the folder's path and the size, K a hash of its listing (every image
file's path, size, modification time, inode number and inode change time) and the decoding settings: a file
added, removed or changed gives a new K, the folder is decoded again, and the files of the old K are deleted. The
inode change time (st_ctime) is what catches a file rewritten in place or swapped for another of the same size
whose modification time was set back: the kernel sets it on every write, rename onto it and `utime`, and no call
sets it back; a file replaced by a rename also has another inode number. It costs one stat per file, where
hashing every source file at every open would read the whole folder.

The .json also holds the SHA-256 of the cached pixels and labels, checked when a cache is opened: pixels altered
in the .npy (a disk fault, a stray write) are caught, and the folder is decoded again. This reads the whole cache
once per open, as a training run does every epoch anyway, and costs far less than decoding the folder again.

While one process builds a cache, the others that need it wait on ``F-K.lock`` (run/lock.py), so the ranks of a
torchrun run decode the folder once.

Building decodes one file at a time into a scratch memory map (fileio.scratch_npy: its disk allocated first, removed
however the build ends, or by the next build if its writer was killed), so memory stays flat whatever the folder's
size, and renames each file into place only when it is whole (fileio.atomic_*). A cache whose files are missing,
truncated or do not match their .json is decoded again with a `FolderCacheWarning`.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from advnets.data.download import default_cache_dir
from advnets.data.folder import (UnreadableImagesWarning, decode_listing, folder_labels, no_readable_images,
                                 unreadable_message)
from advnets.errors import OutputError
from advnets.fileio import atomic_npy, atomic_save_npy, atomic_write_text, load_npy, read_regular, scratch_npy
from advnets.run.lock import build_lock

VERSION = 2          # of the decoding (folder.decode_image) and of this layout: a new value rebuilds every cache
_CHUNK = 1024        # images copied at a time from the temporary RGB map into the final file
_HASHED = 64 << 20   # bytes of a cached array hashed at a time


class FolderCacheWarning(UserWarning):
    """A cached decoded folder could not be used (truncated, damaged, mismatched); it is decoded again."""


@dataclass
class FolderCache:
    """A decoded folder: `pixels` (N, C, size, size) uint8, read-only memory map; `labels` (N,) int64 or None."""
    path: Path
    pixels: np.ndarray
    labels: np.ndarray | None
    meta: dict


def cache_stem(folder: Path, size: int, listing: tuple, cache_dir: Path | None = None) -> Path:
    """The cache files' path without suffix: <cache>/folders/F-K (see the module's docstring)."""
    root = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "folders"
    where = hashlib.sha256(f"{folder}\0{size}".encode()).hexdigest()[:16]
    what = hashlib.sha256(json.dumps([VERSION, size, listing, _identities(listing)]).encode()).hexdigest()[:16]
    return root / f"{where}-{what}"


def _identities(listing: tuple) -> list[tuple[int, int]]:
    """(inode number, inode change time in ns) of every file of `listing`: they change when a file is rewritten
    or replaced, even when its size and modification time were kept (see the module's docstring)."""
    found = []
    for path, *_ in listing:
        try:
            st = os.stat(path)
            found.append((st.st_ino, st.st_ctime_ns))
        except OSError:
            found.append((0, 0))
    return found


def array_digest(array: np.ndarray) -> str:
    """SHA-256 of a C-contiguous array's bytes, read in blocks (a memory map stays a memory map)."""
    flat = array.reshape(-1).view(np.uint8)
    digest = hashlib.sha256()
    for start in range(0, len(flat), _HASHED):
        digest.update(flat[start:start + _HASHED])
    return digest.hexdigest()


def open_folder_cache(folder: Path, size: int, listing: tuple, cache_dir: Path | None = None) -> FolderCache:
    """The cache of `folder` decoded at `size` (its `listing` from folder.checked_listing): opened when whole,
    else built first. One process builds it while others that need it at once wait (run/lock.py: the ranks of
    a torchrun run decode the folder once). Warns (UnreadableImagesWarning) about files that could not be
    decoded, as the in-memory path does."""
    stem = cache_stem(folder, size, listing, cache_dir)
    cache = _existing(stem, len(listing), size, folder)
    if cache is None:
        with build_lock(stem.with_suffix(".lock"), f"the decoded cache of {folder}") as lock:
            cache = _existing(stem, len(listing), size, folder, quiet=True)      # built while we waited?
            if cache is None:
                _build(str(folder), size, listing, stem, lock.beat)
                cache = _open(stem, len(listing), size, verify=False)      # hashed as it was written
    _warn_unreadable(str(folder), cache.meta)
    return cache


def find_folder_cache(folder: Path, size: int, listing: tuple, cache_dir: Path | None = None) -> FolderCache | None:
    """The whole cache of `folder` at `size` and this `listing` if one was built (by a memmap run), else None;
    never builds, never warns about a damaged one (the caller decodes the folder instead)."""
    cache = _existing(cache_stem(folder, size, listing, cache_dir), len(listing), size, folder, quiet=True)
    if cache is not None:
        _warn_unreadable(str(folder), cache.meta)
    return cache


def _existing(stem: Path, files: int, size: int, folder: Path, quiet: bool = False) -> FolderCache | None:
    """The cache at `stem` when its description exists and it opens whole, else None (with a FolderCacheWarning
    when it exists but is damaged, unless `quiet`)."""
    if not stem.with_suffix(".json").exists():
        return None
    try:
        return _open(stem, files, size)
    except Exception as e:                         # truncated, damaged, half-deleted: decode again
        if not quiet:
            why = " ".join(str(e).split())[:200]
            warnings.warn(f"cannot use the cached decoded folder {stem}.npy ({type(e).__name__}: {why}); decoding "
                          f"{folder} again", FolderCacheWarning, stacklevel=3)
        return None


def _open(stem: Path, files: int, size: int, verify: bool = True) -> FolderCache:
    """The cache at `stem`, checked against its description (and with `verify`, against its checksums); a
    ValueError or OSError says what does not match."""
    meta = json.loads(read_regular(stem.with_suffix(".json")))       # regular files only: no link, no FIFO
    n, c = meta["images"], meta["channels"]
    if meta.get("version") != VERSION or meta.get("files") != files or c not in (1, 3) or not 0 < n <= files:
        raise ValueError(f"its description {stem}.json does not match the folder")
    pixels = load_npy(stem.with_suffix(".npy"), mmap=True)
    if pixels.dtype != np.uint8 or pixels.shape != (n, c, size, size):
        raise ValueError(f"it holds {pixels.dtype} {pixels.shape}, not uint8 {(n, c, size, size)}")
    labels = None
    if meta["labelled"]:
        labels = load_npy(Path(f"{stem}.labels.npy"))
        if labels.dtype != np.int64 or labels.shape != (n,) or labels.min() < 0:
            raise ValueError(f"its labels are {labels.dtype} {labels.shape}, not {n} int64 classes")
    sums = meta.get("sha256", {})
    for name, array in (("pixels", pixels), ("labels", labels)) if verify else ():
        if array is not None and sums.get(name) != array_digest(array):
            raise ValueError(f"its {name} do not match the checksum they were written with (changed on disk)")
    return FolderCache(stem.with_suffix(".npy"), pixels, labels, meta)


def _warn_unreadable(folder: str, meta: dict) -> None:
    if meta["failed"]:
        warnings.warn(unreadable_message(folder, meta["failures"], meta["files"], meta["failed"]),
                      UnreadableImagesWarning, stacklevel=3)


def _build(folder: str, size: int, listing: tuple, stem: Path, progress: Callable[[], None]) -> None:
    """Decode every file into a temporary (files, size, size, 3) uint8 map, then write the kept images in the
    stored layout, the labels and the description, each renamed into place when whole; `progress()` is called
    after every file and block."""
    try:
        with scratch_npy(Path(f"{stem}.rgb"), (len(listing), size, size, 3), np.uint8) as rgb:
            _, kept, failures = decode_listing(folder, size, listing, rgb, progress)
            if not kept:
                raise no_readable_images(folder, len(listing))
            grey = all(bool((rgb[i, ..., :1] == rgb[i, ..., 1:]).all()) for i in kept)
            c = 1 if grey else 3
            with atomic_npy(stem.with_suffix(".npy"), (len(kept), c, size, size), np.uint8) as out:
                for start in range(0, len(kept), _CHUNK):
                    block = rgb[kept[start:start + _CHUNK]]                          # (B, size, size, 3)
                    out[start:start + len(block)] = (block[..., :1] if grey else block).transpose(0, 3, 1, 2)
                    progress()
                sums = {"pixels": array_digest(out)}
        labels = folder_labels(folder, [Path(listing[i][0]) for i in kept])
        if labels is not None:
            atomic_save_npy(Path(f"{stem}.labels.npy"), labels)
            sums["labels"] = array_digest(labels)
        atomic_write_text(stem.with_suffix(".json"), json.dumps({
            "version": VERSION, "folder": folder, "size": size, "files": len(listing), "images": len(kept),
            "channels": c, "labelled": labels is not None, "failed": len(failures), "failures": failures[:3],
            "sha256": sums}))
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError.from_os_error(exc, stem.with_suffix(".npy")) from None
    _remove_stale(stem)


def _remove_stale(stem: Path) -> None:
    """Delete the cache files of the same folder and size under another listing (the folder changed since)."""
    prefix = stem.name.split("-")[0] + "-"
    for path in stem.parent.glob(prefix + "*"):
        if not path.name.startswith(stem.name + "."):
            try:
                path.unlink()
            except OSError:
                pass
