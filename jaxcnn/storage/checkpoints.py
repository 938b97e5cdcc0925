"""Run checkpoints with Orbax: the only module that talks to Orbax.

Layout of a run directory::

    <run_dir>/checkpoints/<step>/state   the training state as a pytree of numpy arrays
                                         ({'params', 'opt_state', 'step', 'rng'}; imported
                                         weights have only 'params' and 'step')
    <run_dir>/checkpoints/<step>/meta    JSON: the run's config, the data-iterator state of
                                         every process, anything else the writer adds, and
                                         ``state_sha256``, the digest of the state
    <run_dir>/damaged-checkpoints/       damaged steps a resumed run moved out of the way

Retention (docs/methods.md §2 snapshot schedule): the steps listed as snapshots are kept
permanently; of the other steps only the newest `keep_latest` are kept (the rolling checkpoint a run
resumes from). Orbax writes each step into a temporary directory and renames it when complete, so a
run killed mid-save leaves no readable half-checkpoint; leftovers are removed on the next open.

Integrity: every save records ``state_sha256`` (`jaxcnn.storage.integrity.tree_digest` of the
host state) in the step's metadata, and every restore recomputes it. A step that cannot be read
(a truncated or missing array file, an empty or partly copied step folder, a missing
``_METADATA``) or whose digest differs (flipped bytes) is *damaged*: one warning line names the
step and the reason. Asked for the latest step (``step=None``), restores fall back to the newest
undamaged step and say so; asked for an explicit step, they raise `DamagedCheckpointError`
naming it. Checkpoints written before digests were recorded restore with one warning.

Disk space: before each save the free space is checked against the state's size
(`jaxcnn.storage.space`), and a full disk met inside Orbax is re-raised as the same one
`OutOfSpaceError` naming the step, the bytes and the step a rerun resumes from; earlier steps
are untouched (Orbax's temporary folder of the failed save is removed on the next open).

Analyses read parameters with `restore_params(run_dir, step)` and the run's config with
`restore_meta`; both return plain numpy / JSON values of a verified step. `verified_step` gives
a step and its digest, which caches use as the checkpoint's identity.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from orbax.checkpoint import checkpoint_managers

from jaxcnn.storage import integrity, space
from jaxcnn.storage.integrity import DamagedCheckpointError

log = logging.getLogger(__name__)

STATE, META = "state", "meta"
SUBDIR = "checkpoints"
DAMAGED_SUBDIR = "damaged-checkpoints"
DIGEST = "state_sha256"  # the metadata key of the state's digest


def checkpoint_dir(run_dir: str | os.PathLike) -> str:
    return os.path.join(os.path.abspath(os.fspath(run_dir)), SUBDIR)


@dataclasses.dataclass(frozen=True)
class Restored:
    step: int
    tree: Any
    meta: dict
    skipped: tuple[int, ...]  # newer steps found damaged, newest first


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


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
        self.read_only = read_only
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
        """Save a pytree of arrays (converted to host numpy here) and JSON metadata at `step`;
        the metadata gains the state's digest."""
        host_tree = jax.tree_util.tree_map(np.asarray, jax.device_get(state_tree))
        meta = {**meta, DIGEST: integrity.tree_digest(host_tree)}
        args = ocp.args.Composite(
            **{STATE: ocp.args.StandardSave(host_tree), META: ocp.args.JsonSave(meta)}
        )
        self.wait()  # the previous save's bytes are on disk before free space is measured
        need = sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(host_tree))
        what = f"checkpoint step {step}"
        space.require(self.directory, int(need * 1.1) + 2**16, what=what, then=self._then())
        try:
            self._manager.save(int(step), args=args, force=True)
        except Exception as e:
            raise self._space_error(e, what) from e

    def _then(self) -> str:
        latest = self.latest_step()
        return "nothing is saved yet" if latest is None else f"the run resumes from step {latest}"

    def _space_error(self, error: Exception, what: str) -> Exception:
        """A full disk found by Orbax as one clear error (else `error` unchanged)."""
        if not space.is_out_of_space(error):
            return error
        return space.OutOfSpaceError(
            f"no space left on device while saving {what} in {self.directory}; free space "
            f"and rerun: {self._then()}",
            self.directory,
        )

    def restore(self, step: int | None = None, *, template: Any = None) -> tuple[Any, dict]:
        """``(state_tree, meta)`` at `step` (default: the newest undamaged step). With
        `template` (a pytree of arrays of the saved structure) the arrays come back as numpy
        arrays of its structure."""
        restored = self.restore_good(step, template=template)
        return restored.tree, restored.meta

    def restore_good(
        self,
        step: int | None = None,
        *,
        template: Any = None,
        check_meta: Callable[[dict], None] | None = None,
    ) -> Restored:
        """The verified checkpoint at `step`, or with `step` None the newest undamaged one
        (each damaged newer step is named in a warning; `Restored.skipped` lists them).

        `check_meta(meta)` runs on each step's metadata before its arrays are read; what it
        raises propagates (e.g. a resumed run whose settings differ). Raises
        `DamagedCheckpointError` for a damaged explicit step or when no step is usable."""
        steps = self.all_steps()
        if step is not None or not steps:
            step = self._resolve(step)
            tree, meta = self._restore_verified(step, template, check_meta)
            return Restored(step, tree, meta, ())
        damaged: list[DamagedCheckpointError] = []
        news = False  # whether a step was found damaged now (each is reported once a process)
        for s in reversed(steps):
            known = self._known_damage(s)
            try:
                if known is not None:
                    raise known
                tree, meta = self._restore_verified(s, template, check_meta)
            except DamagedCheckpointError as e:
                if known is None:
                    log.warning("%s; trying the previous step", e)
                    news = True
                damaged.append(e)
                continue
            if news:
                log.warning(
                    "using step %d of %s, the newest undamaged checkpoint (damaged: %s)",
                    s,
                    self.directory,
                    ", ".join(str(e.step) for e in damaged),
                )
            return Restored(s, tree, meta, tuple(e.step for e in damaged))
        raise DamagedCheckpointError(
            f"no usable checkpoint in {self.directory}: every step is damaged ("
            + "; ".join(str(e) for e in damaged)
            + "); move the folder away to start afresh"
        )

    def _step_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def _known_damage(self, step: int) -> DamagedCheckpointError | None:
        return integrity.known_damage(self._step_dir(step))

    def _restore_verified(self, step: int, template, check_meta) -> tuple[Any, dict]:
        try:
            return self._read_and_verify(step, template, check_meta)
        except DamagedCheckpointError as e:
            integrity.remember_damaged(self._step_dir(step), e)
            raise

    def _read_and_verify(self, step: int, template, check_meta) -> tuple[Any, dict]:
        try:
            meta = self._restore_item(step, META)
        except Exception as e:  # Orbax and tensorstore raise many types for damaged files
            raise self._damaged(step, integrity.describe(e)) from e
        if check_meta is not None:
            check_meta(meta)
        state_args = ocp.args.StandardRestore(
            None if template is None else jax.tree_util.tree_map(np.asarray, template)
        )
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(**{STATE: state_args}))
        except Exception as e:
            raise self._damaged(step, integrity.describe(e)) from e
        tree = jax.tree_util.tree_map(np.asarray, restored[STATE])
        digest = integrity.tree_digest(tree)
        recorded = meta.get(DIGEST)
        if recorded is None:
            log.warning(
                "checkpoint step %d in %s records no digest (written before digests were kept): "
                "restored without verification",
                step,
                self.directory,
            )
        elif recorded != digest:
            raise self._damaged(
                step,
                f"its arrays do not match the sha256 recorded when it was saved "
                f"({digest[:12]}... != {recorded[:12]}...: bytes changed on disk)",
            )
        integrity.remember_good(self._step_dir(step), digest)
        return tree, meta

    def _restore_item(self, step: int, item: str) -> dict:
        restored = self._manager.restore(
            step, args=ocp.args.Composite(**{item: ocp.args.JsonRestore()})
        )
        return dict(restored[item])

    def _damaged(self, step: int, reason: str) -> DamagedCheckpointError:
        return DamagedCheckpointError(
            f"checkpoint step {step} in {self.directory} is damaged: {reason}", step=step
        )

    def verified_step(self, step: int | None = None) -> tuple[int, str]:
        """``(step, digest)`` of `step` (None: the newest undamaged step), verified once per
        process as long as the step's files do not change."""
        steps = self.all_steps()
        candidates = [self._resolve(step)] if step is not None or not steps else steps[::-1]
        for s in candidates:
            if self._known_damage(s) is not None and step is None:
                continue
            digest = integrity.known_good(self._step_dir(s))
            if digest is None:
                break  # not verified yet (or changed): restore_good decides
            return s, digest
        restored = self.restore_good(step)
        return restored.step, integrity.known_good(self._step_dir(restored.step))

    def recorded_digest(self, step: int) -> str | None:
        """The digest `step`'s metadata records (None if unreadable); nothing is verified."""
        try:
            return self._restore_item(step, META).get(DIGEST)
        except Exception:  # a damaged step: what it records is unknown
            return None

    def restore_meta(self, step: int | None = None) -> dict:
        """The metadata of `step` (None: the newest undamaged step), after verifying it."""
        step, _ = self.verified_step(step)
        return self._restore_item(step, META)

    def set_aside(self, steps: Iterable[int]) -> list[str]:
        """Move damaged `steps` to ``<run_dir>/damaged-checkpoints/`` (kept for inspection) so
        that a resumed run can save those steps again; process 0 moves, all processes wait.
        Returns the new paths."""
        steps = sorted(int(s) for s in steps)
        if not steps:
            return []
        if self.read_only:
            raise ValueError(f"{self.directory} is opened read-only")
        self.wait()
        _barrier("jaxcnn_set_aside_start")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        dest_dir = os.path.join(os.path.dirname(self.directory), DAMAGED_SUBDIR)
        moved = [os.path.join(dest_dir, f"{s}-{stamp}") for s in steps]
        if jax.process_index() == 0:
            os.makedirs(dest_dir, exist_ok=True)
            for s, dest in zip(steps, moved, strict=True):
                os.replace(os.path.join(self.directory, str(s)), dest)
                log.warning("moved damaged checkpoint step %d to %s", s, dest)
        _barrier("jaxcnn_set_aside_done")
        self._manager.reload()
        return moved

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
        try:
            self._manager.wait_until_finished()
        except Exception as e:  # an asynchronous save failed
            raise self._space_error(e, "a checkpoint") from e

    def close(self) -> None:
        self.wait()
        self._manager.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def available_steps(run_dir: str | os.PathLike) -> list[int]:
    """Steps with a checkpoint folder in `run_dir` (empty if there is none); not verified."""
    if not os.path.isdir(checkpoint_dir(run_dir)):
        return []
    with Checkpointer(run_dir, read_only=True) as ckpt:
        return ckpt.all_steps()


