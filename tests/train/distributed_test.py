"""Tests for jaxcnn.train.distributed: batch splitting, replication, single-process collectives,
and a
real two-process loopback run through launch/local_two_process_cpu.sh."""

import os
import re
import subprocess
import sys

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
    env = dict(os.environ, PYTHON=sys.executable, DEVICES_PER_PROCESS=str(local_devices))
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
