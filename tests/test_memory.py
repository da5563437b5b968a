"""advnets.memory.keep_freed_memory: a large tensor is served from the heap instead of its own mmap, and freeing it
keeps the memory in the process (no trimming), so the next step can reuse it; a user's own malloc settings are left
alone. Each case runs in a fresh Python, since the setting is process-wide. The checks read glibc's own accounting
(mallinfo2: which blocks were mapped on their own, what the heap holds), which the settings decide exactly; page
faults, the cost they save, also depend on the kernel and its page size and belong to benchmarks/image_throughput.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from advnets.memory import _glibc_mallopt

pytestmark = pytest.mark.skipif(_glibc_mallopt() is None, reason="needs glibc (Linux)")

MB = 2 ** 20

# glibc's accounting (`mmapped`: hblkhd, bytes in blocks that malloc mapped on their own, each returned to the kernel
# on free; `in_use`: uordblks, bytes allocated from the heap; `free`: fordblks, free bytes the heap keeps for the next
# allocations) at four moments: at the start; after a 64 MB block malloc'd and freed at once (it sits at the top of
# the heap, which glibc trims on free unless trimming is off); while a 64 MB tensor lives; after it is freed.
# mallinfo2 (glibc 2.33+) has size_t fields; mallinfo's int fields are enough for the sizes here where it is missing.
_PROGRAM = """
import ctypes, ctypes.util, json, sys
from advnets.memory import keep_freed_memory
in_force = keep_freed_memory() if sys.argv[1] == "keep" else False
again = keep_freed_memory() if sys.argv[1] == "keep" else False
import torch

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
field = ctypes.c_size_t if hasattr(libc, "mallinfo2") else ctypes.c_int
class Info(ctypes.Structure):
    _fields_ = [(n, field) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                     "uordblks", "fordblks", "keepcost")]
mallinfo = getattr(libc, "mallinfo2", None) or libc.mallinfo
mallinfo.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def info():
    i = mallinfo()
    return {"mmapped": int(i.hblkhd), "in_use": int(i.uordblks), "free": int(i.fordblks)}

before = info()
libc.free(libc.malloc(64 * 2 ** 20))
top_freed = info()
a = torch.ones(16 * 1024 * 1024)                  # 64 MB
live = info()
total = float(a.sum())
del a
freed = info()
print(json.dumps({"in_force": in_force, "again": again, "before": before, "top_freed": top_freed, "live": live,
                  "freed": freed, "total": total}))
"""


def _run(mode: str, **env) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROGRAM, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])


def _grew(r: dict, when: str, what: str) -> int:
    return r[when][what] - r["before"][what]


def test_a_large_tensor_comes_from_the_heap_and_stays_there_when_freed():
    r = _run("keep")
    assert r["in_force"] is True and r["again"] is True           # set once; a second call reports it in force
    assert _grew(r, "live", "mmapped") < 64 * MB                  # not a block mapped on its own (M_MMAP_MAX = 0) ...
    assert _grew(r, "live", "in_use") >= 64 * MB                  # ... but heap
    assert r["freed"]["free"] >= 64 * MB                          # freed, the heap keeps it
    assert r["top_freed"]["free"] >= 64 * MB                      # even at the top of the heap (no trimming)
    assert r["total"] == 16 * 1024 * 1024


def test_without_it_glibc_maps_a_large_tensor_on_its_own():
    # the control: what keep_freed_memory changes (glibc maps a 64 MB block by itself and unmaps it on free)
    r = _run("system")
    assert r["in_force"] is False
    assert _grew(r, "live", "mmapped") >= 64 * MB
    assert _grew(r, "freed", "mmapped") < 64 * MB                 # returned to the kernel
    assert _grew(r, "freed", "free") < 64 * MB                    # and the heap did not gain it
    assert _grew(r, "top_freed", "free") < 64 * MB


@pytest.mark.parametrize("env", [{"MALLOC_MMAP_MAX_": "65536"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1000000"}])
def test_a_users_malloc_settings_are_kept(env):
    r = _run("keep", **env)
    assert r["in_force"] is False                                 # not set over the user's choice ...
    assert _grew(r, "live", "mmapped") >= 64 * MB                 # ... and glibc still maps large blocks on their own
