"""Your own images as a dataset: every PNG and JPEG file under a folder (recursively), as square images.

- Files: ``*.png``, ``*.jpg``, ``*.jpeg`` in any letter case, in sorted order of their path below the folder;
  hidden files and folders (names starting with ".") are left out.
- Each image: EXIF orientation applied; transparency composited onto white; 16-bit grey scaled to 8 bits; the
  shorter side resized to ``size`` (Lanczos) and the centre cropped to ``size`` x ``size``; pixels / 255.
- Channels: 1 (grey) or 3 (RGB); 0 picks 1 when every image is grey (including RGB files with R = G = B),
  else 3. Grey from colour is the luma 0.299 R + 0.587 G + 0.114 B.
- Files that cannot be decoded (not an image, truncated, ...) are skipped, all counted in one
  `UnreadableImagesWarning`; subfolders that cannot be listed (no permission) in another; decoding happens
  once, before training, so a bad file never stops an epoch.
- Classes: when every readable image lies in a subfolder and there are at least two subfolders, each image's
  label is the index of its top-level subfolder in sorted order (``cats/``, ``dogs/``: 0, 1), as a conditional
  run (``--conditional``) needs; otherwise the images are unlabelled.
- Splits: one fixed permutation (seed 0) of the readable images: 5% valid, 5% test (at least one each from
  three images on), the rest train. The decoded images are cached in memory for the three splits; when a memmap
  run has decoded the folder into its uint8 cache (below), the splits are read from there instead.
- Training on a folder too large to hold (`data.storage` memmap, training/streaming.py): the pixels are decoded once
  into a uint8 .npy file (folder_cache.py) and read from it a minibatch at a time, converted by the same
  `pixels_to_float` as here, so both paths give the same values.
"""
from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

from advnets.errors import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg")
DEFAULT_SIZE = 32
HELD_OUT_FRACTION = 0.05           # of the images, for each of valid and test
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class UnreadableImagesWarning(UserWarning):
    """Some files in an image folder could not be decoded and were skipped."""


def list_images(folder: Path, unreadable: list[str] | None = None) -> list[Path]:
    """Image files under `folder`, recursively, sorted by relative path; hidden files and folders left out. The
    subfolders that cannot be listed (no permission, ...) are appended to `unreadable`, when given."""
    found = []
    def note(error: OSError) -> None:
        if unreadable is not None and error.filename:
            unreadable.append(f"{Path(error.filename).relative_to(folder)}/ ({error.strerror or error})")
    for root, dirs, files in os.walk(folder, onerror=note):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in files if not f.startswith(".") and f.lower().endswith(EXTENSIONS)]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def decode_image(path: Path, size: int) -> np.ndarray:
    """One file -> (size, size, 3) uint8 RGB, resized and centre-cropped. Raises on anything unreadable."""
    with Image.open(path) as img:
        img.draft(None, (size, size))               # JPEG: decode at a reduced scale still >= size (fast)
        img = ImageOps.exif_transpose(img)
        if img.mode.startswith("I") or img.mode == "F":   # 16-bit / 32-bit grey: scale to 0..255 ourselves
            a = np.asarray(img, dtype=np.float64)
            top = 65535.0 if a.max(initial=0) > 255 else 255.0
            img = Image.fromarray(np.clip(a * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        img = ImageOps.fit(img.convert("RGB"), (size, size), method=Image.Resampling.LANCZOS)
        return np.asarray(img, dtype=np.uint8)


def _listing_key(folder: Path, unreadable: list[str] | None = None) -> tuple:
    files = list_images(folder, unreadable)
    return tuple((str(p), *_stat(p)) for p in files)


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return 0, -1


def class_names(folder: Path, paths: list[Path]) -> list[str] | None:
    """The sorted top-level subfolder names that label `paths`, or None when some image is not in a subfolder or
    there is only one subfolder."""
    parts = [p.relative_to(folder).parts for p in paths]
    if not parts or any(len(q) < 2 for q in parts):
        return None
    names = sorted({q[0] for q in parts})
    return names if len(names) >= 2 else None


def stored_pixels(rgb: np.ndarray) -> np.ndarray:
    """(N, size, size, 3) uint8 RGB -> (N, C, size, size) uint8 as held (and cached, folder_cache.py): C = 1 when
    every image is grey (R = G = B), else 3."""
    grey = bool((rgb[..., :1] == rgb[..., 1:]).all())
    return np.ascontiguousarray((rgb[..., :1] if grey else rgb).transpose(0, 3, 1, 2))


def pixels_to_float(pixels: np.ndarray, channels: int) -> np.ndarray:
    """(B, C_s, H, W) uint8 stored pixels -> (B, C, H, W) float32 in [0, 1], C = `channels` (0: C_s). Grey from
    colour is the luma 0.299 R + 0.587 G + 0.114 B; grey to colour repeats. Element by element, so any block of
    rows gives the same values as the whole array (the memmap path converts one minibatch at a time)."""
    c = channels or pixels.shape[1]
    if c == pixels.shape[1]:
        x = pixels.astype(np.float32)
    elif c == 1:
        r, g, b = (pixels[:, i:i + 1].astype(np.float32) for i in range(3))
        x = r * np.float32(0.299) + g * np.float32(0.587) + b * np.float32(0.114)
    else:
        x = np.repeat(pixels, 3, axis=1).astype(np.float32)
    return x / np.float32(255)


def decode_listing(folder: str, size: int, listing: tuple, out: np.ndarray | None = None,
                   progress: Callable[[], None] | None = None):
    """Decode every file of `listing` to (size, size, 3) uint8, into `out[i]` (a (len(listing), size, size, 3)
    array, e.g. a memory map) when given, else into a list; `progress()` is called after each file. Returns (the
    decoded images or `out`, the indices of the files that decoded, the failures as text). Any decoding failure
    skips the file, never crashes."""
    pictures, failures, kept = [], [], []
    for i, (path, _, _) in enumerate(listing):
        if progress is not None:
            progress()
        try:
            a = decode_image(Path(path), size)
        except Exception as e:                       # any decoding failure: skip the file, never crash
            failures.append(f"{Path(path).relative_to(folder)} ({type(e).__name__}: {str(e)[:80]})")
            continue
        kept.append(i)
        if out is None:
            pictures.append(a)
        else:
            out[i] = a
    return (pictures if out is None else out), kept, failures


def unreadable_message(folder: str, failures: list[str], total: int, failed: int | None = None) -> str:
    """The warning about `failed` (default: all of `failures`, of which the first three are named) of `total`."""
    failed = len(failures) if failed is None else failed
    shown = "; ".join(failures[:3]) + (f"; and {failed - 3} more" if failed > 3 else "")
    return f"skipped {failed} of {total} files in {folder} that could not be read as images: {shown}"


def no_readable_images(folder: str, total: int) -> DataError:
    return DataError(f"none of the {total} image files in {folder} could be read",
                     "check the files open in an image viewer; PNG and JPEG are supported")


def folder_labels(folder: str, kept: list[Path]) -> np.ndarray | None:
    """(N,) int64 class labels of the kept files from their top-level subfolders, or None (see `class_names`)."""
    names = class_names(Path(folder), kept)
    if names is None:
        return None
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[p.relative_to(folder).parts[0]] for p in kept], dtype=np.int64)


