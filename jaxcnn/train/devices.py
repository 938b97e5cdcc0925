"""The one place where host batches meet devices.

The input pipeline yields host numpy batches and knows nothing about devices (Flax's imagenet
example). Here a batch is split over the local devices in the layout `jax.pmap` expects
(`split_for_devices` on the host, `shard_batch` placed on the devices, `prefetch_to_device` a few
batches ahead), or, for a jitted function over a 1-d device mesh, padded and sharded along its
rows (`data_parallel`, used by feature extraction).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def split_for_devices(batch: dict, num_devices: int) -> dict:
    """Reshape host arrays ``[N, ...]`` to ``[num_devices, N / num_devices, ...]`` for pmap."""
    out = {}
    for key, x in batch.items():
        x = np.asarray(x)
        if x.shape[0] % num_devices:
            raise ValueError(
                f"batch[{key!r}] has {x.shape[0]} examples, not divisible by {num_devices} devices"
            )
        out[key] = x.reshape(num_devices, x.shape[0] // num_devices, *x.shape[1:])
    return out


def shard_batch(batch: dict, devices: Sequence[jax.Device] | None = None) -> dict:
    """{k: [B, ...]} -> {k: [n, B / n, ...]} with row i placed on devices[i] (default: all
    local devices). Raises ValueError when B is not divisible by n or the leaves disagree on B."""
    devices = list(jax.local_devices() if devices is None else devices)
    sizes = {np.shape(x)[0] for x in jax.tree_util.tree_leaves(batch)}
    if len(sizes) != 1:
        raise ValueError(f"batch leaves have different leading sizes {sorted(sizes)}")
    mesh = Mesh(np.array(devices), ("devices",))
    sharding = NamedSharding(mesh, PartitionSpec("devices"))
    return jax.device_put(split_for_devices(batch, len(devices)), sharding)


def prefetch_to_device(
    batches: Iterable[dict], *, size: int = 2, devices: Sequence[jax.Device] | None = None
) -> Iterator[dict]:
    """Yields `shard_batch(batch, devices)` for each batch, `size` batches ahead (transfers
    are asynchronous, so the next batches copy while the current step runs)."""
    if size < 1:
        raise ValueError(f"prefetch size must be >= 1, got {size}")
    queue = collections.deque()
    iterator = iter(batches)
    for batch in iterator:
        queue.append(shard_batch(batch, devices))
        if len(queue) > size:
            yield queue.popleft()
    while queue:
        yield queue.popleft()


def data_parallel(fn, params, devices: Sequence[jax.Device] | None = None):
    """``(jitted fn(params, images), params placed, place(images))`` for data parallelism over a
    1-d mesh of `devices`: parameters replicated, image rows sharded, outputs gathered. `place`
    pads a host batch with zero rows to a multiple of the device count (their outputs are to be
    dropped) and shards it. On one device it is a plain `jax.jit` and `place` returns the batch
    as it is.

    The default is every local device, except on a CPU, where it is the first: CPU devices are
    slices of the same cores (docs/methods.md §2.8), a split forward pass gained 5-18 % alone,
    and its all-gather stalls, until XLA aborts the process, while another thread's program
    holds the thread pool (the study extracts features beside its other analyses)."""
    if devices is None:
        devices = jax.local_devices()
        devices = devices[:1] if devices[0].platform == "cpu" else devices
    devices = list(devices)
    if len(devices) == 1:
        return jax.jit(fn), params, (lambda images: images)
    mesh = Mesh(np.array(devices), ("batch",))
    replicated = NamedSharding(mesh, PartitionSpec())
    by_batch = NamedSharding(mesh, PartitionSpec("batch"))
    params = jax.device_put(params, replicated)

    def place(images):
        pad = -len(images) % len(devices)
        if pad:  # zero rows to fill every device; their outputs are dropped
            images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), images.dtype)])
        return jax.device_put(images, by_batch)

    return jax.jit(fn, out_shardings=replicated), params, place
