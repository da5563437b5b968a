"""advnets.memory.keep_freed_memory: a large tensor freed and allocated again is reused without page faults, and a
user's own malloc settings are left alone. Each case runs in a fresh Python, since the setting is process-wide."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from advnets.memory import _glibc_mallopt

pytestmark = pytest.mark.skipif(_glibc_mallopt() is None, reason="needs glibc (Linux)")

# A loop that allocates and frees two 64 MB tensors, with small allocations in between, as a training step does:
# the minor page faults of its last 12 iterations. glibc may need a dozen iterations to settle (a freed block that a
# live small allocation sits above cannot take the next 64 MB request); then the freed blocks are reused.
_PROGRAM = """
import resource, sys
from advnets.memory import keep_freed_memory
print(keep_freed_memory() if sys.argv[1] == "keep" else False)
import torch
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(32):
    if i == 20:
        before = faults()
    start = faults()
    a = torch.ones(16 * 1024 * 1024)              # 64 MB, every page touched
    if i == 0:
        unit = faults() - start                   # the faults of 64 MB of fresh memory (pages of 4 KiB or 2 MiB)
    small = [torch.ones(10) for _ in range(3)]
    b = a * 2
    del a, small, b
print(faults() - before, unit)
"""


def _run(mode: str, **env) -> tuple[str, float]:
    """Whether the setting took, and the faults of the last 12 iterations in units of one fresh 64 MB tensor's."""
    out = subprocess.run([sys.executable, "-c", _PROGRAM, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}).stdout.split()
    return out[0], int(out[1]) / max(1, int(out[2]))


def test_a_freed_tensor_is_reused_without_page_faults():
    in_force, tensors = _run("keep")
    assert in_force == "True"
    assert tensors <= 6                             # of 24 tensors of 64 MB, a quarter at most mapped anew (0-1 seen)


def test_without_it_glibc_maps_the_pages_again():
    # the control: what keep_freed_memory prevents (glibc returns a 64 MB block to the kernel on free)
    in_force, tensors = _run("system")
    assert in_force == "False"
    assert tensors > 12                             # (24: every tensor mapped anew)


def test_a_users_malloc_settings_are_kept():
    in_force, _ = _run("keep", MALLOC_MMAP_MAX_="65536")
    assert in_force == "False"                      # not set over the user's choice
    in_force, _ = _run("keep", GLIBC_TUNABLES="glibc.malloc.trim_threshold=1000000")
    assert in_force == "False"