@functools.lru_cache(maxsize=2)
def _decode_all(folder: str, size: int, channels: int, listing: tuple) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, C, size, size) float32 in [0, 1] for every readable file of `listing` (warns about the others), and
    their (N,) int64 class labels from the subfolders, or None (see `class_names`)."""
    pictures, kept, failures = decode_listing(folder, size, listing)
    if failures:
        warnings.warn(unreadable_message(folder, failures, len(listing)), UnreadableImagesWarning, stacklevel=2)
    if not pictures:
        raise no_readable_images(folder, len(listing))
    x = pixels_to_float(stored_pixels(np.stack(pictures)), channels)         # (N, C, size, size)
    x.flags.writeable = False
    labels = folder_labels(folder, [Path(listing[i][0]) for i in kept])
    if labels is not None:
        labels.flags.writeable = False
    return x, labels


def split_indices(n: int) -> dict[str, np.ndarray]:
    """Fixed train / valid / test rows of n images: 5% each held out (>= 1 from n = 3), the rest train."""
    held = max(1, round(HELD_OUT_FRACTION * n)) if n >= 3 else 0
    perm = np.random.default_rng(0).permutation(n)
    return {"valid": np.sort(perm[:held]), "test": np.sort(perm[held:2 * held]), "train": np.sort(perm[2 * held:])}


def checked_listing(data_dir: str | Path | None, channels: int = 0) -> tuple[Path, tuple]:
    """The image folder `data_dir`, resolved, and its listing ((path, mtime, size) of every image file), checked:
    a DataError when it is missing, not a folder or holds no image file; a warning for unreadable subfolders."""
    if data_dir is None:
        raise DataError("dataset 'folder' needs the folder of images",
                        "pass --data-dir DIR (searched recursively for PNG and JPEG files)")
    folder = Path(data_dir).expanduser().resolve()
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist or is not a folder", "pass --data-dir DIR")
    if channels not in (0, 1, 3):
        raise DataError(f"data.channels is {channels}", "use 1 (grey), 3 (RGB) or 0 (1 if every image is grey)")
    unreadable: list[str] = []
    listing = _listing_key(folder, unreadable)
    if unreadable:
        shown = "; ".join(unreadable[:3]) + (f"; and {len(unreadable) - 3} more" if len(unreadable) > 3 else "")
        warnings.warn(f"skipped {len(unreadable)} folder{'s' if len(unreadable) > 1 else ''} in {folder} that could "
                      f"not be read: {shown}", UnreadableImagesWarning, stacklevel=3)
    if not listing:
        raise DataError(f"no PNG or JPEG files found in {folder} (searched recursively"
                        + (f"; {len(unreadable)} unreadable folders" if unreadable else "") + ")",
                        f"put image files ({', '.join(EXTENSIONS)}) in it, or pass another --data-dir")
    return folder, listing


def folder_split(split: str, data_dir: str | Path | None, size: int = 0, channels: int = 0,
                 find_cache: Callable | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, C, size, size) float32 images in [0, 1] of one split of the image folder `data_dir`, and their (N,)
    labels from the subfolders, or None. `find_cache(folder, size, listing)` (registry.py passes
    folder_cache.find_folder_cache) returns the folder's decoded uint8 cache if a memmap run built one: the split
    is then read from it (only its rows; the same values, converted by the same `pixels_to_float`) instead of
    decoding every file again."""
    folder, listing = checked_listing(data_dir, channels)
    size = size or DEFAULT_SIZE
    cache = find_cache(folder, size, listing) if find_cache is not None else None
    if cache is not None:
        n, labels = len(cache.pixels), cache.labels                     # pixels: (N, C_s, size, size) uint8
    else:
        images, labels = _decode_all(str(folder), size, channels, listing)
        n = len(images)
    rows = split_indices(n)[split]
    if rows.size == 0:
        raise DataError(f"{folder} has only {n} readable images, too few for a {split} split",
                        "add images (at least 3)")
    x = pixels_to_float(np.asarray(cache.pixels[rows]), channels) if cache is not None else images[rows]
    return x, None if labels is None else labels[rows]
