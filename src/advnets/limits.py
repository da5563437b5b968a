"""Sizes checked before anything is allocated: a count of samples held in memory against the memory available, a PNG
against the pixel limit of image viewers. Each refusal is one line naming the argument and the largest value that
fits, raised as `LimitError`, which is also a ValueError for the Python API."""
from __future__ import annotations

import math
from typing import Callable, Sequence

from PIL import Image

from .errors import AdvnetsError
from .memory import available_ram

# PIL's decompression-bomb limit (89,478,485 pixels): larger PNGs are refused by PIL and by many image viewers
PNG_PIXELS = Image.MAX_IMAGE_PIXELS


class LimitError(AdvnetsError, ValueError):
    """A number outside what a function can take: a negative count, or a size beyond the memory or the PNG limit.
    It is also a ValueError, so code that handles ValueError still does."""


def check_count(name: str, n: int, low: int = 0) -> None:
    """`n` (argument `name`) is a whole number >= `low`."""
    if isinstance(n, bool) or not isinstance(n, int) or n < low:
        raise LimitError(f"{name} must be a whole number >= {low}, got {n!r}")


def check_positive(name: str, value: float) -> None:
    """`value` (argument `name`) is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise LimitError(f"{name} must be a positive finite number, got {value!r}")


def check_memory(name: str, n: int, bytes_each: int, what: str = "samples") -> None:
    """`n` `what` of `bytes_each` bytes each, held in memory at once, must fit in the memory available now; else a
    LimitError naming the largest `name` that fits. Does nothing where the available memory cannot be told."""
    free = available_ram()
    need = n * bytes_each
    if free is None or need <= free:
        return
    raise LimitError(f"{name} {n:,} would hold {need / 2**30:,.1f} GiB of {what} in memory, more than the "
                     f"{free / 2**30:,.1f} GiB available", f"use {name} {max(free // bytes_each, 0):,} or less")


def grid_pixels(rows: int, cols: int, tile_shape: Sequence[int], padding: int = 2, scale: int = 1) -> tuple[int, int]:
    """(width, height) of `figures.image_grid`'s tiling of rows x cols tiles (..., H, W) with `padding`, each pixel
    drawn scale x scale."""
    h, w = tile_shape[-2:]
    return scale * (padding + cols * (w + padding)), scale * (padding + rows * (h + padding))


def check_png(options: Sequence[tuple[str, int, int]], size: Callable[[list[int]], tuple[int, int]]) -> None:
    """A PNG whose (width, height) is `size(values)` for the values of `options` [(name, value, smallest allowed),
    ...] must stay within PNG_PIXELS; else a LimitError naming, for each option that alone can bring it within, the
    largest value that does (with the others as given), or else the smallest values of all but the last and the
    largest of the last."""
    values = [value for _, value, _ in options]
    width, height = size(values)
    if width * height <= PNG_PIXELS:
        return
    fits = lambda vs: math.prod(size(vs)) <= PNG_PIXELS          # noqa: E731
    fixes = []
    for i, (name, value, low) in enumerate(options):
        best = _largest(lambda v, i=i: fits(values[:i] + [v] + values[i + 1:]), low, value)
        if best is not None:
            fixes.append(f"{name} {best:,} or less")
    if fixes:
        hint = "use " + ", or ".join(fixes)
    else:
        lows = [low for _, _, low in options[:-1]]
        best = _largest(lambda v: fits(lows + [v]), options[-1][2], values[-1])
        hint = "use " + ", ".join(f"{name} {low}" for (name, _, low) in options[:-1]) + \
            (f" and {options[-1][0]} {best:,} or less" if best is not None else "")
    given = " ".join(f"{name} {value:,}" for name, value, _ in options)
    raise LimitError(f"{given} would make a {width:,} x {height:,} pixel PNG ({width * height / 1e6:,.0f} "
                     f"megapixels), more than the {PNG_PIXELS / 1e6:.0f} that image viewers open", hint)


def _largest(fits: Callable[[int], bool], low: int, high: int) -> int | None:
    """The largest v in [low, high] with fits(v), for `fits` true up to some value and false above; None if
    fits(low) is false."""
    if high < low or not fits(low):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return low
