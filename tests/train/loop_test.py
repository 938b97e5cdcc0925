"""Tests for jaxcnn.train.loop: a whole (tiny) run, snapshots, exact resumption (in-process and
after SIGKILL through experiments/pretrain.py), non-finite loss, evaluation chunking."""

import errno
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxcnn import model, train
from jaxcnn.storage import checkpoints, locks
from jaxcnn.train import log as training_log
from jaxcnn.train import loop
from jaxcnn.train import step as step_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = {"width": 0.125, "fc_width": 32, "input_size": 32}


class Synthetic:
    """Deterministic learnable batches: class prototypes plus noise; batch i depends only on
    (seed, i), and the state is i."""

    def __init__(self, batch, *, num_classes=10, seed=0, nan_at=None):
        self.batch, self.num_classes, self.seed, self.i, self.nan_at = (
            batch,
            num_classes,
            seed,
            0,
            nan_at,
        )
        self.protos = np.random.default_rng(123).normal(size=(num_classes, 32, 32, 3))

    def __next__(self):
        rng = np.random.default_rng([self.seed, self.i])
        labels = rng.integers(0, self.num_classes, self.batch).astype(np.int32)
        images = (self.protos[labels] + rng.normal(size=(self.batch, 32, 32, 3))).astype(np.float32)
        if self.i == self.nan_at:
            images[0, 0, 0, 0] = np.nan
        self.i += 1
        return {"image": images, "label": labels}

    def get_state(self):
        return {"index": self.i}

    def set_state(self, state):
        self.i = state["index"]


def _eval_data():
    data = Synthetic(30, seed=99)
    return [next(data) for _ in range(2)]


def _config(**kw):
    base = dict(
        num_classes=10,
        num_steps=6,
        batch_size=8,
        model_overrides=TINY,
        num_local_devices=1,
        checkpoint_every=4,
        log_every=2,
        base_lr=0.01,
    )
    return train.TrainConfig(**{**base, **kw})


def test_run_keeps_snapshots_logs_and_plots(tmp_path):
    records = []
    cfg = _config(snapshot_steps=(0, 2), eval_every=3)
    summary = loop.train(
        cfg, str(tmp_path), train_data=Synthetic(8), eval_data=_eval_data, on_record=records.append
    )
    # Snapshots 0 and 2 are permanent; of the rolling checkpoints (4, 6) only the latest stays.
    assert checkpoints.available_steps(tmp_path) == [0, 2, 6]
    logged = training_log.read_records(str(tmp_path))
    assert logged == records
    assert [(r["split"], r["step"]) for r in logged] == [
        ("train", 2),
        ("val", 3),
        ("train", 4),
        ("train", 6),
        ("val", 6),
    ]
    train_keys = {"loss", "top1", "lr", "img_per_s", "tflops", "eta_s", "grad_norm"}
    assert train_keys <= set(logged[0]) and logged[0]["lr"] == pytest.approx(0.01)
    assert summary["val"]["count"] == 60 and 0 <= summary["val"]["top1"] <= 1
    assert os.path.getsize(tmp_path / "curves.png") > 1000
    assert json.loads((tmp_path / "config.json").read_text())["num_steps"] == 6
    meta = checkpoints.restore_meta(tmp_path, 2)
    assert meta["data_state"] == [json.dumps({"json": {"index": 2}})]
    assert model.module_from_run(str(tmp_path)).config == cfg.module().config


