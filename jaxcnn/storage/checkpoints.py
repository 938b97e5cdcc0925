"""Run checkpoints with Orbax: the only module that talks to Orbax.

Layout of a run directory::

    <run_dir>/checkpoints/<step>/state   the training state as a pytree of numpy arrays
                                         ({'params', 'opt_state', 'step', 'rng'}; imported
                                         weights have only 'params' and 'step')
    <run_dir>/checkpoints/<step>/meta    JSON: the run's config, the data-iterator state of
                                         every process, anything else the writer adds

Retention (docs/methods.md §2 snapshot schedule): the steps listed as snapshots are kept
permanently; of the other steps only the newest `keep_latest` are kept (the rolling checkpoint a run
resumes from). Orbax writes each step into a temporary directory and renames it when complete, so a
run killed mid-save leaves no readable half-checkpoint; leftovers are removed on the next open.

Analyses read parameters with `restore_params(run_dir, step)` and the run's config with
`restore_meta`; both return plain numpy / JSON values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

STATE, META = "state", "meta"
SUBDIR = "checkpoints"


def checkpoint_dir(run_dir: str | os.PathLike) -> str:
    return os.path.join(os.path.abspath(os.fspath(run_dir)), SUBDIR)


class Checkpointer:
    """Save and restore ``(state_tree, meta)`` pairs of one run (module docstring).

    Every process of a multi-process run must call `save` with the same step (Orbax
    synchronises them; the primary process writes the JSON metadata, and the arrays, which are
    replicated host values, are identical everywhere).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        *,
        snapshot_steps: Iterable[int] = (),
        keep_latest: int = 1,
        async_save: bool = True,
        read_only: bool = False,
    ):
        if keep_latest < 1:
            raise ValueError(f"keep_latest must be >= 1, got {keep_latest}")
        self.directory = checkpoint_dir(run_dir)
        self.snapshot_steps = tuple(sorted(int(s) for s in snapshot_steps))
        policies = [checkpoint_managers.LatestN(keep_latest)]
        if self.snapshot_steps:
            policies.append(checkpoint_managers.CustomSteps(self.snapshot_steps))
        options = ocp.CheckpointManagerOptions(
            preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=not read_only,
            read_only=read_only,
            create=not read_only,
            save_interval_steps=0 if read_only else 1,
        )
        if read_only and not os.path.isdir(self.directory):
            raise FileNotFoundError(f"no checkpoints at {self.directory}")
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=(STATE, META)
        )

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state_tree: Any, meta: dict) -> None:
        """Save a pytree of arrays (converted to host numpy here) and JSON metadata at `step`."""
        host_tree = jax.tree_util.tree_map(np.asarray, jax.device_get(state_tree))
        args = ocp.args.Composite(
            **{STATE: ocp.args.StandardSave(host_tree), META: ocp.args.JsonSave(meta)}
        )
        self._manager.save(int(step), args=args, force=True)

    def restore(self, step: int | None = None, *, template: Any = None) -> tuple[Any, dict]:
        """``(state_tree, meta)`` at `step` (default: the latest). With `template` (a pytree of
        arrays of the saved structure) the arrays come back as numpy arrays of its structure."""
        step = self._resolve(step)
        state_args = ocp.args.StandardRestore(
            None if template is None else jax.tree_util.tree_map(np.asarray, template)
        )
        restored = self._manager.restore(
            step, args=ocp.args.Composite(**{STATE: state_args, META: ocp.args.JsonRestore()})
        )
        tree = jax.tree_util.tree_map(np.asarray, restored[STATE])
        return tree, dict(restored[META])

    def restore_meta(self, step: int | None = None) -> dict:
        step = self._resolve(step)
        restored = self._manager.restore(
            step, args=ocp.args.Composite(**{META: ocp.args.JsonRestore()})
        )
        return dict(restored[META])

    def _resolve(self, step):
        steps = self.all_steps()
        if not steps:
            raise FileNotFoundError(f"no checkpoints in {self.directory}")
        if step is None:
            return steps[-1]
        if int(step) not in steps:
            raise FileNotFoundError(
                f"no checkpoint for step {step} in {self.directory}; available steps: {steps}"
            )
        return int(step)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def available_steps(run_dir: str | os.PathLike) -> list[int]:
    """Steps with a complete checkpoint in `run_dir` (empty if there is none)."""
    if not os.path.isdir(checkpoint_dir(run_dir)):
        return []
    with Checkpointer(run_dir, read_only=True) as ckpt:
        return ckpt.all_steps()


def restore_params(run_dir: str | os.PathLike, step: int | None = None) -> dict:
    """The network parameters of run `run_dir` at `step` (default: the latest checkpoint), as a
    nested dict of numpy arrays ``{layer: {'kernel', 'bias'}}``."""
    with Checkpointer(run_dir, read_only=True) as ckpt:
        tree, _ = ckpt.restore(step)
    if "params" not in tree:
        raise ValueError(f"checkpoint of {run_dir} at step {step} holds no 'params'")
    return tree["params"]


def restore_meta(run_dir: str | os.PathLike, step: int | None = None) -> dict:
    """The JSON metadata (config, data-iterator states, ...) saved with a checkpoint."""
    with Checkpointer(run_dir, read_only=True) as ckpt:
        return ckpt.restore_meta(step)


def save_params(run_dir: str | os.PathLike, params: dict, *, meta: dict, step: int = 0) -> str:
    """Write `params` as a one-step checkpoint of a run (e.g. imported Caffe weights), readable
    by `restore_params` like any snapshot. Returns the checkpoint directory."""
    with Checkpointer(run_dir, snapshot_steps=[step], async_save=False) as ckpt:
        ckpt.save(step, {"params": params, "step": np.asarray(step, np.int32)}, meta)
    return checkpoint_dir(run_dir)
