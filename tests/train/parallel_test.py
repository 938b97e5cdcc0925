"""Tests for jaxcnn.train.parallel on the 8 fake CPU devices (tests/conftest.py): pmap and
sharded jit against one device, the jit mode's independence of the device count, exact
resumption in jit mode and across modes, the choice of mode."""

import jax
import numpy as np
import pytest

from jaxcnn import train
from jaxcnn.storage import checkpoints
from jaxcnn.train import loop, parallel
from jaxcnn.train import step as step_lib

TINY = {"width": 0.125, "fc_width": 32, "input_size": 32}


class Batches:
    """Deterministic batches; batch i depends only on i, and the iterator's state is i."""

    def __init__(self, batch):
        self.batch, self.i = batch, 0

    def __next__(self):
        rng = np.random.default_rng(self.i)
        self.i += 1
        labels = rng.integers(0, 10, self.batch).astype(np.int32)
        images = (
            rng.normal(size=(self.batch, 32, 32, 3)).astype(np.float32)
            + labels[:, None, None, None]
        )
        return {"image": 16 * images, "label": labels}

    def get_state(self):
        return {"index": self.i}

    def set_state(self, state):
        self.i = state["index"]


def _config(**kw):
    base = dict(
        num_classes=10,
        num_steps=3,
        batch_size=16,
        model_overrides=TINY,
        checkpoint_every=2,
        log_every=10,
        base_lr=0.01,
    )
    return train.TrainConfig(**{**base, **kw})


def _run(runner, state, num_steps):
    data = Batches(16)
    d_state = runner.put_state(state)
    for _ in range(num_steps):
        d_state, metrics = runner.train(d_state, runner.place(next(data)))
    assert np.isfinite(runner.scalars(metrics)["loss"])
    return runner.host_state(d_state)


def _assert_close(a, b, **tol):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol)


def test_pmap_and_jit_on_8_devices_equal_one_device():
    """Without dropout (whose masks depend on the device split under pmap) both modes compute
    the one-device step: same parameters and optimizer state after 3 steps (float32 sums in a
    different order: rtol 1e-5)."""
    cfg = _config(model_overrides={**TINY, "dropout_rate": 0.0})
    state = train.initial_state(cfg)
    data, ref = Batches(16), state
    one = jax.jit(step_lib.train_step)
    for _ in range(3):
        ref, _ = one(ref, next(data))
    for mode in ("pmap", "jit"):
        runner = parallel.make_runner(mode, batch_size=16)
        assert runner.mode == mode and runner.n == 8 and runner.per_device == 2
        got = _run(runner, state, 3)
        assert int(got.step) == 3
        _assert_close(got.params, ref.params, rtol=1e-5, atol=1e-7)
        _assert_close(got.opt_state, ref.opt_state, rtol=1e-5, atol=1e-7)


def test_jit_with_dropout_does_not_depend_on_the_device_count():
    cfg = _config()
    state = train.initial_state(cfg)
    one = _run(parallel.make_runner("jit", batch_size=16, num_local_devices=1), state, 3)
    eight = _run(parallel.make_runner("jit", batch_size=16), state, 3)
    _assert_close(eight.params, one.params, rtol=1e-5, atol=1e-7)


def test_jit_batch_is_sharded_and_state_replicated():
    runner = parallel.make_runner("jit", batch_size=16)
    batch = runner.place(next(Batches(16)))
    assert batch["image"].shape == (16, 32, 32, 3)
    assert {s.data.shape[0] for s in batch["image"].addressable_shards} == {2}
    d_state = runner.put_state(train.initial_state(_config()))
    kernel = d_state.params["conv1"]["kernel"]
    assert kernel.sharding.is_fully_replicated and len(kernel.addressable_shards) == 8


def test_jit_resume_is_exact_and_a_pmap_checkpoint_resumes_under_jit(tmp_path):
    full, part, other = tmp_path / "full", tmp_path / "part", tmp_path / "other"
    loop.train(_config(parallelism="jit", num_steps=4), str(full), train_data=Batches(16))
    loop.train(_config(parallelism="jit"), str(part), train_data=Batches(16))
    summary = loop.train(_config(parallelism="jit", num_steps=4), str(part), train_data=Batches(16))
    assert summary["resumed_from"] == 3
    a, b = checkpoints.restore_params(full), checkpoints.restore_params(part)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert checkpoints.restore_meta(part)["data_state"] == ['{"json": {"index": 4}}']
    # A pmap checkpoint holds the same host arrays: it resumes under jit. Without dropout
    # (whose masks differ between the modes) the result is the one-device computation.
    no_dropout = {**TINY, "dropout_rate": 0.0}
    cfg = _config(parallelism="pmap", num_steps=2, model_overrides=no_dropout)
    loop.train(cfg, str(other), train_data=Batches(16))
    cfg = _config(parallelism="jit", num_steps=4, model_overrides=no_dropout)
    summary = loop.train(cfg, str(other), train_data=Batches(16))
    assert summary["resumed_from"] == 2
    ref, data = train.initial_state(cfg), Batches(16)
    for _ in range(4):
        ref, _ = jax.jit(step_lib.train_step)(ref, next(data))
    _assert_close(checkpoints.restore_params(other), ref.params, rtol=1e-5, atol=1e-7)


def test_resolve_and_config_choices():
    assert all(parallel.resolve("auto", b) == "jit" for b in ("cpu", "gpu", "tpu"))
    assert parallel.resolve("pmap", "gpu") == "pmap" and parallel.resolve("jit", "cpu") == "jit"
    assert parallel.make_runner("auto", batch_size=8).mode == "jit"  # tests run on CPU
    assert parallel.make_runner("pmap", batch_size=8).mode == "pmap"
    with pytest.raises(ValueError, match="parallelism must be one of"):
        parallel.resolve("shard_map")
    with pytest.raises(ValueError, match="parallelism must be one of"):
        _config(parallelism="shard_map")
    with pytest.raises(ValueError, match="asked for 9 devices"):
        parallel.make_runner("jit", batch_size=18, num_local_devices=9)
    with pytest.raises(ValueError, match="does not split evenly"):
        parallel.make_runner("jit", batch_size=12)
