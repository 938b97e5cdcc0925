"""Disk space: checked and reserved before writing, so that a full disk is a clear error.

A memory-mapped write to a sparse file on a full disk kills the process with SIGBUS; a save that
runs out of space half-way fails deep inside a library. Writers therefore ask first:

- `require(directory, nbytes, what=...)` raises `OutOfSpaceError` (an ``OSError`` with errno
  ``ENOSPC``) naming what was to be written, where, the bytes needed and the bytes free;
- `reserve(path, nbytes, what=...)` allocates a file's blocks with ``posix_fallocate``, so
  later writes through a memory map cannot fail for space (filesystems that cannot allocate
  ahead are left to write as before);
- `is_out_of_space(error)` tells whether an exception (or one it was raised from) is ENOSPC.
"""

from __future__ import annotations

import errno
import os
import shutil


class OutOfSpaceError(OSError):
    """Not enough disk space for a write; ``errno`` is ENOSPC and the message says what to do."""

    def __init__(self, message: str, path: str):
        super().__init__(errno.ENOSPC, message)
        self.path = path

    def __str__(self) -> str:
        return self.strerror


def free_bytes(path: str | os.PathLike) -> int:
    """Bytes available to this user on the filesystem holding `path` (or its nearest parent)."""
    path = os.path.abspath(os.fspath(path))
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return shutil.disk_usage(path).free


def _error(what: str, path: str, nbytes: int, free: int, then: str) -> OutOfSpaceError:
    return OutOfSpaceError(
        f"no space left on device for {what}: {path} needs {_mib(nbytes)} and "
        f"{_mib(free)} are free; free space and rerun{': ' + then if then else ''}",
        path,
    )


def _mib(n: int) -> str:
    return f"{n} bytes" if n < 2**20 else f"{n / 2**20:.1f} MiB ({n} bytes)"


def require(directory: str | os.PathLike, nbytes: int, *, what: str, then: str = "") -> None:
    """Raise `OutOfSpaceError` unless `nbytes` are free where `directory` lives; `then` says
    what rerunning does (e.g. "the run resumes from its last checkpoint")."""
    free = free_bytes(directory)
    if free < nbytes:
        raise _error(what, os.fspath(directory), int(nbytes), free, then)


def reserve(path: str | os.PathLike, nbytes: int, *, what: str, then: str = "") -> None:
    """Allocate the first `nbytes` of the existing file `path` on disk now."""
    path = os.fspath(path)
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, int(nbytes))
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise _error(what, path, int(nbytes), free_bytes(path), then) from None
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise  # otherwise the filesystem cannot allocate ahead: writes proceed as before
    finally:
        os.close(fd)


def is_out_of_space(error: BaseException | None) -> bool:
    """Whether `error`, or an exception in its cause/context chain, is ENOSPC."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if getattr(error, "errno", None) == errno.ENOSPC or "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False
