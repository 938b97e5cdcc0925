"""What makes a run directory resumable, and whose it is (`jaxcnn.train.loop` uses these).

- the training state as the pytree a checkpoint holds (`state_tree`) and back (`restore_into`);
- the data iterators' states as strings in the checkpoint's metadata (`encode_data_state`);
- which settings a resumed run may change (`check_resumable`, `RESUMABLE_CHANGES`);
- ownership: process 0 holds the run directory's lock for the run (`owning`,
  `jaxcnn.storage.locks`), and every process stops at once when another run holds it.
"""

from __future__ import annotations

import contextlib
import json

import jax
import jax.numpy as jnp

from jaxcnn.storage import locks
from jaxcnn.train import distributed
from jaxcnn.train import step as train_lib
from jaxcnn.train.config import RESUMABLE_CHANGES, TrainConfig


def state_tree(state: train_lib.TrainState) -> dict:
    return {
        "params": state.params,
        "opt_state": state.opt_state,
        "step": state.step,
        "rng": state.rng,
    }


def restore_into(state: train_lib.TrainState, tree: dict) -> train_lib.TrainState:
    return state.replace(
        params=tree["params"],
        step=jnp.asarray(tree["step"]),
        rng=jnp.asarray(tree["rng"]),
        opt_state=jax.tree_util.tree_unflatten(
            jax.tree_util.tree_structure(state.opt_state),
            jax.tree_util.tree_leaves(tree["opt_state"]),
        ),
    )


def encode_data_state(state) -> str:
    if isinstance(state, bytes):
        return json.dumps({"bytes": state.decode("utf-8")})
    return json.dumps({"json": state})


def decode_data_state(text: str):
    d = json.loads(text)
    return d["bytes"].encode("utf-8") if "bytes" in d else d["json"]


def check_resumable(saved: dict, config: TrainConfig) -> None:
    now = config.to_dict()
    now["snapshot_steps"] = list(now["snapshot_steps"])
    diff = sorted(
        k
        for k in set(saved) | set(now)
        if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k)
    )
    if diff:
        raise ValueError(
            "the run directory holds a run with different settings "
            f"({', '.join(f'{k}: {saved.get(k)!r} -> {now.get(k)!r}' for k in diff)})"
            "; use a new run directory"
        )


@contextlib.contextmanager
def owning(run_dir: str):
    """Process 0 locks the run directory for the run; every process learns whether it could
    (a collective), so all of them stop together when another run owns it."""
    lock, error = None, None
    if jax.process_index() == 0:
        try:
            lock = locks.acquire(run_dir, what="run directory")
        except locks.DirectoryInUseError as e:
            error = e
    if distributed.any_process(error is not None):
        raise error or locks.DirectoryInUseError(
            f"run directory {run_dir} is in use: process 0 could not lock it"
        )
    try:
        yield
    finally:
        if lock is not None:
            lock.release()
