"""Multi-device and multi-host plumbing for data-parallel training (pmap or sharded jit,
`jaxcnn.train.parallel`).

Model: every process (host) runs the same program on its local devices; ``pmap`` spans all
devices of all processes, so collectives (``lax.pmean`` / ``lax.psum`` over the named axis) are
global. Each process reads its own shard of the data (``process_index`` of ``process_count``)
and splits its part of the global batch evenly over its local devices.

`initialize` starts ``jax.distributed`` from explicit arguments, from the environment
(``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``) or from a SLURM
allocation; with none of these it leaves JAX single-process. On CPU, cross-process collectives
use gloo.

Losing a peer: JAX's coordination service declares a process dead when it has sent no heartbeat
for ``peer_timeout_s`` seconds (default 5, instead of JAX's 100) and then ends the others; the
shutdown barrier at exit waits as long at most (JAX: 300 s). A collective with a dead peer fails
at once; `lost_processes` names the processes the service no longer sees (the scripts' top level
prints it, experiments/errors.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from collections.abc import Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

log = logging.getLogger(__name__)
AXIS = "batch"  # the pmap axis name used by the trainer
PEER_TIMEOUT_S = 5  # heartbeat and shutdown timeouts: a lost process ends the others in ~5 s
_settings = {"peer_timeout_s": PEER_TIMEOUT_S}


@dataclasses.dataclass(frozen=True)
class ProcessConfig:
    """How this process joins a multi-process run (or set JAX_COORDINATOR_ADDRESS /
    JAX_NUM_PROCESSES / JAX_PROCESS_ID, or run under SLURM); empty/negative: not given."""

    coordinator_address: str = dataclasses.field(
        default="", metadata={"help": "host:port of process 0 (multi-process runs)."}
    )
    num_processes: int = dataclasses.field(
        default=0, metadata={"help": "Number of processes (0: from the environment or 1)."}
    )
    process_id: int = dataclasses.field(
        default=-1, metadata={"help": "This process's index (-1: from the environment)."}
    )
    compilation_cache_dir: str = dataclasses.field(
        default="", metadata={"help": "JAX persistent compilation cache ('': off)."}
    )
    peer_timeout_s: int = dataclasses.field(
        default=PEER_TIMEOUT_S,
        metadata={"help": "Seconds without heartbeats after which a lost process ends the run."},
    )

    def start(self) -> bool:
        """`initialize` with these settings and the compilation cache; True if multi-process."""
        multi = initialize(
            coordinator_address=self.coordinator_address or None,
            num_processes=self.num_processes or None,
            process_id=None if self.process_id < 0 else self.process_id,
            peer_timeout_s=self.peer_timeout_s,
        )
        if self.compilation_cache_dir:
            jax.config.update("jax_compilation_cache_dir", self.compilation_cache_dir)
        return multi


def initialize(
    *,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: Sequence[int] | None = None,
    peer_timeout_s: int = PEER_TIMEOUT_S,
) -> bool:
    """Start multi-process JAX if asked to; returns True when running multi-process.

    Precedence: explicit arguments, then ``JAX_COORDINATOR_ADDRESS``/``JAX_NUM_PROCESSES``/
    ``JAX_PROCESS_ID``, then a SLURM job step with more than one task (JAX detects the rest).
    Must run before any other JAX call that touches devices.
    """
    env = os.environ
    coordinator_address = coordinator_address or env.get("JAX_COORDINATOR_ADDRESS") or None
    if num_processes is None and env.get("JAX_NUM_PROCESSES"):
        num_processes = int(env["JAX_NUM_PROCESSES"])
    if process_id is None and env.get("JAX_PROCESS_ID"):
        process_id = int(env["JAX_PROCESS_ID"])
    slurm = int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in env
    if not coordinator_address and not slurm:
        if num_processes not in (None, 1):
            raise ValueError(f"num_processes={num_processes} needs a coordinator address")
        return False
    if peer_timeout_s < 1:
        raise ValueError(f"peer_timeout_s must be >= 1, got {peer_timeout_s}")
    # CPU collectives across processes (harmless on GPU/TPU, where they are not used).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    timeouts = dict(
        heartbeat_timeout_seconds=peer_timeout_s, shutdown_timeout_seconds=peer_timeout_s
    )
    _settings["peer_timeout_s"] = peer_timeout_s
    if coordinator_address:
        if num_processes is None or process_id is None:
            raise ValueError("a coordinator address needs num_processes and process_id")
        if not 0 <= process_id < num_processes:
            raise ValueError(f"process_id {process_id} not in [0, {num_processes})")
        jax.distributed.initialize(
            coordinator_address,
            num_processes,
            process_id,
            local_device_ids=local_device_ids,
            **timeouts,
        )
    else:
        jax.distributed.initialize(local_device_ids=local_device_ids, **timeouts)
    log.info(
        "process %d of %d, %d local / %d global devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )
    return True


def batch_split(global_batch: int, *, num_processes: int, local_devices: int) -> tuple[int, int]:
    """``(per_process, per_device)`` batch sizes; the global batch must split evenly."""
    total = num_processes * local_devices
    if global_batch <= 0 or global_batch % total:
        raise ValueError(
            f"global batch {global_batch} does not split evenly over "
            f"{num_processes} processes x {local_devices} devices = {total}"
        )
    return global_batch // num_processes, global_batch // total


def replicate(tree, devices: Sequence[jax.Device], axis_name: str = AXIS):
    """Copies of every leaf stacked along a new leading device axis, ready for a pmapped
    function (slice i on device i).

    Single-process, the copies are placed with the sharding that ``pmap`` gives its outputs
    (a 1-d mesh over `devices` named `axis_name`), so the first call and all later calls share one
    compiled program; multi-process, host arrays are returned and ``pmap`` assembles them.
    """
    n = len(devices)
    stacked = jax.tree_util.tree_map(
        lambda x: np.broadcast_to(np.asarray(x), (n, *np.shape(x))).copy(), tree
    )
    if jax.process_count() > 1:
        return stacked
    sharding = NamedSharding(Mesh(np.asarray(devices), (axis_name,)), PartitionSpec(axis_name))
    return jax.device_put(stacked, sharding)


def unreplicate(tree):
    """The first local device's copy of a replicated pytree (a pmap output), as host numpy."""

    def first(x):
        if isinstance(x, jax.Array):
            shard = min(x.addressable_shards, key=lambda s: s.index[0].start or 0)
            return np.asarray(shard.data)[0]
        return np.asarray(x)[0]

    return jax.tree_util.tree_map(first, tree)