def test_resume_in_process_is_exact(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    loop.train(_config(), str(full), train_data=Synthetic(8))
    loop.train(_config(num_steps=4), str(part), train_data=Synthetic(8))
    summary = loop.train(_config(), str(part), train_data=Synthetic(8))
    assert summary["resumed_from"] == 4
    a, b = checkpoints.restore_params(full), checkpoints.restore_params(part)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    # Records past the checkpoint were rewritten, not duplicated.
    steps = [r["step"] for r in training_log.read_records(str(part)) if r["split"] == "train"]
    assert steps == [2, 4, 6]


def _flip_a_byte_of_the_largest_file(step_dir):
    files = [os.path.join(d, n) for d, _, names in os.walk(step_dir) for n in names]
    path = max(files, key=os.path.getsize)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x01
    with open(path, "wb") as f:
        f.write(data)


def test_resume_from_a_damaged_checkpoint_falls_back_exactly(tmp_path, caplog):
    """Flipped bytes in the latest checkpoint: the resumed run names it, moves it aside,
    resumes from the snapshot before it and ends where an uninterrupted run ends."""
    full, part = tmp_path / "full", tmp_path / "part"
    loop.train(_config(), str(full), train_data=Synthetic(8))
    loop.train(_config(num_steps=4, snapshot_steps=(2,)), str(part), train_data=Synthetic(8))
    assert checkpoints.available_steps(part) == [2, 4]
    _flip_a_byte_of_the_largest_file(os.path.join(checkpoints.checkpoint_dir(part), "4"))
    with caplog.at_level(logging.WARNING, logger="jaxcnn.storage.checkpoints"):
        summary = loop.train(_config(snapshot_steps=(2,)), str(part), train_data=Synthetic(8))
    assert summary["resumed_from"] == 2
    said = " | ".join(r.getMessage() for r in caplog.records)
    assert "checkpoint step 4 " in said and "do not match the sha256" in said, said
    assert "moved damaged checkpoint step 4" in said, said
    assert len(os.listdir(part / "damaged-checkpoints")) == 1
    a, b = checkpoints.restore_params(full), checkpoints.restore_params(part)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_stopping_at_a_step_already_passed_is_an_error(tmp_path):
    """A run at step 4 asked for --num_steps=2 says so and changes nothing (it never reports
    a step it is not at)."""
    loop.train(_config(num_steps=4), str(tmp_path), train_data=Synthetic(8))
    before = checkpoints.verified_step(tmp_path)
    with pytest.raises(ValueError, match=r"already at step 4, past --num_steps=2"):
        loop.train(_config(num_steps=2), str(tmp_path), train_data=Synthetic(8))
    assert checkpoints.verified_step(tmp_path) == before
    assert loop.train(_config(num_steps=4), str(tmp_path), train_data=Synthetic(8))["step"] == 4


def test_full_disk_at_a_checkpoint_save_then_resume_is_exact(tmp_path, small_disk, fill_disk):
    """A real size-limited filesystem fills up before step 6's save: the run stops with one
    clear ENOSPC error naming the step, step 4 stays intact, and after freeing space the resumed
    run ends where an uninterrupted run ends."""
    disk = small_disk("3m")
    run_dir = os.path.join(disk, "run")
    loop.train(_config(), str(tmp_path / "full"), train_data=Synthetic(8))
    loop.train(_config(num_steps=4), run_dir, train_data=Synthetic(8))
    filler = fill_disk(disk, leave=48 * 1024)  # room for the logs, not for a checkpoint
    with pytest.raises(OSError, match=r"checkpoint step 6: .* needs .* resumes from step 4") as e:
        loop.train(_config(), run_dir, train_data=Synthetic(8))
    assert e.value.errno == errno.ENOSPC
    assert checkpoints.available_steps(run_dir) == [4]
    assert checkpoints.verified_step(run_dir)[0] == 4  # intact: its digest verifies
    os.remove(filler)
    assert loop.train(_config(), run_dir, train_data=Synthetic(8))["resumed_from"] == 4
    a, b = checkpoints.restore_params(tmp_path / "full"), checkpoints.restore_params(run_dir)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_resume_refuses_different_settings(tmp_path):
    loop.train(_config(num_steps=2), str(tmp_path), train_data=Synthetic(8))
    with pytest.raises(ValueError, match="base_lr"):
        loop.train(_config(base_lr=0.1), str(tmp_path), train_data=Synthetic(8))


def test_non_finite_loss_stops_without_saving_it(tmp_path):
    cfg = _config(checkpoint_every=1)
    with pytest.raises(FloatingPointError, match="at step 4"):
        loop.train(cfg, str(tmp_path), train_data=Synthetic(8, nan_at=3))
    assert checkpoints.available_steps(tmp_path) == [3]  # nothing at or after step 4
    params = checkpoints.restore_params(tmp_path)
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(params))


