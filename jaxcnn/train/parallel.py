"""Data parallelism for the training loop, two ways: ``jax.pmap`` and sharded ``jax.jit``.

Both split the global batch evenly over every device of every process, keep one copy of the
parameters and optimizer state per device, and average the gradients (docs/methods.md §2.5):

- ``pmap``: the step runs per device on a leading device axis; gradients and metrics are
  averaged by ``lax.pmean`` over `distributed.AXIS` (`train_step`'s ``axis_name``); the dropout
  key is folded with the device index. Multi-process, each process passes its local rows.
- ``jit``: one program over a 1-d device mesh with axis ``data``: the batch is sharded along
  it, the state is replicated, and XLA inserts the gradient all-reduce (the step is the plain
  global-batch `train_step`, so the dropout masks do not depend on the device count).
  Multi-process, each process's rows become its part of one global array
  (``jax.make_array_from_process_local_data``).

``auto`` is ``jit`` on every backend: since JAX 0.8 ``pmap`` is implemented on ``jit`` and
``shard_map`` and JAX recommends sharded ``jit``. On one CPU device (idle 2-core machine,
alternating in one process) the jitted step of the small preset was faster for full training
(batch 128: 216 vs 252 ms and 199 vs 245 ms; batch 64: 108-115 vs 113-130 ms) and ~10 % slower
for fc-ft (batch 64: 38-41 vs 35-36 ms); the study's training time is mostly full training.

A `Runner` hides the difference from the loop: `put_state` / `host_state` move the state
between one host copy and the devices (checkpoints hold unreplicated host arrays in both
modes, so a run may resume in the other mode), `place` puts this process's host batch on the
devices, `train` / `evaluate` run the compiled steps (the state is donated), `scalars` fetches
metrics to the host.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxcnn.train import devices as device_lib
from jaxcnn.train import distributed
from jaxcnn.train import step as train_lib

PARALLELISMS = ("auto", "pmap", "jit")
MESH_AXIS = "data"


def resolve(parallelism: str, backend: str | None = None) -> str:
    """``pmap`` or ``jit``: ``auto`` is ``jit`` on every backend (module doc); `backend` is
    accepted for callers that name one and does not change the answer."""
    del backend
    if parallelism not in PARALLELISMS:
        raise ValueError(f"parallelism must be one of {PARALLELISMS}, got {parallelism!r}")
    return "jit" if parallelism == "auto" else parallelism


def select_devices(num_local_devices: int) -> list[jax.Device]:
    """This process's devices: all of them (0), or the first `num_local_devices` (one process
    only)."""
    devices = jax.local_devices()
    if not num_local_devices:
        return devices
    if jax.process_count() > 1 and num_local_devices != len(devices):
        raise ValueError("num_local_devices must be 0 (all) in a multi-process run")
    if num_local_devices > len(devices):
        raise ValueError(f"asked for {num_local_devices} devices, {len(devices)} are available")
    return devices[:num_local_devices]


class Runner:
    """What the training loop needs from a parallelism (module docstring)."""

    mode: str

    def __init__(self, devices, *, batch_size: int, eval_batch_size: int = 0):
        self.devices = list(devices)
        self.n = len(self.devices)
        self.per_process, self.per_device = distributed.batch_split(
            batch_size, num_processes=jax.process_count(), local_devices=self.n
        )
        self.eval_batch = eval_batch_size or self.per_process
        if self.eval_batch % self.n:
            raise ValueError(f"eval batch {self.eval_batch} not divisible by {self.n} devices")


@functools.cache
def _pmapped(kind: str, devices: tuple | None):
    """The pmapped train or eval step, built once per process and device set, so that runs in
    one process (e.g. several fine-tunings) reuse compiled programs of equal shapes."""
    if kind == "train":
        step = functools.partial(train_lib.train_step, axis_name=distributed.AXIS)
        return jax.pmap(step, axis_name=distributed.AXIS, devices=devices, donate_argnums=(0,))
    step = functools.partial(train_lib.eval_step, axis_name=distributed.AXIS)
    return jax.pmap(step, axis_name=distributed.AXIS, devices=devices)


class PmapRunner(Runner):
    mode = "pmap"

    def __init__(self, devices, **kw):
        super().__init__(devices, **kw)
        self.multi = jax.process_count() > 1
        pmap_devices = None if self.multi else tuple(self.devices)
        self.train = _pmapped("train", pmap_devices)
        self.evaluate = _pmapped("eval", pmap_devices)

    def put_state(self, state):
        return distributed.replicate(state, self.devices)

    def host_state(self, d_state):
        return distributed.unreplicate(d_state)

    def place(self, batch: dict):
        if self.multi:  # pmap assembles each process's local rows itself
            return device_lib.split_for_devices(batch, self.n)
        return device_lib.shard_batch(batch, self.devices)  # asynchronous copies

    def scalars(self, tree) -> dict:
        return {k: float(np.asarray(v)[0]) for k, v in jax.device_get(tree).items()}


@functools.cache
def _jitted(kind: str, mesh: Mesh):
    """The train or eval step compiled for `mesh`: state replicated, batch rows sharded over
    `MESH_AXIS`, outputs replicated (cached like `_pmapped`)."""
    replicated = NamedSharding(mesh, PartitionSpec())
    rows = NamedSharding(mesh, PartitionSpec(MESH_AXIS))
    step = train_lib.train_step if kind == "train" else train_lib.eval_step
    return jax.jit(
        step,
        in_shardings=(replicated, rows),
        out_shardings=replicated,
        donate_argnums=(0,) if kind == "train" else (),
    )


class JitRunner(Runner):
    mode = "jit"

    def __init__(self, devices, **kw):
        super().__init__(devices, **kw)
        # All processes' devices (each process's block contiguous, in process order).
        mesh_devices = jax.devices() if jax.process_count() > 1 else self.devices
        self.mesh = Mesh(np.asarray(mesh_devices), (MESH_AXIS,))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.rows = NamedSharding(self.mesh, PartitionSpec(MESH_AXIS))
        self.train = _jitted("train", self.mesh)
        self.evaluate = _jitted("eval", self.mesh)

    def put_state(self, state):
        def put(x):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, self.replicated, lambda i: x[i])

        return jax.tree_util.tree_map(put, state)

    def host_state(self, d_state):
        return jax.tree_util.tree_map(lambda x: np.asarray(x.addressable_data(0)), d_state)

    def place(self, batch: dict):
        return {
            k: jax.make_array_from_process_local_data(self.rows, np.asarray(v))
            for k, v in batch.items()
        }

    def scalars(self, tree) -> dict:
        return {k: float(np.asarray(v.addressable_data(0))) for k, v in tree.items()}


def make_runner(
    parallelism: str,
    *,
    batch_size: int,
    eval_batch_size: int = 0,
    num_local_devices: int = 0,
) -> Runner:
    """The `Runner` of `parallelism` (``auto`` resolved by `resolve`) over this process's
    devices (`select_devices`); `batch_size` is global, `eval_batch_size` per process."""
    cls = PmapRunner if resolve(parallelism) == "pmap" else JitRunner
    return cls(
        select_devices(num_local_devices), batch_size=batch_size, eval_batch_size=eval_batch_size
    )
