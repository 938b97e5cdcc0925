"""Tests for jaxcnn.train.distributed: batch splitting, replication, single-process collectives,
a real two-process loopback run through launch/local_two_process_cpu.sh, and its faults: a
killed peer ends the other within 10 s naming it; SIGTERM to the launcher stops both processes
after saving the step they reach."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest

from jaxcnn.storage import checkpoints
from jaxcnn.train import devices as device_lib
from jaxcnn.train import distributed

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_batch_split():
    assert distributed.batch_split(256, num_processes=2, local_devices=8) == (128, 16)
    assert distributed.batch_split(16, num_processes=1, local_devices=8) == (16, 2)
    with pytest.raises(ValueError, match="does not split evenly over 2 processes x 8 devices"):
        distributed.batch_split(100, num_processes=2, local_devices=8)
    with pytest.raises(ValueError, match="does not split"):
        distributed.batch_split(0, num_processes=1, local_devices=1)


def test_split_for_devices():
    batch = {"image": np.arange(8 * 2 * 2 * 3).reshape(8, 2, 2, 3), "label": np.arange(8)}
    out = device_lib.split_for_devices(batch, 4)
    assert out["image"].shape == (4, 2, 2, 2, 3) and out["label"].shape == (4, 2)
    np.testing.assert_array_equal(out["label"][2], [4, 5])  # device 2 gets examples 4 and 5
    with pytest.raises(ValueError, match="not divisible by 3 devices"):
        device_lib.split_for_devices(batch, 3)


def test_replicate_unreplicate_roundtrip():
    tree = {"w": np.arange(6.0).reshape(2, 3), "step": np.int32(5)}
    devices = jax.local_devices()
    rep = distributed.replicate(tree, devices)
    assert rep["w"].shape == (len(devices), 2, 3)
    # pmap keeps replicas on their devices and returns the same sharding (no recompilation)
    out = jax.pmap(lambda t: jax.tree_util.tree_map(lambda x: x + 1, t), axis_name="batch")(rep)
    assert out["w"].sharding == rep["w"].sharding
    back = distributed.unreplicate(out)
    np.testing.assert_array_equal(back["w"], tree["w"] + 1)
    assert back["step"] == 6 and isinstance(back["w"], np.ndarray)


def test_single_process_helpers():
    assert distributed.allgather_strings("état") == ["état"]
    assert distributed.any_process(True) and not distributed.any_process(False)
    assert distributed.same_on_all_processes({"a": 1})


def test_initialize_without_cluster_is_single_process(monkeypatch):
    for var in (
        "JAX_COORDINATOR_ADDRESS",
        "JAX_NUM_PROCESSES",
        "JAX_PROCESS_ID",
        "SLURM_JOB_ID",
        "SLURM_NTASKS",
    ):
        monkeypatch.delenv(var, raising=False)
    assert distributed.initialize() is False
    with pytest.raises(ValueError, match="needs a coordinator address"):
        distributed.initialize(num_processes=2)
    with pytest.raises(ValueError, match="needs num_processes and process_id"):
        distributed.initialize(coordinator_address="127.0.0.1:1234")
    with pytest.raises(ValueError, match=r"process_id 2 not in \[0, 2\)"):
        distributed.initialize(coordinator_address="127.0.0.1:1234", num_processes=2, process_id=2)


@pytest.fixture(scope="module")
def tiny_toyworld(tmp_path_factory):
    from jaxcnn.data import prepare

    data_dir = tmp_path_factory.mktemp("tfds")
    prepare.prepare_toyworld(size="tiny", data_dir=str(data_dir), num_workers=1)
    return str(data_dir)


@pytest.mark.parametrize("parallelism, local_devices", [("pmap", 1), ("jit", 2)])
def test_two_process_loopback_run(tmp_path, tiny_toyworld, parallelism, local_devices):
    """Two processes pre-train together (pmap: one CPU device each; sharded jit: two each, the
    batch assembled from both processes' rows): gradients are averaged across processes, each
    reads its own data shard, both write the checkpoint; at the end both hold the same
    parameters."""
    run_dir = tmp_path / "run"
    env = dict(
        os.environ, PYTHON=sys.executable, PYTHONPATH=REPO, DEVICES_PER_PROCESS=str(local_devices)
    )  # this checkout's jaxcnn
    env.pop("XLA_FLAGS", None)
    result = subprocess.run(
        [
            os.path.join(REPO, "launch", "local_two_process_cpu.sh"),
            f"--run_dir={run_dir}",
            f"--data_dir={tiny_toyworld}",
            "--dataset=toyworld/source_tiny",
            "--width=0.125",
            "--fc_width=32",
            "--batch_size=16",
            "--num_steps=4",
            "--checkpoint_every=2",
            "--log_every=2",
            "--eval_examples=16",
            f"--parallelism={parallelism}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    total = 2 * local_devices
    assert f"process 1 of 2, {local_devices} local / {total} global devices" in out
    assert f"data parallelism: {parallelism} over {local_devices} local devices" in out
    digests = dict(re.findall(r"process (\d)/2: final parameters sha256 (\w+)", out))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"], out[-2000:]
    assert checkpoints.available_steps(run_dir) == [4]
    meta = checkpoints.restore_meta(run_dir)
    assert len(meta["data_state"]) == 2 and meta["data_state"][0] != meta["data_state"][1]
    assert re.search(r"validation top-1 [\d.]+, top-5 [\d.]+ on 16 images", out)


def _train_args(run_dir, data_dir):
    return [
        f"--run_dir={run_dir}",
        f"--data_dir={data_dir}",
        "--dataset=toyworld/source_tiny",
        "--width=0.125",
        "--fc_width=32",
        "--batch_size=16",
        "--num_steps=100000",
        "--checkpoint_every=3",
        "--log_every=1",
        "--eval_examples=16",
    ]


class _Lines:
    """Collects a process's output lines in a thread (with their arrival times)."""

    def __init__(self, proc):
        self.lines: list[tuple[float, str]] = []
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc):
        for line in proc.stdout:
            self.lines.append((time.time(), line))

    def wait_for(self, pattern, timeout=240):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(re.search(pattern, line) for _, line in self.lines):
                return
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in:\n" + self.text()[-3000:])

    def text(self):
        return "".join(line for _, line in self.lines)


