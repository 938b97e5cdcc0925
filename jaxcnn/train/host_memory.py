"""The host allocator under XLA:CPU work (docs/methods.md §2.7).

XLA:CPU takes each execution's buffers from malloc. With glibc's defaults an allocation above
the mmap threshold (at most 32 MiB) gets fresh pages from the kernel and gives them back when
freed, and the per-thread arenas trim what they free; so every training step of the small
preset faulted its temporaries in again, page by page: 1.77 M page faults and 5.7 s of kernel
time in 60 steps (22 % of the CPU time), where the same steps with freed memory kept for reuse
took 0.24 M faults and 0.6 s, and ran at 456 against 390 images/s (2-core CPU, batch 128).

`keep_freed_memory` sets that up at run time with glibc's ``mallopt``: one arena, no mmap below
2 GiB, no trimming below 2 GiB. The price is a resident size that stays at its peak. The
scripts call it first (experiments/errors.py); elsewhere it changes nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# glibc's malloc.h
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -2, -3, -8
_KEEP = 2**31 - 1  # mallopt takes an int
_TOP_PAD = 256 * 2**20


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse (module docstring). Call it before JAX starts
    its threads (before the first computation). Returns whether every setting took; False
    without glibc (macOS, musl), where nothing changes."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    settings = (
        (_M_ARENA_MAX, 1),
        (_M_MMAP_THRESHOLD, _KEEP),
        (_M_TRIM_THRESHOLD, _KEEP),
        (_M_TOP_PAD, _TOP_PAD),
    )
    return all([mallopt(option, value) == 1 for option, value in settings])
