"""The one place where host batches meet devices: `shard_batch` and `prefetch_to_device`.

The input pipeline yields host numpy batches and knows nothing about devices (STYLE, Flax's
imagenet example); these two functions split a batch over the local devices, the layout
`jax.pmap` expects, and keep a few batches in flight.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator, Sequence

import jax
import numpy as np


def shard_batch(batch: dict, devices: Sequence[jax.Device] | None = None) -> dict:
    """{k: [B, ...]} -> {k: [n, B / n, ...]} with row i placed on devices[i] (default: all
    local devices). Raises ValueError when B is not divisible by n or the leaves disagree on B."""
    devices = list(jax.local_devices() if devices is None else devices)
    n = len(devices)
    sizes = {np.shape(x)[0] for x in jax.tree_util.tree_leaves(batch)}
    if len(sizes) != 1:
        raise ValueError(f"batch leaves have different leading sizes {sorted(sizes)}")
    (b,) = sizes
    if b % n:
        raise ValueError(f"batch of {b} does not split over {n} devices")

    mesh = jax.sharding.Mesh(np.array(devices), ("devices",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("devices"))

    def put(x):
        x = np.asarray(x)
        return jax.device_put(x.reshape(n, b // n, *x.shape[1:]), sharding)

    return jax.tree_util.tree_map(put, batch)


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