def test_a_killed_peer_ends_the_other_within_10_s_naming_it(tmp_path, tiny_toyworld):
    """Two processes started directly (as on two hosts, no launcher to stop the survivor);
    process 1 is SIGKILLed mid-run; process 0 exits within 10 s, naming process 1."""
    run_dir = tmp_path / "run"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                os.path.join(REPO, "experiments", "pretrain.py"),
                *_train_args(run_dir, tiny_toyworld),
                f"--coordinator_address=127.0.0.1:{port}",
                "--num_processes=2",
                f"--process_id={i}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (0, 1)
    ]
    try:
        out = _Lines(procs[0])
        out.wait_for(r"step 4/100000 ")  # a checkpoint (step 3) exists by then
        killed = time.time()
        procs[1].send_signal(signal.SIGKILL)
        procs[0].wait(timeout=120)
        took = time.time() - killed
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    text = out.text()
    assert procs[0].returncode != 0
    assert took < 10, f"survivor took {took:.1f} s\n{text[-3000:]}"  # the bound
    named = "lost process 1 (no heartbeats)" in text or re.search(r"unhealthy[^\n]*\n1\n", text)
    assert named, text[-3000:]
    assert checkpoints.verified_step(run_dir)[0] >= 3  # the last checkpoint is intact


def test_sigterm_to_the_launcher_stops_both_after_saving(tmp_path, tiny_toyworld):
    run_dir = tmp_path / "run"
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=REPO, STOP_GRACE_S="60")
    env.pop("XLA_FLAGS", None)
    launcher = subprocess.Popen(
        [
            os.path.join(REPO, "launch", "local_two_process_cpu.sh"),
            *_train_args(run_dir, tiny_toyworld),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out = _Lines(launcher)
        out.wait_for(r"\[process 0\] .*step 4/100000 ")
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=120)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    time.sleep(1)  # the output threads drain
    text = out.text()
    assert launcher.returncode == 143, text[-3000:]
    stopped = dict(re.findall(r"process (\d) of 2: stopped by SIGTERM at step (\d+)", text))
    assert set(stopped) == {"0", "1"} and stopped["0"] == stopped["1"], text[-3000:]
    step, _ = checkpoints.verified_step(run_dir)  # intact: its digest verifies
    assert step == int(stopped["0"])
    assert not _alive(run_dir), "a training process outlived the launcher"


def _alive(run_dir) -> list[int]:
    """PIDs of processes whose command line mentions `run_dir` (read from /proc)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if str(run_dir).encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            continue
    return pids
