"""Keep freed memory in the process, so that large tensors freed in one training step are reused in the next
without new page faults.

glibc serves every allocation above 32 MB (and smaller ones, up to a threshold it adjusts) with its own `mmap`, and
returns it to the kernel on `free`. A training step that frees and allocates the same large tensors every iteration
then page-faults them in again each time: the kernel maps and zeroes every page. On `paper-cifar10-conv` (G's
8000 x 8000 weight gradient alone is 256 MB) that is a large share of a step's time
(`benchmarks/image_throughput.py` reports the faults; --system-malloc leaves glibc's default; measured figures in
docs/performance.md). Transparent huge pages (torch's THP_MEM_ALLOC_ENABLE) cut the number of faults but not the
kernel time: the pages are still zeroed. With glibc's `mmap` off and no trimming, freed blocks stay in the heap and
the next step reuses them: after two or three steps, no faults and no kernel time. The arithmetic is the same, so
results are bit-identical.

The costs: the process keeps its peak heap until it exits (a larger resident set), and a
freed large block that a live small allocation sits above cannot take the next large request. A loop that keeps
a small tensor from every iteration while freeing a large one grows the heap by the large size each iteration;
a training step keeps nothing between iterations, and its heap stops growing after three steps. That is why only
`advnets train` calls `keep_freed_memory()`. A program that uses the Python API can call it too. A user who set
glibc's own malloc variables (MALLOC_MMAP_MAX_, MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_, MALLOC_TOP_PAD_,
or malloc tunables in GLIBC_TUNABLES) keeps them, and this then does nothing: MALLOC_MMAP_MAX_=65536 restores
glibc's default. It also does nothing where the C library is not glibc (macOS, musl).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_USER_SETTINGS = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")
_done = False


def _glibc_mallopt():
    """glibc's mallopt, or None where the C library is another one."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc.mallopt if hasattr(libc, "gnu_get_libc_version") else None      # only glibc has both


def keep_freed_memory(environ=os.environ) -> bool:
    """Turn off glibc's per-allocation mmap and its trimming of the heap (see the module docstring). Returns whether
    the setting is in force after the call (it is set once per process)."""
    global _done
    if _done:
        return True
    if any(name in environ for name in _USER_SETTINGS) or "malloc" in environ.get("GLIBC_TUNABLES", ""):
        return False
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    # trimming off: a freed block at the top of the heap stays too (the threshold is an int: 2 GiB - 1)
    _done = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1))
    return _done



def available_ram() -> int | None:
    """Bytes of RAM that can still be allocated (the kernel's MemAvailable, else the free pages), or None where it
    cannot be told. Sizes computed from a config are checked against it before allocating."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
