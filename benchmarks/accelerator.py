"""CaffeNet pre-training at the accelerator's limit, and whether the input pipeline keeps up.

    python benchmarks/accelerator.py            # CaffeNet, 256 images per device, all devices
    python benchmarks/accelerator.py --tiny     # a few seconds on any machine (CI runs it)
    XLA_FLAGS=--xla_force_host_platform_device_count=2 python benchmarks/accelerator.py \\
        --preset=small --batch_per_device=32 --steps=5     # the README's CPU figures

Sections (``--sections`` picks some):

- ``step``: the training step's images/s (`jaxcnn.train.train_step` under the default data
  parallelism over all local devices, Caffe's SGD, state donated, one batch resident on the
  devices) in each ``--dtypes``; its TFLOP/s (3x forward FLOPs) and model-FLOP utilisation
  against the peak named on the line (benchmarks/peaks.py: the datasheet's per chip on
  accelerators, a measured matmul on CPUs); memory per device (XLA's compiled estimate:
  arguments + outputs - donated + temporaries; the allocator's peak where the device reports it).
- ``forms``: the step on one device with each grouped-convolution form
  (`AlexNetConfig.grouped_impl`), and the LRN / pooling forms (benchmarks/layer_forms.py).
- ``scaling``: images/s over 1, 2, 4 ... N local devices at a fixed per-device batch.
- ``modes``: ``pmap`` against sharded ``jit`` (`jaxcnn.train.parallel`) on all devices.
- ``pipeline``: host images/s per core for ImageNet-sized and 256-px-prepared JPEGs
  (benchmarks/jpeg_pipeline.py), and so the host cores one device needs at the step's rate.
- ``e2e``: `jaxcnn.train.train` reading prepared records (toyworld by default) through the
  grain pipeline: images/s as the training log reports it.
- the host cores one device needs at the measured step rate and at a reference rate (CaffeNet
  at ``--reference_mfu`` of ``--reference_kind``'s bfloat16 peak: a stated assumption, for hosts
  without an accelerator), and the projected wall time of the paper's schedule (310k iterations
  x 256 images).

On a CPU with fake devices (XLA_FLAGS above) the devices share the host's cores: scaling and
modes then measure overheads, not speed-ups. ``--out`` writes every figure as JSON.
"""

import logging
import os
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import jpeg_pipeline
import layer_forms
import numpy as np
import peaks
from absl import app, flags

from jaxcnn import storage, train
from jaxcnn.model import alexnet
from jaxcnn.train import parallel, solver
from jaxcnn.train import step as step_lib

FLAGS = flags.FLAGS
SECTIONS = ("step", "forms", "scaling", "modes", "pipeline", "e2e")
flags.DEFINE_enum("preset", "caffenet", sorted(alexnet.PRESETS), "Network geometry.")
flags.DEFINE_float("width", 0.25, "small preset: conv width multiplier.")
flags.DEFINE_integer("fc_width", 512, "small preset: fc6/fc7 width.")
flags.DEFINE_integer("input_size", 64, "small preset: input size.")
flags.DEFINE_integer("batch_per_device", 256, "Images per device and step.")
flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Compute dtypes of the step section.")
flags.DEFINE_string("compare_dtype", "", "dtype of the other sections ('': bf16, f32 on CPU).")
flags.DEFINE_integer("steps", 10, "Timed steps per measurement.")
flags.DEFINE_integer("warmup", 2, "Untimed steps first (the first compiles).")
flags.DEFINE_integer("rounds", 3, "Timed rounds (alternating between compared variants); medians.")
flags.DEFINE_list("device_counts", [], "Device counts to scale over (default 1, 2, 4 ... N).")
flags.DEFINE_list("sections", list(SECTIONS), "Sections to run.")
flags.DEFINE_integer("matmul_size", 2048, "CPU: matmul size of the measured peak.")
flags.DEFINE_integer("pipeline_images", 32, "Distinct synthetic JPEGs per pipeline measurement.")
flags.DEFINE_string("jpeg_size", "500x375", "ImageNet-sized JPEG width x height.")
flags.DEFINE_float("pipeline_seconds", 1.0, "Minimum seconds per pipeline measurement.")
flags.DEFINE_string("e2e_dataset", "toyworld/source", "Prepared dataset of the e2e section.")
flags.DEFINE_string("e2e_data_dir", "", "Its TFDS data_dir ('': the default).")
flags.DEFINE_integer("e2e_crop", 64, "e2e crop (227: CaffeNet, else the small preset).")
flags.DEFINE_integer("e2e_resize", 72, "e2e resize (the dataset's stored size for toyworld).")
flags.DEFINE_integer("e2e_batch", 256, "e2e global batch.")
flags.DEFINE_integer("e2e_steps", 20, "e2e steps.")
flags.DEFINE_integer("e2e_workers", 0, "e2e grain worker processes.")
flags.DEFINE_string(
    "reference_kind", "NVIDIA H100 80GB HBM3", "Device kind (peaks.py) of the reference rate."
)
flags.DEFINE_float("reference_mfu", 0.4, "MFU assumed for the reference rate.")
flags.DEFINE_string("out", "", "Write all figures to this JSON file.")
flags.DEFINE_bool("tiny", False, "Tiny sizes everywhere (flags given explicitly still win).")

