"""Tests for jaxcnn.train.host_memory: freed memory is reused instead of faulted in again."""

import platform
import subprocess
import sys

import pytest

# Allocates, touches and frees a 64 MiB block ten times with malloc (as XLA:CPU does with a
# step's temporaries) and prints the minor page faults that took, after the first round.
_CHILD = """
import ctypes, ctypes.util, resource, sys
from jaxcnn.train import host_memory
if sys.argv[1] == "keep":
    assert host_memory.keep_freed_memory()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size = 64 * 2**20
def round_trip():
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_trip()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_freed_buffers_are_reused_not_faulted_in_again():
    default, kept = _faults("default"), _faults("keep")
    pages = 10 * 64 * 2**20 // 4096  # every round faults its 16,384 pages in by default
    assert default > 0.9 * pages
    assert kept < 0.05 * pages
