"""Tests for jaxcnn.storage.checkpoints: retention (snapshots + rolling latest), round trips,
metadata, errors, that an interrupted save leaves no readable checkpoint, and damaged steps
(truncated, partly copied, empty, no _METADATA, flipped bytes: made for real on disk) detected,
named and skipped."""

import collections
import logging
import os
import shutil

import numpy as np
import pytest

from jaxcnn.storage import checkpoints, integrity


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
    digest = meta.pop("state_sha256")  # added by save
    assert meta == {"config": {"a": [1, 2]}, "data_state": ["{}"]} and len(digest) == 64
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


# --- damaged checkpoints: detected, the previous step used, said ------------------------------
def _big_tree(step):
    """A state whose kernel does not compress, so that its array file is large."""
    tree = _tree(step)
    kernel = np.random.default_rng(step).normal(size=(100, 300)).astype(np.float32)
    tree["params"]["fc8"]["kernel"] = kernel
    return tree


def _two_steps(run_dir):
    with checkpoints.Checkpointer(run_dir, snapshot_steps=[1], async_save=False) as ckpt:
        ckpt.save(1, _big_tree(1), {"step": 1})
        ckpt.save(2, _big_tree(2), {"step": 2})
    return os.path.join(checkpoints.checkpoint_dir(run_dir), "2")


def _largest_file(step_dir):
    files = [os.path.join(d, n) for d, _, names in os.walk(step_dir) for n in names]
    return max(files, key=os.path.getsize)


def _truncate(step_dir):
    path = _largest_file(step_dir)
    os.truncate(path, os.path.getsize(path) // 2)


def _flip_bit(step_dir):
    path = _largest_file(step_dir)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x10
    with open(path, "wb") as f:
        f.write(data)


def _empty(step_dir):
    shutil.rmtree(step_dir)
    os.makedirs(step_dir)


def _partly_copied(step_dir):
    """A copy of the step folder that stopped before the array data files."""
    copy = step_dir + ".copy"
    for d, _, names in os.walk(step_dir):
        for name in names:
            src = os.path.join(d, name)
            rel = os.path.relpath(src, step_dir)
            if f"{os.sep}d{os.sep}" in f"{os.sep}{rel}":
                continue
            os.makedirs(os.path.dirname(os.path.join(copy, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(copy, rel))
    shutil.rmtree(step_dir)
    os.replace(copy, step_dir)


def _no_metadata(step_dir):
    os.remove(os.path.join(step_dir, "state", "_METADATA"))


DAMAGES = {
    "truncated": (_truncate, "OUT_OF_RANGE"),
    "bit-flipped": (_flip_bit, "do not match the sha256"),
    "empty": (_empty, "empty or copied only in part"),
    "partly-copied": (_partly_copied, "NOT_FOUND"),
    "no-_METADATA": (_no_metadata, "_METADATA"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_latest_step_falls_back_and_says_so(tmp_path, caplog, damage):
    make_damage, reason = DAMAGES[damage]
    step_dir = _two_steps(tmp_path)
    make_damage(step_dir)
    with caplog.at_level(logging.WARNING, logger="jaxcnn.storage.checkpoints"):
        params = checkpoints.restore_params(tmp_path)
        meta = checkpoints.restore_meta(tmp_path)
    np.testing.assert_array_equal(params["fc8"]["kernel"], _big_tree(1)["params"]["fc8"]["kernel"])
    assert meta["step"] == 1
    assert checkpoints.verified_step(tmp_path)[0] == 1
    lines = [r.getMessage() for r in caplog.records]
    said = [line for line in lines if "checkpoint step 2 " in line and "damaged" in line]
    assert len(said) == 1 and reason in said[0], lines  # one line, step and reason, once
    assert "\n" not in said[0] and "tensorstore_spec" not in said[0]
    assert any("using step 1" in line for line in lines), lines
    with pytest.raises(checkpoints.DamagedCheckpointError, match=r"step 2 .* damaged") as err:
        checkpoints.restore_params(tmp_path, 2)  # asked for explicitly: an error naming it
    assert err.value.step == 2


def test_every_step_damaged_is_an_error(tmp_path):
    step_dir = _two_steps(tmp_path)
    _flip_bit(step_dir)
    _empty(os.path.join(os.path.dirname(step_dir), "1"))
    with pytest.raises(checkpoints.DamagedCheckpointError, match="no usable checkpoint"):
        checkpoints.restore_params(tmp_path)


def test_set_aside_moves_damaged_steps_and_saving_goes_on(tmp_path):
    step_dir = _two_steps(tmp_path)
    _truncate(step_dir)
    with checkpoints.Checkpointer(tmp_path, snapshot_steps=[1], async_save=False) as ckpt:
        restored = ckpt.restore_good()
        assert (restored.step, restored.skipped) == (1, (2,))
        (moved,) = ckpt.set_aside(restored.skipped)
        assert ckpt.all_steps() == [1]
        ckpt.save(2, _big_tree(2), {"step": 2})  # the resumed run can write step 2 again
    assert os.path.isdir(moved) and os.path.dirname(moved).endswith("damaged-checkpoints")
    assert checkpoints.restore_meta(tmp_path)["step"] == 2


def test_digest_is_recorded_and_independent_of_container_types(tmp_path):
    with checkpoints.Checkpointer(tmp_path, async_save=False) as ckpt:
        ckpt.save(1, _tree(1), {})
    step, digest = checkpoints.verified_step(tmp_path)
    assert step == 1 and digest == checkpoints.restore_meta(tmp_path)["state_sha256"]
    assert digest == integrity.tree_digest(_tree(1))
    changed = _tree(1)
    changed["rng"] = np.array([7, 2], np.uint32)
    assert integrity.tree_digest(changed) != digest
    Pair = collections.namedtuple("Pair", ["z", "a"])  # fields not in sorted order
    as_tuple = {"s": Pair(np.ones(2), np.zeros(3))}
    as_dict = {"s": {"a": np.zeros(3), "z": np.ones(2)}}
    assert integrity.tree_digest(as_tuple) == integrity.tree_digest(as_dict)


def test_recorded_digests_read_metadata_only(tmp_path):
    step_dir = _two_steps(tmp_path)
    recorded = checkpoints.recorded_digests(tmp_path)
    assert recorded == {
        "1": integrity.tree_digest(_big_tree(1)),
        "2": integrity.tree_digest(_big_tree(2)),
    }
    _flip_bit(step_dir)  # arrays changed: the record stays (restores detect it)
    assert checkpoints.recorded_digests(tmp_path) == recorded
    _empty(step_dir)
    assert checkpoints.recorded_digests(tmp_path) == {"1": recorded["1"], "2": None}
    assert checkpoints.recorded_digests(tmp_path / "none") == {}