TINY = dict(
    preset="small", width=0.125, fc_width=32, input_size=32, batch_per_device=2, steps=2,
    warmup=1, rounds=1, matmul_size=128, pipeline_images=2, jpeg_size="320x240",
    pipeline_seconds=0.02, e2e_dataset="toyworld/source_tiny", e2e_batch=8, e2e_steps=2,
)  # fmt: skip
SCHEDULE = (310_000, 256)  # the paper's iterations and batch (docs/methods.md §2.2)


def _module(dtype: str, grouped: str = "split") -> alexnet.AlexNet:
    dt = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32
    kw = {"dtype": dt, "grouped_impl": grouped}
    if FLAGS.preset == "small":
        kw.update(width=FLAGS.width, fc_width=FLAGS.fc_width, input_size=FLAGS.input_size)
    return alexnet.from_preset(FLAGS.preset, 1000 if FLAGS.preset == "caffenet" else 100, **kw)


class _Bench:
    """The compiled step of `module` in `mode` over `devices` with its state and one batch
    resident on the devices, warmed up; `time()` runs `FLAGS.steps` steps."""

    def __init__(self, module, devices, mode: str):
        params = alexnet.init_params(module, jax.random.key(0))
        tx = solver.caffe_sgd(solver.step_schedule(0.01, gamma=0.1, step_size=100_000))
        state = step_lib.TrainState.create_for(
            apply_fn=module.apply, params=params, tx=tx, rng=jax.random.key(1)
        )
        cls = parallel.PmapRunner if mode == "pmap" else parallel.JitRunner
        self.n = FLAGS.batch_per_device * len(devices)
        self.runner = cls(devices, batch_size=self.n)
        size, rng = module.config.input_size, np.random.default_rng(0)
        batch = {
            "image": (64 * rng.normal(size=(self.n, size, size, 3))).astype(np.float32),
            "label": rng.integers(0, module.config.num_classes, self.n).astype(np.int32),
        }
        self.state, self.batch = self.runner.put_state(state), self.runner.place(batch)
        self.compiled = self.runner.train.lower(self.state, self.batch).compile()
        mem = self.compiled.memory_analysis()
        self.mem_bytes = None
        if mem is not None:  # per device: arguments + outputs - donated + temporaries
            self.mem_bytes = (
                mem.argument_size_in_bytes
                + mem.output_size_in_bytes
                - mem.alias_size_in_bytes
                + mem.temp_size_in_bytes
            )
        self._steps(FLAGS.warmup)

    def _steps(self, count: int):
        for _ in range(count):
            self.state, metrics = self.compiled(self.state, self.batch)
        jax.block_until_ready(metrics)
        loss = self.runner.scalars(metrics)["loss"]
        if not np.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss} in the benchmarked step")

    def time(self) -> tuple[float, float]:
        """(images/s, images per host CPU-second) over `FLAGS.steps` steps."""
        start, cpu_start = time.perf_counter(), time.process_time()
        self._steps(FLAGS.steps)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        return FLAGS.steps * self.n / seconds, FLAGS.steps * self.n / cpu_seconds