def test_evaluate_counts_every_example_once(tmp_path):
    """Batches of uneven sizes are chunked and padded; totals equal one eval_step over all."""
    cfg = _config(eval_batch_size=8)
    state = train.initial_state(cfg)
    runner = loop._runner(cfg)
    data = Synthetic(23, seed=5)
    batches = [next(data), {k: v[:5] for k, v in next(data).items()}]
    got = loop.evaluate(runner, runner.put_state(state), batches, input_size=32)
    whole = {k: np.concatenate([b[k] for b in batches]) for k in ("image", "label")}
    want = jax.jit(step_lib.eval_step)(state, whole)
    assert got["count"] == 28
    assert got["top1"] == pytest.approx(float(want["top1"]) / 28)
    assert got["top5"] == pytest.approx(float(want["top5"]) / 28)
    assert got["loss"] == pytest.approx(float(want["loss"]) / 28, rel=1e-5)


# --- SIGKILL mid-run, then resume, through the real script and data pipeline ----------------
@pytest.fixture(scope="module")
def tiny_toyworld(tmp_path_factory):
    from jaxcnn.data import prepare

    data_dir = tmp_path_factory.mktemp("tfds")
    prepare.prepare_toyworld(size="tiny", data_dir=str(data_dir), num_workers=1)
    return str(data_dir)


def pretrain_command(data_dir, run_dir, num_steps=12):
    return [
        sys.executable,
        os.path.join(REPO, "experiments", "pretrain.py"),
        f"--run_dir={run_dir}",
        f"--data_dir={data_dir}",
        "--dataset=toyworld/source_tiny",
        "--width=0.125",
        "--fc_width=32",
        "--batch_size=16",
        f"--num_steps={num_steps}",
        "--checkpoint_every=3",
        "--log_every=1",
        "--eval_examples=16",
        f"--compilation_cache_dir={os.path.join(data_dir, 'xla_cache')}",
    ]


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO)  # this checkout's jaxcnn
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    return env


def test_sigkill_then_resume_is_bit_identical(tmp_path, tiny_toyworld):
    full, killed = tmp_path / "full", tmp_path / "killed"
    reference = subprocess.Popen(
        pretrain_command(tiny_toyworld, full),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    victim = subprocess.Popen(
        pretrain_command(tiny_toyworld, killed),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline, seen = time.time() + 150, []
    for line in victim.stdout:  # kill once step 8 is logged: checkpoints 3 and 6 exist by then
        seen.append(line)
        if re.search(r"step 8/12 ", line) or time.time() > deadline:
            break
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL, "".join(seen[-20:])
    assert any("step 8/12 " in line for line in seen), "".join(seen[-20:])
    out, _ = reference.communicate(timeout=150)
    assert reference.returncode == 0, out[-3000:]
    resumed = subprocess.run(
        pretrain_command(tiny_toyworld, killed),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"resumed from step (3|6)\b", resumed.stdout), resumed.stdout
    assert checkpoints.available_steps(killed)[-1] == 12
    a, b = checkpoints.restore_params(full), checkpoints.restore_params(killed)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_second_training_in_the_same_run_dir_is_refused_at_once(tmp_path, tiny_toyworld):
    """Two real pre-trainings on one run directory: the second stops at once naming the
    first's PID and host, and writes nothing; the first's SIGKILL frees the directory."""
    run_dir = tmp_path / "run"
    first = subprocess.Popen(
        pretrain_command(tiny_toyworld, run_dir, num_steps=10_000),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        seen = []
        for line in first.stdout:  # the lock is held before training starts
            seen.append(line)
            if re.search(r"step 1/10000 ", line):
                break
        assert first.poll() is None, "".join(seen[-20:])
        records_before = (run_dir / "metrics.jsonl").read_text()
        second = subprocess.run(
            pretrain_command(tiny_toyworld, run_dir, num_steps=10_000),
            env=_env(),
            capture_output=True,
            text=True,
            timeout=150,
        )
        out = second.stdout + second.stderr
        assert second.returncode != 0
        assert f"run directory {run_dir} is in use by PID {first.pid} on host" in out, out[-2000:]
        assert "step 1/" not in second.stdout  # refused before any training step
        # what the second process found was the first's, line for line
        assert (run_dir / "metrics.jsonl").read_text().startswith(records_before)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    locks.acquire(run_dir).release()  # free once its owner is gone
