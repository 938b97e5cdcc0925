"""devices: shard_batch layout on the 8 fake CPU devices, prefetch order, errors."""

import jax
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
