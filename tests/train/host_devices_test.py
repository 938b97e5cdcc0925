"""Tests for jaxcnn.train.host_devices: one XLA:CPU device per core, an explicit count kept."""

import os
import subprocess
import sys

import pytest

from jaxcnn.train import host_devices

FLAG = "--xla_force_host_platform_device_count"


@pytest.mark.parametrize(
    "cores, devices", [(0, 1), (1, 1), (2, 2), (3, 2), (4, 4), (6, 4), (8, 8), (16, 8), (96, 8)]
)
def test_device_count_is_a_power_of_two_within_the_cores_and_the_cap(cores, devices):
    assert host_devices.device_count_for(cores) == devices


def test_other_xla_flags_are_kept_and_the_count_appended(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    assert host_devices.split_host_cores(cores=3) == 2
    assert os.environ["XLA_FLAGS"] == f"--xla_cpu_enable_fast_math=false {FLAG}=2"


def test_a_count_already_set_is_kept(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", f"--xla_cpu_enable_fast_math=false {FLAG}=5")
    assert host_devices.split_host_cores(cores=2) == 5
    assert os.environ["XLA_FLAGS"] == f"--xla_cpu_enable_fast_math=false {FLAG}=5"


def test_jax_started_afterwards_has_the_devices():
    """In a fresh process without XLA_FLAGS, JAX's CPU platform shows the split."""
    child = (
        "from jaxcnn.train import host_devices\n"
        "n = host_devices.split_host_cores(cores=4)\n"
        "import jax\n"
        "print(n, jax.local_device_count())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run(
        [sys.executable, "-c", child],
        capture_output=True,
        text=True,
        check=True,
        env={**env, "JAX_PLATFORMS": "cpu"},
    )
    assert out.stdout.split() == ["4", "4"]
