"""The training loop: pre-training and fine-tuning runs with snapshots, resumption and logging.

`train(config, run_dir, train_data=..., eval_data=...)` runs one run described by a frozen
`TrainConfig` (docs/methods.md §2; `jaxcnn.train.config`). It is data-parallel over the local
devices of every process, with ``jax.pmap`` or sharded ``jax.jit`` (``config.parallelism``,
`jaxcnn.train.parallel`; multi-host plumbing in `jaxcnn.train.distributed`), saves checkpoints
through `jaxcnn.storage.checkpoints` (the snapshot steps permanently, plus a rolling latest every
``checkpoint_every`` steps), and resumes from the newest undamaged checkpoint of `run_dir` when
one exists: parameters, optimizer state, step, rng and the data iterator's state are restored, so
the resumed run computes exactly what an uninterrupted run computes (in the same mode;
checkpoints hold unreplicated host arrays in both). Damaged newer steps
(`jaxcnn.storage.checkpoints`: unreadable, or not matching their recorded digest) are named in a
warning and moved to ``<run_dir>/damaged-checkpoints/``. Training batches are placed on the
devices two steps ahead and the state buffers are donated to the step; metrics are fetched one
step late, so the host never waits on a step it has just dispatched. A non-finite loss or
parameter norm stops the run with FloatingPointError naming the step, and that state is never
saved.

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

import collections
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable

import jax
import numpy as np

from jaxcnn import storage
from jaxcnn.storage import checkpoints
from jaxcnn.train import distributed, parallel, resume, solver
from jaxcnn.train import log as training_log
from jaxcnn.train import step as train_lib
from jaxcnn.train.config import TrainConfig, initial_state, model_meta

log = logging.getLogger(__name__)


def _runner(config: TrainConfig) -> parallel.Runner:
    return parallel.make_runner(
        config.parallelism,
        batch_size=config.batch_size,
        eval_batch_size=config.eval_batch_size,
        num_local_devices=config.num_local_devices,
    )


def evaluate(runner: parallel.Runner, d_state, batches: Iterable[dict], input_size: int) -> dict:
    """Top-1/top-5 accuracy and mean loss over all processes' evaluation batches.

    Batches are cut into chunks of ``runner.eval_batch`` examples and padded (mask 0), so one
    compiled shape serves any batch size. Processes step in lockstep (collectives); one that
    runs out of chunks feeds fully masked ones until every process is done."""
    totals = {"count": 0.0, "top1": 0.0, "top5": 0.0, "loss": 0.0}
    chunks = _eval_chunks(batches, runner.eval_batch)
    while True:
        chunk = next(chunks, None)
        if not distributed.any_process(chunk is not None):
            break
        if chunk is None:
            chunk = _empty_batch(runner.eval_batch, input_size)
        sums = runner.scalars(runner.evaluate(d_state, runner.place(chunk)))
        for k, v in sums.items():
            totals[k] += v
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


def _empty_batch(size: int, input_size: int) -> dict:
    return {
        "image": np.zeros((size, input_size, input_size, 3), np.float32),
        "label": np.zeros((size,), np.int32),
        "mask": np.zeros((size,), np.float32),
    }


class _Feeder:
    """This process's next `count` training batches, placed on the devices `ahead` steps early
    (the copies overlap the running step). Each batch carries the data iterator's state after
    it, so `state` is the position after the last batch *consumed*, not after the prefetched
    ones: a checkpoint resumes exactly there."""

    def __init__(self, data, place: Callable, count: int, ahead: int = 2):
        self.data, self.place, self.left, self.ahead = data, place, count, ahead
        self.state = data.get_state()
        self.queue: collections.deque = collections.deque()

    def __next__(self):
        while self.left and len(self.queue) <= self.ahead:
            batch = self.place(next(self.data))
            self.queue.append((batch, self.data.get_state()))
            self.left -= 1
        batch, self.state = self.queue.popleft()
        return batch


class _Loop:
    """The step loop of one run (see `train`)."""

    def __init__(
        self,
        config: TrainConfig,
        runner: parallel.Runner,
        ckpt: checkpoints.Checkpointer,
        metrics_log: training_log.MetricsLog,
        train_data,
        eval_data,
        trainable,
    ):
        self.cfg, self.runner, self.ckpt, self.log = config, runner, ckpt, metrics_log
        self.train_data, self.eval_data = train_data, eval_data
        self.input_size = config.module().config.input_size
        self.flops = train_lib.train_flops_per_image(config.module().config, trainable)
        self.schedule = config.learning_rate()
        self.window: list[dict] = []
        self.clock: tuple[float, int] | None = None  # (time, step) of the throughput window

    def run(self, d_state, start: int):
        feeder = _Feeder(self.train_data, self.runner.place, self.cfg.num_steps - start)
        pending = None
        for step in range(start, self.cfg.num_steps):
            d_state, metrics = self.runner.train(d_state, next(feeder))
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
                    self.validate(d_state, done)
                if save_now:
                    self.save(d_state, done, feeder.state)
                self.clock = (time.perf_counter(), done)
            if stop:
                raise distributed.Preempted(
                    f"stopped by SIGTERM at step {done}; that step is saved: rerun the same "
                    "command to resume"
                )
        if pending is not None:
            self._consume(*pending)
        return d_state

    def _consume(self, step: int, metrics) -> None:
        m = self.runner.scalars(metrics)
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

    def validate(self, d_state, step: int) -> dict | None:
        if self.eval_data is None:
            return None
        result = evaluate(self.runner, d_state, self.eval_data(), self.input_size)
        record = {"split": "val", "step": step, **result}
        self.log.append(record)
        if jax.process_index() == 0:
            log.info(training_log.format_progress(record, self.cfg.num_steps))
        return record

    def save(self, d_state, step: int, data_state) -> None:
        tree = resume.state_tree(self.runner.host_state(d_state))
        data_states = distributed.allgather_strings(resume.encode_data_state(data_state))
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
    runner = _runner(config)
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
        loop = _Loop(config, runner, ckpt, metrics_log, train_data, eval_data, state.trainable)
        log.info("data parallelism: %s over %d local devices", runner.mode, runner.n)
        d_state = runner.put_state(state)
        if start is None and 0 in config.snapshot_steps:
            loop.save(d_state, 0, train_data.get_state())
        first = start or 0
        d_state = loop.run(d_state, first)
        val = None
        if first < config.num_steps:
            val = loop.validate(d_state, config.num_steps)
        digest = params_digest(runner.host_state(d_state).params)
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
