"""XLA:CPU devices for the host's cores (docs/methods.md §2.8).

On one CPU device the small preset's training step keeps a 2-core host about 1.35 cores busy:
part of the step runs on one thread. Split into two devices, the data-parallel step
(`jaxcnn.train.parallel`) runs the two half batches' serial parts at once, while both halves
share XLA's thread pool for the rest: 1,135
against 880 images/s for the small preset at batch 128 on a 2-core CPU (3 alternating rounds,
`benchmarks/train_step.py --compare=devices`; 4 devices gave 1,020). The gradients are averaged
over the devices, so results agree with one device to float rounding, not bit for bit.

`split_host_cores` sets this up; the study's script calls it first for the small preset
(experiments/reproduce.py). CaffeNet's step is slower split (0.57x PyTorch's on 2 devices, 0.82x
on 1, in one run of `benchmarks/train_step.py`).
It must run before JAX starts its backends, and it changes only the host (CPU) platform: on a
GPU machine the GPUs stay the devices that train. Training that shares the cores with other
work should stay on one device (`TrainConfig.num_local_devices=1`): a split step waits at its
gradient all-reduce whenever the other work holds a core, so the study's fine-tunings, which run
beside its analyses, use one; feature extraction on a CPU uses one by default
(`jaxcnn.train.devices.data_parallel`).
"""

from __future__ import annotations

import os
import re

FLAG = "--xla_force_host_platform_device_count"
MAX_DEVICES = 8  # the study's batches (64, 128) split evenly; measured only on 2 cores


def device_count_for(cores: int) -> int:
    """The largest power of two that is at most `cores` and `MAX_DEVICES` (at least 1)."""
    return min(1 << (max(cores, 1).bit_length() - 1), MAX_DEVICES)


def split_host_cores(cores: int | None = None) -> int:
    """One XLA:CPU device per core (`device_count_for`), unless XLA_FLAGS already sets a count,
    which is kept. Returns the count in force."""
    flags = os.environ.get("XLA_FLAGS", "")
    found = re.search(rf"{FLAG}=(\d+)", flags)
    if found:
        return int(found.group(1))
    count = device_count_for((os.cpu_count() or 1) if cores is None else cores)
    os.environ["XLA_FLAGS"] = f"{flags} {FLAG}={count}".strip()
    return count