def verified_step(run_dir: str | os.PathLike, step: int | None = None) -> tuple[int, str]:
    """``(step, state digest)`` of a verified checkpoint of `run_dir` (None: the newest
    undamaged step); the digest identifies the checkpoint's content (cache keys)."""
    with Checkpointer(run_dir, read_only=True) as ckpt:
        return ckpt.verified_step(step)


def recorded_digests(run_dir: str | os.PathLike) -> dict[str, str | None]:
    """``{step: digest recorded in its metadata}`` of every step of `run_dir` (None where the
    metadata is unreadable); reads metadata only, so it is cheap and verifies nothing."""
    if not os.path.isdir(checkpoint_dir(run_dir)):
        return {}
    with Checkpointer(run_dir, read_only=True) as ckpt:
        return {str(s): ckpt.recorded_digest(s) for s in ckpt.all_steps()}


def restore_params(run_dir: str | os.PathLike, step: int | None = None) -> dict:
    """The network parameters of run `run_dir` at `step` (default: the newest undamaged
    checkpoint), verified, as a nested dict of numpy arrays ``{layer: {'kernel', 'bias'}}``."""
    with Checkpointer(run_dir, read_only=True) as ckpt:
        restored = ckpt.restore_good(step)
    if "params" not in restored.tree:
        raise ValueError(f"checkpoint of {run_dir} at step {restored.step} holds no 'params'")
    return restored.tree["params"]


def restore_meta(run_dir: str | os.PathLike, step: int | None = None) -> dict:
    """The JSON metadata (config, data-iterator states, digest, ...) saved with a verified
    checkpoint (default: the newest undamaged one)."""
    with Checkpointer(run_dir, read_only=True) as ckpt:
        return ckpt.restore_meta(step)


def save_params(run_dir: str | os.PathLike, params: dict, *, meta: dict, step: int = 0) -> str:
    """Write `params` as a one-step checkpoint of a run (e.g. imported Caffe weights), readable
    by `restore_params` like any snapshot. Returns the checkpoint directory."""
    with Checkpointer(run_dir, snapshot_steps=[step], async_save=False) as ckpt:
        ckpt.save(step, {"params": params, "step": np.asarray(step, np.int32)}, meta)
    return checkpoint_dir(run_dir)