def allgather_strings(text: str) -> list[str]:
    """Every process's `text`, in process order (one element when single-process)."""
    if jax.process_count() == 1:
        return [text]
    data = np.frombuffer(text.encode("utf-8"), np.uint8)
    lengths = multihost_utils.process_allgather(np.asarray([data.size], np.int32))
    padded = np.zeros(int(np.max(lengths)), np.uint8)
    padded[: data.size] = data
    gathered = np.asarray(multihost_utils.process_allgather(padded))
    return [
        bytes(row[: int(n)]).decode("utf-8")
        for row, n in zip(gathered, np.ravel(lengths), strict=True)
    ]


def any_process(flag: bool) -> bool:
    """True if `flag` is true on any process (a collective: every process must call it)."""
    if jax.process_count() == 1:
        return bool(flag)
    return bool(np.any(multihost_utils.process_allgather(np.asarray([flag], np.int32))))


def same_on_all_processes(values: dict) -> bool:
    """Whether a JSON-able dict is identical on every process (a collective)."""
    texts = allgather_strings(json.dumps(values, sort_keys=True))
    return all(t == texts[0] for t in texts)


def _client():
    from jax._src import distributed as jax_distributed  # the client: no public accessor

    return jax_distributed.global_state.client


def leave_together() -> None:
    """Wait (at most the peer timeout) until every live process has reached this call, so that
    process 0, which hosts the coordination service, exits last (the others' last words get
    out before the service goes)."""
    if jax.distributed.is_initialized():
        try:
            _client().wait_at_barrier("jaxcnn_leave", _settings["peer_timeout_s"] * 1000)
        except Exception:  # a process is gone or stays: leave anyway
            pass


def lost_processes() -> list[int] | None:
    """Processes of this multi-process run that the coordination service no longer sees
    (waits at most about the peer timeout, until the service has decided); [] when all are
    alive or the run is single-process, None when it cannot tell (e.g. process 0, which hosts
    the service, is gone)."""
    if not jax.distributed.is_initialized():
        return []
    client, n = _client(), jax.process_count()
    found: dict = {}

    def ask():
        try:
            found["live"] = client.get_live_nodes(list(range(n)))
        except Exception:  # the service is unreachable: its host is lost
            found["live"] = None

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout=_settings["peer_timeout_s"] + 2)
    live = found.get("live")
    if live is None:
        return None
    return sorted(set(range(n)) - {int(i) for i in live})


class Preempted(RuntimeError):
    """The run stopped on SIGTERM after saving the step every process reached."""


def preemption_reached(step: int) -> bool:
    """True, on every process at the same `step`, once any process of a multi-process run got
    SIGTERM (JAX's preemption sync manager holds SIGTERM there); always False single-process,
    where SIGTERM ends the process."""
    if not jax.distributed.is_initialized():
        return False
    return bool(multihost_utils.reached_preemption_sync_point(step))
