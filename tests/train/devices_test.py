"""devices: shard_batch layout on the 8 fake CPU devices, prefetch order, errors; data_parallel's
one-device default on a CPU and its sharded path over named devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.train import devices


def _batch(b):
    return {"image": np.arange(b * 2, dtype=np.float32).reshape(b, 2), "label": np.arange(b)}


def test_shard_batch_layout_matches_pmap():
    assert jax.local_device_count() == 8
    sharded = devices.shard_batch(_batch(16))
    assert sharded["image"].shape == (8, 2, 2) and sharded["label"].shape == (8, 2)
    for shard in sharded["label"].addressable_shards:
        i = shard.index[0].start
        assert shard.device == jax.local_devices()[i]
        np.testing.assert_array_equal(np.asarray(shard.data)[0], [2 * i, 2 * i + 1])
    sums = jax.pmap(lambda x: x["label"].sum())(sharded)
    np.testing.assert_array_equal(sums, np.arange(16).reshape(8, 2).sum(1))


def test_shard_batch_on_a_subset_of_devices():
    two = jax.local_devices()[:2]
    sharded = devices.shard_batch(_batch(6), two)
    assert sharded["label"].shape == (2, 3)
    assert {s.device for s in sharded["label"].addressable_shards} == set(two)


def test_prefetch_keeps_order_and_all_batches():
    batches = [{"label": np.full(8, k)} for k in range(5)]
    got = [int(np.asarray(b["label"])[0, 0]) for b in devices.prefetch_to_device(batches, size=2)]
    assert got == [0, 1, 2, 3, 4]


def test_errors():
    with pytest.raises(ValueError, match="not divisible by 8 devices"):
        devices.shard_batch(_batch(12))
    with pytest.raises(ValueError, match="different leading sizes"):
        devices.shard_batch({"a": np.zeros(8), "b": np.zeros(16)})
    with pytest.raises(ValueError, match="prefetch size"):
        next(devices.prefetch_to_device([_batch(8)], size=0))


def _forward(params, x):
    return {"y": x @ params["w"] + params["b"][None, :], "s": jnp.sum(x, axis=1)}


def test_data_parallel_on_a_cpu_defaults_to_one_device():
    """CPU devices share the cores: the default is a plain jit on the first (no collectives)."""
    params = {"w": np.ones((3, 2), np.float32), "b": np.zeros(2, np.float32)}
    fn, placed, place = devices.data_parallel(_forward, params)
    x = np.arange(15, dtype=np.float32).reshape(5, 3)
    assert place(x) is x
    out = fn(placed, place(x))
    assert out["y"].sharding.device_set == {jax.local_devices()[0]}
    np.testing.assert_allclose(out["y"], x @ params["w"])


@pytest.mark.parametrize("count", [2, 8])
def test_data_parallel_over_named_devices_pads_and_matches_one_device(count):
    """Named devices shard the rows (5 rows padded to a multiple of `count`); the real rows'
    outputs equal the one-device computation."""
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 2)).astype(np.float32), "b": np.float32([0.5, -1.0])}
    x = rng.normal(size=(5, 3)).astype(np.float32)
    fn, placed, place = devices.data_parallel(_forward, params, jax.local_devices()[:count])
    sharded = place(x)
    assert sharded.shape[0] % count == 0 and len(sharded.sharding.device_set) == count
    out = fn(placed, sharded)
    want = _forward(params, x)
    for k in want:
        np.testing.assert_allclose(np.asarray(out[k])[:5], want[k], rtol=1e-6)
        pad = np.zeros((len(sharded) - 5, 3), np.float32)
        np.testing.assert_allclose(np.asarray(out[k])[5:], _forward(params, pad)[k], rtol=1e-6)
