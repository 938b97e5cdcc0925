"""Peak FLOP rates for model-FLOP utilisation (used by benchmarks/accelerator.py).

Accelerators: the vendor's dense (no structured sparsity) peak per chip, looked up by
``device.device_kind``. For float32 on NVIDIA Ampere and later, XLA's default precision runs
float32 matmuls and convolutions as TF32 on the tensor cores, so float32 is measured against the
TF32 peak there (and against the FP32 peak where there is no TF32). TPUs run float32 matmuls as
bfloat16 passes: both dtypes are measured against the bfloat16 peak.

CPUs: no table; the peak is measured, as the rate of a large jitted matmul on this host in that
dtype (an achievable peak, not the datasheet's), for all of the host's cores together.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

# device_kind substring (lower case, most specific first) -> {dtype: TFLOP/s dense}, source.
PEAKS = (
    ("h100 pcie", {"bfloat16": 756.0, "float32": 378.0}, "NVIDIA H100 PCIe datasheet (TF32)"),
    ("h100", {"bfloat16": 989.4, "float32": 494.7}, "NVIDIA H100 SXM datasheet (TF32)"),
    ("h200", {"bfloat16": 989.4, "float32": 494.7}, "NVIDIA H200 SXM datasheet (TF32)"),
    ("a100", {"bfloat16": 312.0, "float32": 156.0}, "NVIDIA A100 datasheet (TF32)"),
    ("l40s", {"bfloat16": 362.1, "float32": 183.0}, "NVIDIA L40S datasheet (TF32)"),
    ("l40", {"bfloat16": 181.0, "float32": 90.5}, "NVIDIA L40 datasheet (TF32)"),
    ("l4", {"bfloat16": 121.0, "float32": 60.0}, "NVIDIA L4 datasheet (TF32)"),
    ("a10", {"bfloat16": 125.0, "float32": 62.5}, "NVIDIA A10 datasheet (TF32)"),
    ("v100", {"float32": 15.7}, "NVIDIA V100 SXM2 datasheet (FP32; no bfloat16 units)"),
    ("t4", {"float32": 8.1}, "NVIDIA T4 datasheet (FP32; no bfloat16 units)"),
    ("k40", {"float32": 4.29}, "NVIDIA Tesla K40 datasheet (FP32; the paper's GPU)"),
    ("tpu v6", {"bfloat16": 918.0, "float32": 918.0}, "Cloud TPU v6e (bf16 MXU)"),
    ("tpu v5 lite", {"bfloat16": 197.0, "float32": 197.0}, "Cloud TPU v5e (bf16 MXU)"),
    ("tpu v5", {"bfloat16": 459.0, "float32": 459.0}, "Cloud TPU v5p (bf16 MXU)"),
    ("tpu v4", {"bfloat16": 275.0, "float32": 275.0}, "Cloud TPU v4 (bf16 MXU)"),
)


def table_peak(device_kind: str, dtype: str) -> tuple[float | None, str]:
    """(TFLOP/s per chip or None, where it comes from) for `device_kind` in `dtype`."""
    kind = device_kind.lower()
    for key, peaks, source in PEAKS:
        if key in kind:
            if dtype in peaks:
                return peaks[dtype], source
            return None, f"{source}: no {dtype} peak listed"
    return None, f"{device_kind!r} is not in benchmarks/peaks.py's table"


def matmul_peak(dtype: str, *, size: int = 2048, repeats: int = 5, device=None) -> float:
    """Measured TFLOP/s of a jitted size x size matmul in `dtype` (best of `repeats`)."""
    device = device or jax.local_devices()[0]
    dt = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32
    keys = jax.random.split(jax.random.key(0))
    a, b = (jax.device_put(jax.random.normal(k, (size, size), dt), device) for k in keys)
    f = jax.jit(lambda x, y: x @ y)
    f(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        f(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e12


def peak(device, dtype: str, *, matmul_size: int = 2048) -> tuple[float | None, str, bool]:
    """(TFLOP/s, how it was obtained, per_chip). On CPU the peak is measured and covers the
    whole host (all fake devices share its cores): per_chip is False."""
    if device.platform == "cpu":
        tflops = matmul_peak(dtype, size=matmul_size, device=device)
        return tflops, f"measured {matmul_size}^2 matmul on this host's cores ({dtype})", False
    tflops, source = table_peak(device.device_kind, dtype)
    return tflops, source, True
