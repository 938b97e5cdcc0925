"""The training loop: pre-training and fine-tuning runs with snapshots, resumption and logging.

`train(config, run_dir, train_data=..., eval_data=...)` runs one run described by a frozen
`TrainConfig` (docs/methods.md §2; `jaxcnn.train.config`). It is data-parallel with
``jax.pmap`` over the local devices of every process (`jaxcnn.train.distributed`), saves checkpoints
through `jaxcnn.storage.checkpoints` (the snapshot steps permanently, plus a rolling latest every
``checkpoint_every`` steps), and resumes from the newest undamaged checkpoint of `run_dir` when
one exists: parameters, optimizer state, step, rng and the data iterator's state are restored, so
the resumed run computes exactly what an uninterrupted run computes. Damaged newer steps
(`jaxcnn.storage.checkpoints`: unreadable, or not matching their recorded digest) are named in a
warning and moved to ``<run_dir>/damaged-checkpoints/``. Metrics are fetched one
step late (dispatch stays ahead of the host); a non-finite loss or parameter norm stops the run
with FloatingPointError naming the step, and that state is never saved.

Data contract (host numpy, no devices): ``train_data`` is an iterator of this process's
batches ``{'image': f32[B_proc, H, W, 3], 'label': int[B_proc]}`` with ``get_state()`` and
``set_state(state)`` (as grain's iterators have); ``eval_data`` is a zero-argument callable
returning an iterable of this process's evaluation batches, each at most ``eval_batch_size``
examples, optionally with ``mask`` (0 = padding).

SIGTERM: a single process ends at once (the last complete checkpoint stays: saves are atomic);
in a multi-process run JAX holds SIGTERM, and every process saves the step they reach together
and raises `jaxcnn.train.distributed.Preempted`.

Outputs in `run_dir`: ``config.json``, ``metrics.jsonl`` (one JSON record per log interval and
per validation, see `jaxcnn.train.log`), ``curves.png`` at the end, ``checkpoints/``.
Progress goes to the ``logging`` module and to an optional ``on_record`` callback.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable

import jax
import numpy as np

from jaxcnn import storage
from jaxcnn.storage import checkpoints
from jaxcnn.train import devices as device_lib
from jaxcnn.train import distributed, resume, solver
from jaxcnn.train import log as training_log
from jaxcnn.train import step as train_lib
from jaxcnn.train.config import TrainConfig, initial_state, model_meta

log = logging.getLogger(__name__)


@functools.cache
def _pmapped(kind: str, devices: tuple | None):
    """The pmapped train or eval step, built once per process and device set, so that runs in
    one process (e.g. several fine-tunings) reuse compiled programs of equal shapes."""
    if kind == "train":
        step = functools.partial(train_lib.train_step, axis_name=distributed.AXIS)
        return jax.pmap(step, axis_name=distributed.AXIS, devices=devices, donate_argnums=(0,))
    step = functools.partial(train_lib.eval_step, axis_name=distributed.AXIS)
    return jax.pmap(step, axis_name=distributed.AXIS, devices=devices)


class _Devices:
    """Which devices this process maps over, and the batch split."""

    def __init__(self, config: TrainConfig):
        devices = jax.local_devices()
        if config.num_local_devices:
            if jax.process_count() > 1 and config.num_local_devices != len(devices):
                raise ValueError("num_local_devices must be 0 (all) in a multi-process run")
            if config.num_local_devices > len(devices):
                raise ValueError(
                    f"asked for {config.num_local_devices} devices, {len(devices)} are available"
                )
            devices = devices[: config.num_local_devices]
        self.devices = devices
        self.n = len(devices)
        self.input_size = config.module().config.input_size
        self.per_process, self.per_device = distributed.batch_split(
            config.batch_size, num_processes=jax.process_count(), local_devices=self.n
        )
        self.eval_batch = config.eval_batch_size or self.per_process
        if self.eval_batch % self.n:
            raise ValueError(f"eval batch {self.eval_batch} not divisible by {self.n} devices")
        pmap_devices = None if jax.process_count() > 1 else tuple(devices)
        self.p_train = _pmapped("train", pmap_devices)
        self.p_eval = _pmapped("eval", pmap_devices)


def evaluate(p_eval: Callable, p_state, batches: Iterable[dict], devs: _Devices) -> dict:
    """Top-1/top-5 accuracy and mean loss over all processes' evaluation batches.

    Batches are cut into chunks of ``devs.eval_batch`` examples and padded (mask 0), so one
    compiled shape serves any batch size. Processes step in lockstep (pmap collectives); one that
    runs out of chunks feeds fully masked ones until every process is done."""
    totals = {"count": 0.0, "top1": 0.0, "top5": 0.0, "loss": 0.0}
    chunks = _eval_chunks(batches, devs.eval_batch)
    while True:
        chunk = next(chunks, None)
        if not distributed.any_process(chunk is not None):
            break
        sums = p_eval(
            p_state,
            device_lib.split_for_devices(
                chunk if chunk is not None else _empty_batch(devs), devs.n
            ),
        )
        for k, v in jax.device_get(sums).items():
            totals[k] += float(np.asarray(v)[0])
    n = max(totals["count"], 1.0)
    return {
        "top1": totals["top1"] / n,
        "top5": totals["top5"] / n,
        "loss": totals["loss"] / n,
        "count": int(totals["count"]),
    }


def _eval_chunks(batches: Iterable[dict], size: int):
    for batch in batches:
        n = len(batch["label"])
        mask = np.asarray(batch["mask"] if "mask" in batch else np.ones(n), np.float32)
        full = {
            "image": np.asarray(batch["image"], np.float32),
            "label": np.asarray(batch["label"], np.int32),
            "mask": mask,
        }
        for lo in range(0, n, size):
            chunk = {k: v[lo : lo + size] for k, v in full.items()}
            short = size - len(chunk["label"])
            if short:
                chunk = {
                    k: np.concatenate([v, np.zeros((short, *v.shape[1:]), v.dtype)])
                    for k, v in chunk.items()
                }
            yield chunk


def _empty_batch(devs: _Devices) -> dict:
    size = devs.input_size
    return {
        "image": np.zeros((devs.eval_batch, size, size, 3), np.float32),
        "label": np.zeros((devs.eval_batch,), np.int32),
        "mask": np.zeros((devs.eval_batch,), np.float32),
    }


class _Loop:
    """The step loop of one run (see `train`)."""

    def __init__(
        self,
        config: TrainConfig,
        devs: _Devices,
        ckpt: checkpoints.Checkpointer,
        metrics_log: training_log.MetricsLog,
        train_data,
        eval_data,
        trainable,
    ):
        self.cfg, self.devs, self.ckpt, self.log = config, devs, ckpt, metrics_log
        self.train_data, self.eval_data = train_data, eval_data
        self.p_train, self.p_eval = devs.p_train, devs.p_eval
        self.flops = train_lib.train_flops_per_image(config.module().config, trainable)
        self.schedule = config.learning_rate()
        self.window: list[dict] = []
        self.clock: tuple[float, int] | None = None  # (time, step) of the throughput window

    def run(self, p_state, start: int):
        pending = None
        for step in range(start, self.cfg.num_steps):
            batch = device_lib.split_for_devices(next(self.train_data), self.devs.n)
            p_state, metrics = self.p_train(p_state, batch)
            if pending is not None:  # metrics one step late: dispatch stays ahead of the host
                self._consume(*pending)
            pending, done = (step + 1, metrics), step + 1
            eval_now = self.cfg.eval_every and done % self.cfg.eval_every == 0
            stop = distributed.preemption_reached(done)  # SIGTERM, multi-process: all at `done`
            save_now = (
                done % self.cfg.checkpoint_every == 0
                or done in self.cfg.snapshot_steps
                or done == self.cfg.num_steps
                or stop
            )
            if eval_now or save_now:
                self._consume(*pending)  # a state is saved only after its loss is checked
                pending = None
                if eval_now and done != self.cfg.num_steps:
                    self.validate(p_state, done)
                if save_now:
                    self.save(p_state, done)
                self.clock = (time.perf_counter(), done)
            if stop:
                raise distributed.Preempted(
                    f"stopped by SIGTERM at step {done}; that step is saved: rerun the same "
                    "command to resume"
                )
        if pending is not None:
            self._consume(*pending)
        return p_state

    def _consume(self, step: int, metrics) -> None:
        m = {k: float(np.asarray(v)[0]) for k, v in jax.device_get(metrics).items()}
        if not (np.isfinite(m["loss"]) and np.isfinite(m["param_norm"])):
            raise FloatingPointError(
                f"non-finite training loss at step {step} (loss {m['loss']}, parameter norm "
                f"{m['param_norm']}); stopped without saving it; last checkpoint: step "
                f"{self.ckpt.latest_step()}"
            )
        self.window.append(m)
        if self.clock is None:  # the first step includes compilation: time from here
            self.clock = (time.perf_counter(), step)
        if step % self.cfg.log_every == 0 or step == self.cfg.num_steps:
            self._log_train(step)

    def _log_train(self, step: int) -> None:
        now = time.perf_counter()
        t0, s0 = self.clock
        rate = (step - s0) / (now - t0) if step > s0 else float("nan")
        img_s = rate * self.cfg.batch_size
        record = {
            "split": "train",
            "step": step,
            **{k: float(np.mean([w[k] for w in self.window])) for k in self.window[0]},
            "lr": solver.current_learning_rate(self.schedule, step - 1),  # update step-1
            "img_per_s": img_s,
            "tflops": img_s * self.flops / 1e12,
            "eta_s": (self.cfg.num_steps - step) / rate if rate > 0 else 0.0,
        }
        self.window, self.clock = [], (now, step)
        self.log.append(record)
        if jax.process_index() == 0:
            log.info(training_log.format_progress(record, self.cfg.num_steps))

    def validate(self, p_state, step: int) -> dict | None:
        if self.eval_data is None:
            return None
        result = evaluate(self.p_eval, p_state, self.eval_data(), self.devs)
        record = {"split": "val", "step": step, **result}
        self.log.append(record)
        if jax.process_index() == 0:
            log.info(training_log.format_progress(record, self.cfg.num_steps))
        return record

    def save(self, p_state, step: int) -> None:
        tree = resume.state_tree(distributed.unreplicate(p_state))
        state = resume.encode_data_state(self.train_data.get_state())
        data_states = distributed.allgather_strings(state)
        meta = {
            "config": self.cfg.to_dict(),
            "model": model_meta(self.cfg),
            "step": step,
            "data_state": data_states,
        }
        self.ckpt.save(step, tree, meta)


def train(
    config: TrainConfig,
    run_dir: str,
    *,
    train_data,
    eval_data=None,
    on_record: Callable[[dict], None] | None = None,
    initial: train_lib.TrainState | None = None,
) -> dict:
    """Run (or resume) the training run `config` in `run_dir` (module docstring).

    `initial` replaces the step-0 state of `initial_state(config)` (e.g. a layer transplant of
    `jaxcnn.transfer`); it must use `config`'s module and optimizer. A resumed run restores into
    it, so it also fixes the trainable layers.

    Returns a summary: ``{"step", "resumed_from", "val": last validation record or None,
    "params_sha256": digest of this process's copy of the final parameters}``.
    Raises FloatingPointError naming the step if the loss or parameters become non-finite, and
    `jaxcnn.storage.locks.DirectoryInUseError` at once if another process owns `run_dir`.
    """
    with resume.owning(run_dir):
        return _train(config, run_dir, train_data, eval_data, on_record, initial)


def _train(config, run_dir, train_data, eval_data, on_record, initial) -> dict:
    os.makedirs(run_dir, exist_ok=True)
    devs = _Devices(config)
    state = initial_state(config) if initial is None else initial
    primary = jax.process_index() == 0
    metrics_log = training_log.MetricsLog(run_dir, enabled=primary, on_record=on_record)
    with checkpoints.Checkpointer(run_dir, snapshot_steps=config.snapshot_steps) as ckpt:
        start = None
        if ckpt.all_steps():  # resume from the newest undamaged step; damaged ones move aside
            restored = ckpt.restore_good(
                template=resume.state_tree(state),
                check_meta=lambda meta: resume.check_resumable(meta["config"], config),
            )
            ckpt.set_aside(restored.skipped)
            start, meta = restored.step, restored.meta
            if start > config.num_steps:  # never report a step the model is not at
                raise ValueError(
                    f"run {run_dir} is already at step {start}, past --num_steps="
                    f"{config.num_steps}; a run cannot go back: probe an earlier snapshot "
                    f"(experiments/probe.py --steps) or use a new --run_dir"
                )
            state = resume.restore_into(state, restored.tree)
            train_data.set_state(resume.decode_data_state(meta["data_state"][jax.process_index()]))
            metrics_log.truncate_after(start)
            log.info("resuming %s from step %d", run_dir, start)
        elif primary:
            storage.write_json(
                os.path.join(run_dir, "config.json"), config.to_dict(), indent=2, sort_keys=True
            )
        loop = _Loop(config, devs, ckpt, metrics_log, train_data, eval_data, state.trainable)
        p_state = distributed.replicate(state, devs.devices)
        if start is None and 0 in config.snapshot_steps:
            loop.save(p_state, 0)
        first = start or 0
        p_state = loop.run(p_state, first)
        val = None
        if first < config.num_steps:
            val = loop.validate(p_state, config.num_steps)
        digest = params_digest(distributed.unreplicate(p_state.params))
    if primary:
        records = training_log.read_records(run_dir)
        training_log.plot_curves(
            records,
            os.path.join(run_dir, "curves.png"),
            title=f"{config.regime} {os.path.basename(run_dir)}",
        )
        if val is None:
            val = next((r for r in reversed(records) if r["split"] == "val"), None)
    return {"step": config.num_steps, "resumed_from": start, "val": val, "params_sha256": digest}


def params_digest(params: dict) -> str:
    """SHA-256 of the parameters' bytes in tree order (to check replicas or runs agree)."""
    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(params):
        h.update(np.ascontiguousarray(leaf).tobytes())
    return h.hexdigest()
