"""Tests for jaxcnn.storage.space and full disks during checkpoint saves, on a real size-limited
tmpfs: a clear ENOSPC error naming what, where and how many bytes; earlier files intact."""

import errno
import os

import numpy as np
import pytest

from jaxcnn.storage import checkpoints, space


def test_require_and_reserve_on_a_small_disk(small_disk):
    disk = small_disk("1m")
    space.require(disk, 1000, what="x")
    with pytest.raises(space.OutOfSpaceError, match=r"for features: .* needs 2.0 MiB") as err:
        space.require(disk, 2 * 2**20, what="features", then="it resumes")
    assert err.value.errno == errno.ENOSPC and "free space and rerun: it resumes" in str(err.value)
    path = os.path.join(disk, "f.npy")
    open(path, "wb").close()
    space.reserve(path, 2**19, what="f")
    assert os.stat(path).st_blocks * 512 >= 2**19  # allocated, not sparse
    with pytest.raises(space.OutOfSpaceError, match=f"{path} needs"):
        space.reserve(path, 2 * 2**20, what="f")
    assert space.is_out_of_space(RuntimeError("x")) is False
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("orbax failed") from inner
    except RuntimeError as outer:
        assert space.is_out_of_space(outer)


def _state(seed):
    rng = np.random.default_rng(seed)
    return {
        "params": {"w": rng.normal(size=(256, 256)).astype(np.float32)},
        "step": np.int32(seed),
    }


def test_full_disk_during_a_checkpoint_save(small_disk, fill_disk):
    disk = small_disk("2m")
    with checkpoints.Checkpointer(disk, snapshot_steps=[1, 2], async_save=False) as ckpt:
        ckpt.save(1, _state(1), {"step": 1})
    filler = fill_disk(disk, leave=100_000)  # less than the next step's 256 KiB
    with checkpoints.Checkpointer(disk, snapshot_steps=[1, 2], async_save=False) as ckpt:
        with pytest.raises(space.OutOfSpaceError) as err:
            ckpt.save(2, _state(2), {"step": 2})
    message = str(err.value)
    assert "checkpoint step 2" in message and "needs" in message and "are free" in message
    assert "the run resumes from step 1" in message, message
    # the earlier checkpoint is intact (its digest verifies) and nothing half-written is a step
    np.testing.assert_array_equal(checkpoints.restore_params(disk)["w"], _state(1)["params"]["w"])
    assert checkpoints.available_steps(disk) == [1]
    os.remove(filler)
    with checkpoints.Checkpointer(disk, snapshot_steps=[1, 2], async_save=False) as ckpt:
        ckpt.save(2, _state(2), {"step": 2})
    np.testing.assert_array_equal(checkpoints.restore_params(disk)["w"], _state(2)["params"]["w"])