_BENCHES: dict = {}


def _bench(module, devices, mode: str) -> _Bench:
    key = (module, tuple(devices), mode)  # sections share compiled steps
    if key not in _BENCHES:
        _BENCHES[key] = _Bench(module, devices, mode)
    return _BENCHES[key]


def time_steps(benches: dict) -> dict:
    """{name: {img_per_s, img_per_cpu_s, mem_bytes}}: medians over `FLAGS.rounds` rounds that
    time the benches in alternating order, so that noise from other processes hits all alike."""
    names, rates = list(benches), {k: [] for k in benches}
    for r in range(FLAGS.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            rates[name].append(benches[name].time())
    return {
        k: {
            "img_per_s": statistics.median(x for x, _ in v),
            "img_per_cpu_s": statistics.median(c for _, c in v),  # CPUs: per core-second
            "mem_bytes": benches[k].mem_bytes,
        }
        for k, v in rates.items()
    }


def time_step(module, devices, mode: str) -> dict:
    return time_steps({0: _bench(module, devices, mode)})[0]


def _flops(module) -> float:
    return step_lib.train_flops_per_image(module.config, (*alexnet.CONV_NAMES, *alexnet.FC_NAMES))


def _mib(x):
    return "n/a" if x is None else f"{x / 2**20:,.0f} MiB"


def section_step(devices, results):
    n = len(devices)
    for dtype in FLAGS.dtypes:
        module = _module(dtype)
        r = time_step(module, devices, parallel.resolve("auto"))
        tflops = r["img_per_s"] * _flops(module) / 1e12
        peak, source, per_chip = peaks.peak(devices[0], dtype, matmul_size=FLAGS.matmul_size)
        total_peak = None if peak is None else peak * (n if per_chip else 1)
        mfu = f"{100 * tflops / total_peak:.1f}%" if total_peak else "n/a"
        stats = devices[0].memory_stats() or {}
        r.update(
            tflops=tflops,
            peak_tflops=total_peak,
            peak_source=source,
            device_peak_bytes=stats.get("peak_bytes_in_use"),
        )
        results["step"][dtype] = r
        print(
            f"step {dtype:8s} {n} device(s) x {FLAGS.batch_per_device}: "
            f"{r['img_per_s']:,.1f} img/s ({r['img_per_s'] / n:,.1f} per device; "
            f"{r['img_per_cpu_s']:,.1f} per host CPU-second), "
            f"{tflops:.3f} TFLOP/s, MFU {mfu} of {total_peak or 0:.2f} TFLOP/s [{source}]; "
            f"memory/device {_mib(r['mem_bytes'])} compiled, "
            f"{_mib(r['device_peak_bytes'])} allocator peak",
            flush=True,
        )  # fmt: skip


def section_forms(devices, results, dtype):
    mode, one = parallel.resolve("auto"), devices[:1]
    impls = ("split", "feature_group_count")
    got = time_steps({impl: _bench(_module(dtype, impl), one, mode) for impl in impls})
    for impl, r in got.items():
        results["forms"][f"grouped_{impl}"] = r["img_per_s"]
        print(f"forms grouped conv {impl:20s} {dtype}, 1 device: {r['img_per_s']:,.1f} img/s")
    rows = layer_forms.time_forms(
        _module(dtype).config, batch=FLAGS.batch_per_device, dtype=jnp.dtype(dtype),
        steps=FLAGS.steps, device=devices[0],
    )  # fmt: skip
    results["forms"]["layers"] = rows
    for row in rows:
        print(
            f"forms {row['layer']:5s} {row['form']:14s} {dtype}, batch {FLAGS.batch_per_device}: "
            f"{row['ms']:8.2f} ms forward+backward (max |diff| {row['max_abs_diff']:.1e})"
        )


def _counts(n):
    if FLAGS.device_counts:
        return [int(c) for c in FLAGS.device_counts if int(c) <= n]
    counts, c = [], 1
    while c < n:
        counts.append(c)
        c *= 2
    return [*counts, n]


def section_scaling(devices, results, dtype):
    mode, module = parallel.resolve("auto"), _module(dtype)
    got = time_steps({k: _bench(module, devices[:k], mode) for k in _counts(len(devices))})
    base = got[1]["img_per_s"] if 1 in got else None
    for k, r in got.items():
        rate = r["img_per_s"]
        results["scaling"][str(k)] = rate
        linear = f", {rate / (base * k):.0%} of linear" if base else ""
        print(
            f"scaling {mode} {dtype} {k} device(s): {rate:,.1f} img/s, "
            f"{rate / k:,.1f} per device{linear}"
        )


def section_modes(devices, results, dtype):
    module = _module(dtype)
    got = time_steps({mode: _bench(module, devices, mode) for mode in ("pmap", "jit")})
    for mode, r in got.items():
        results["modes"][mode] = r["img_per_s"]
        print(f"modes {mode:4s} {dtype} {len(devices)} device(s): {r['img_per_s']:,.1f} img/s")
    ratio = results["modes"]["jit"] / results["modes"]["pmap"]
    print(f"modes jit / pmap = {ratio:.2f}x (default here: {parallel.resolve('auto')})")


def section_pipeline(results):
    w, h = (int(v) for v in FLAGS.jpeg_size.split("x"))
    rows = jpeg_pipeline.measure(
        count=FLAGS.pipeline_images, size=(w, h), min_seconds=FLAGS.pipeline_seconds
    )
    results["pipeline"] = rows
    for row in rows:
        print(
            f"pipeline {row['source']:30s} {row['decoder']:18s} {row['img_per_s']:8.1f} img/s/core"
        )


def section_e2e(n_devices, results, dtype):
    crop = FLAGS.e2e_crop
    data_cfg = train.DataConfig(
        dataset=FLAGS.e2e_dataset, data_dir=FLAGS.e2e_data_dir, crop=crop,
        resize=FLAGS.e2e_resize, worker_count=FLAGS.e2e_workers,
    )  # fmt: skip
    small = {"width": FLAGS.width, "fc_width": FLAGS.fc_width, "input_size": crop}
    try:
        num_classes = train.num_classes(data_cfg)
    except FileNotFoundError as e:  # not prepared on this machine: say so, measure the rest
        print(f"e2e skipped: {e}")
        return
    cfg = train.TrainConfig(
        num_classes=num_classes, num_steps=FLAGS.e2e_steps,
        batch_size=FLAGS.e2e_batch, preset="caffenet" if crop == 227 else "small",
        model_overrides={} if crop == 227 else small, compute_dtype=dtype,
        log_every=FLAGS.e2e_steps, checkpoint_every=10**9,
    )  # fmt: skip
    records = []
    with tempfile.TemporaryDirectory() as run_dir:
        data = train.train_iterator(data_cfg, batch_size=cfg.batch_size, seed=0)
        train.train(cfg, run_dir, train_data=data, on_record=records.append)
    rate = records[-1]["img_per_s"]
    results["e2e"] = {"img_per_s": rate, "dataset": FLAGS.e2e_dataset, "preset": cfg.preset}
    print(
        f"e2e {FLAGS.e2e_dataset} ({cfg.preset}, {crop} px crops, batch {cfg.batch_size}, {dtype}, "
        f"{n_devices} device(s), {FLAGS.e2e_workers} grain workers): {rate:,.1f} img/s"
    )


def _hours(rate):
    return SCHEDULE[0] * SCHEDULE[1] / rate / 3600 if rate else float("nan")


def _best_per_core(rows) -> dict:
    """{(source, uint8 out): the best decoder's images/s per core}."""
    best = {}
    for row in rows:
        key = (row["source"].split()[0], row["decoder"].endswith("+uint8"))
        best[key] = max(best.get(key, 0.0), row["img_per_s"])
    return best


def summary(results, n, dtype):
    step = results["step"].get(dtype) or next(iter(results["step"].values()), None)
    best = _best_per_core(results["pipeline"])
    caffenet = alexnet.caffenet_config()
    peak, _ = peaks.table_peak(FLAGS.reference_kind, "bfloat16")
    reference = peak * 1e12 * FLAGS.reference_mfu / _flops(alexnet.AlexNet(caffenet))
    rates = {"measured": step["img_per_s"] / n if step else None, "reference": reference}
    for (source, uint8), per_core in sorted(best.items()):
        out = "uint8" if uint8 else "float32"
        for kind, rate in rates.items():
            if rate is None:
                continue
            results["cores_per_device"][f"{kind}/{source}/{out}"] = rate / per_core
            what = (
                f"the measured {FLAGS.preset} step"
                if kind == "measured"
                else f"CaffeNet at {FLAGS.reference_mfu:.0%} MFU of {FLAGS.reference_kind} bf16"
            )
            print(
                f"cores per device ({source}, {out} out, best decoder {per_core:,.0f} "
                f"img/s/core) at {what} ({rate:,.0f} img/s per device): {rate / per_core:,.1f}"
            )
    for dtype_, r in results["step"].items():
        print(f"projection {SCHEDULE[0]:,} x {SCHEDULE[1]} images at the {FLAGS.preset} {dtype_} "
              f"step rate on {n} device(s): {_hours(r['img_per_s']):,.2f} h")  # fmt: skip
    print(f"projection for CaffeNet at the reference rate ({reference:,.0f} img/s, one "
          f"{FLAGS.reference_kind}, not measured): {_hours(reference):,.2f} h")  # fmt: skip
    if results["e2e"]:
        print(f"projection at the e2e rate: {_hours(results['e2e']['img_per_s']):,.2f} h "
              f"(the e2e network, {results['e2e']['preset']})")  # fmt: skip


def main(argv):
    del argv
    logging.getLogger("absl").setLevel(logging.WARNING)  # Orbax's per-save chatter
    if FLAGS.tiny:
        for name, value in TINY.items():
            if not FLAGS[name].present:
                FLAGS[name].value = value
    bad = sorted(set(FLAGS.sections) - set(SECTIONS))
    if bad:
        raise app.UsageError(f"unknown sections {bad}; choose from {SECTIONS}")
    devices = jax.local_devices()
    n, platform = len(devices), devices[0].platform
    dtype = FLAGS.compare_dtype or ("float32" if platform == "cpu" else "bfloat16")
    print(
        f"{platform} x {n} ({devices[0].device_kind}), host cores {os.cpu_count()}, "
        f"jax {jax.__version__}; {FLAGS.preset} at {FLAGS.batch_per_device} images per device",
        flush=True,
    )
    results = {k: {} for k in (*SECTIONS, "cores_per_device")}
    results.update(platform=platform, device_kind=devices[0].device_kind, devices=n)
    results["pipeline"] = []
    if "step" in FLAGS.sections:
        section_step(devices, results)
    if "forms" in FLAGS.sections:
        section_forms(devices, results, dtype)
    if "scaling" in FLAGS.sections:
        section_scaling(devices, results, dtype)
    if "modes" in FLAGS.sections:
        section_modes(devices, results, dtype)
    if "pipeline" in FLAGS.sections:
        section_pipeline(results)
    if "e2e" in FLAGS.sections:
        section_e2e(n, results, dtype)
    summary(results, n, dtype)
    if FLAGS.out:
        storage.write_json(FLAGS.out, results, indent=1)


if __name__ == "__main__":
    app.run(main)
