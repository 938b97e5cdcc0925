"""Tests for jaxcnn.storage.checkpoints: retention (snapshots + rolling latest), round trips,
metadata,
errors, and that an interrupted save leaves no readable checkpoint."""

import os

import numpy as np
import pytest

from jaxcnn.storage import checkpoints


def _tree(step):
    return {
        "params": {
            "fc8": {
                "kernel": np.full((2, 3), step, np.float32),
                "bias": np.arange(3, dtype=np.float32) + step,
            }
        },
        "step": np.int32(step),
        "rng": np.array([7, step], np.uint32),
    }


def test_snapshots_kept_and_latest_rolls(tmp_path):
    with checkpoints.Checkpointer(tmp_path, snapshot_steps=[2, 5], keep_latest=1) as ckpt:
        for step in range(1, 8):
            ckpt.save(step, _tree(step), {"step": step, "note": "x"})
    assert checkpoints.available_steps(tmp_path) == [2, 5, 7]
    with checkpoints.Checkpointer(tmp_path, snapshot_steps=[2, 5], keep_latest=2) as ckpt:
        ckpt.save(8, _tree(8), {"step": 8})
        ckpt.save(9, _tree(9), {"step": 9})
    assert checkpoints.available_steps(tmp_path) == [2, 5, 8, 9]


def test_round_trip_exact_with_and_without_template(tmp_path):
    with checkpoints.Checkpointer(tmp_path, async_save=False) as ckpt:
        ckpt.save(3, _tree(3), {"config": {"a": [1, 2]}, "data_state": ["{}"]})
        tree, meta = ckpt.restore(template=_tree(0))
    for got, want in [
        (tree["params"]["fc8"]["kernel"], _tree(3)["params"]["fc8"]["kernel"]),
        (tree["rng"], _tree(3)["rng"]),
    ]:
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
    assert meta == {"config": {"a": [1, 2]}, "data_state": ["{}"]}
    params = checkpoints.restore_params(tmp_path, 3)
    np.testing.assert_array_equal(params["fc8"]["bias"], [3, 4, 5])
    assert checkpoints.restore_meta(tmp_path)["config"] == {"a": [1, 2]}


def test_save_params_for_imported_weights(tmp_path):
    params = _tree(1)["params"]
    checkpoints.save_params(tmp_path, params, meta={"model": {"preset": "small"}}, step=310000)
    assert checkpoints.available_steps(tmp_path) == [310000]
    np.testing.assert_array_equal(
        checkpoints.restore_params(tmp_path)["fc8"]["kernel"], params["fc8"]["kernel"]
    )


def test_interrupted_save_is_invisible(tmp_path):
    """A save killed before Orbax's final rename leaves a temporary directory, which is not a
    checkpoint and is removed when the run reopens its checkpoints."""
    with checkpoints.Checkpointer(tmp_path, async_save=False) as ckpt:
        ckpt.save(1, _tree(1), {})
    ckpt_dir = checkpoints.checkpoint_dir(tmp_path)
    partial = os.path.join(ckpt_dir, "2.orbax-checkpoint-tmp-1234")
    os.makedirs(os.path.join(partial, "state"))
    assert checkpoints.available_steps(tmp_path) == [1]
    with checkpoints.Checkpointer(tmp_path) as ckpt:
        assert ckpt.latest_step() == 1
        ckpt.save(3, _tree(3), {})  # the resumed run goes on; leftovers are gone by then
    assert not os.path.exists(partial)
    assert checkpoints.available_steps(tmp_path) == [3]


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoints at"):
        checkpoints.restore_params(tmp_path / "nothing")
    assert checkpoints.available_steps(tmp_path / "nothing") == []
    with checkpoints.Checkpointer(tmp_path, async_save=False) as ckpt:
        ckpt.save(1, _tree(1), {})
    with pytest.raises(
        FileNotFoundError, match=r"no checkpoint for step 4 .* available steps: \[1\]"
    ):
        checkpoints.restore_params(tmp_path, 4)
    with checkpoints.Checkpointer(tmp_path / "other", async_save=False) as ckpt:
        ckpt.save(1, {"step": np.int32(1)}, {})
    with pytest.raises(ValueError, match="holds no 'params'"):
        checkpoints.restore_params(tmp_path / "other")
    with pytest.raises(ValueError, match="keep_latest"):
        checkpoints.Checkpointer(tmp_path, keep_latest=0)
