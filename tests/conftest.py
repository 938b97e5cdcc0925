"""Test configuration: 8 fake CPU devices for the multi-device tests.

XLA_FLAGS must be set before JAX is imported anywhere, so it happens here.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

# Silent broadcasting between arrays of different rank is an error in tests.
jax.config.update("jax_numpy_rank_promotion", "raise")


# --- a small filesystem to fill (disk-full tests) ----------------------------------------------
import shutil  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(size)``: a fresh tmpfs of `size` (e.g. "2m") under tmp_path, unmounted after
    the test. Needs root (mount); elsewhere the test is skipped with the reason."""
    mounted = []

    def make(size: str):
        path = tmp_path / f"disk{len(mounted)}"
        path.mkdir()
        cmd = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            pytest.skip(f"cannot mount a size-limited tmpfs: {e}")
        if done.returncode:
            pytest.skip(f"cannot mount a size-limited tmpfs: {done.stderr.strip()}")
        mounted.append(path)
        return path

    yield make
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


@pytest.fixture
def fill_disk():
    """``fill_disk(folder, leave)``: a file in `folder` taking all but `leave` free bytes;
    returns its path (remove it to free the space)."""

    def fill(folder, leave: int):
        path = os.path.join(folder, "filler")
        size = shutil.disk_usage(folder).free - leave
        fd = os.open(path, os.O_RDWR | os.O_CREAT)
        try:
            os.posix_fallocate(fd, 0, max(size, 1))
        finally:
            os.close(fd)
        return path

    return fill
