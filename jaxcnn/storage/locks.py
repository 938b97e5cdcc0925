"""Exclusive ownership of a directory (a training run's or a study's) by one process.

`acquire(directory)` takes an OS-level lock (``fcntl.flock``, exclusive, non-blocking) on
``<directory>/.jaxcnn-lock`` and writes the owner (PID, host, start time, command) into that
file. The kernel releases the lock when the holding process ends, however it ends (SIGKILL
included), so a crashed run never leaves a stale lock; the file itself stays and is simply
locked again by the next owner. A second process gets `DirectoryInUseError` at once, naming the
owner. Multi-process runs take the lock on process 0 only (the callers decide that).

flock works on local filesystems and on NFSv4 (where Linux maps it to a byte-range lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator

LOCK_FILE = ".jaxcnn-lock"


class DirectoryInUseError(RuntimeError):
    """Another process holds the directory's lock."""


class DirectoryLock:
    """A held lock; `release` (or leaving the ``with`` block, or the process ending) frees it."""

    def __init__(self, directory: str, fd: int):
        self.directory, self._fd = directory, fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _owner(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 1 << 16).decode("utf-8", "replace")
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}


def acquire(directory: str | os.PathLike, *, what: str = "directory") -> DirectoryLock:
    """Lock `directory` (created if missing) for this process, or raise `DirectoryInUseError`
    naming the process that holds it. `what` names the directory's role in the message."""
    directory = os.path.abspath(os.fspath(directory))
    os.makedirs(directory, exist_ok=True)
    fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _owner(fd)
        os.close(fd)
        since = owner.get("started", "?")
        raise DirectoryInUseError(
            f"{what} {directory} is in use by PID {owner.get('pid', '?')} on host "
            f"{owner.get('host', '?')} (since {since}: {owner.get('command', '?')}); wait for "
            "it to finish, stop it, or use another directory"
        ) from None
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv)[:500],
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    return DirectoryLock(directory, fd)


@contextlib.contextmanager
def holding(directory: str | os.PathLike, *, what: str = "directory") -> Iterator[DirectoryLock]:
    """``with holding(dir):`` the directory is this process's until the block ends."""
    lock = acquire(directory, what=what)
    try:
        yield lock
    finally:
        lock.release()
