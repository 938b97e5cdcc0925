"""Tests for jaxcnn.storage.locks with real processes: a second process is refused at once,
naming the owner; the lock dies with its owner (SIGKILL leaves no stale lock)."""

import os
import signal
import socket
import subprocess
import sys

import pytest

from jaxcnn.storage import locks

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def hold_in_child(directory, what="run directory"):
    """A separate Python process that locks `directory` and sleeps; returns once it holds it."""
    code = (
        "import sys, time\n"
        "from jaxcnn.storage import locks\n"
        f"lock = locks.acquire({str(directory)!r}, what={what!r})\n"
        "print('held', flush=True)\n"
        "time.sleep(300)\n"
    )
    env = dict(os.environ, PYTHONPATH=REPO)
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    assert child.stdout.readline().strip() == "held"
    return child


def test_second_process_is_refused_and_lock_dies_with_its_owner(tmp_path):
    child = hold_in_child(tmp_path / "run")
    try:
        with pytest.raises(locks.DirectoryInUseError) as err:
            locks.acquire(tmp_path / "run", what="run directory")
        message = str(err.value)
        assert f"in use by PID {child.pid} on host {socket.gethostname()}" in message
        assert message.startswith(f"run directory {tmp_path / 'run'} ")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    with locks.holding(tmp_path / "run") as lock:  # no stale lock after SIGKILL
        assert lock.held
    assert not lock.held


def test_one_process_two_holders_and_release(tmp_path):
    first = locks.acquire(tmp_path)
    with pytest.raises(locks.DirectoryInUseError, match=f"PID {os.getpid()} "):
        locks.acquire(tmp_path)
    first.release()
    first.release()  # idempotent
    locks.acquire(tmp_path).release()
