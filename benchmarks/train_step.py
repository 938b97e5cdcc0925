"""One SGD training step of CaffeNet: jaxcnn (JAX/Flax) against the same network in PyTorch.

Both sides build the identical network (grouped conv2/4/5, Caffe LRN, ceil-mode pooling, dropout),
the same loss (softmax cross-entropy) and the same update (SGD, momentum 0.9, weight decay 5e-4), on
the same random batch. Runs alternate A/B so that noise from other processes hits both; the
medians of the rounds are printed with the median of the per-round ratios (jaxcnn images/s over
PyTorch images/s) and the load average before and after.

    pip install -e '.[bench]'
    python benchmarks/train_step.py                    # CaffeNet, 227 px, batch 32
    python benchmarks/train_step.py --preset=small --batch=128
    python benchmarks/train_step.py --preset=small --batch=128 --jax_devices=2
        jaxcnn's step split over 2 XLA:CPU devices, as the study pre-trains on a 2-core CPU
        (docs/methods.md §2.8); PyTorch keeps its intra-op threads

Two more comparisons use jaxcnn's own training step (`jaxcnn.train.train_step`, Caffe's SGD):

    python benchmarks/train_step.py --compare=regimes --preset=small --batch=128
        fine-tuning regimes: ft (all layers) against fc-ft (conv1-5 frozen and not
        back-propagated into), in jaxcnn and in PyTorch (conv parameters with
        requires_grad=False), alternating; prints the fc-ft speed-up of each framework.
    python benchmarks/train_step.py --compare=devices --preset=small --batch=128
        data parallelism: the pmapped step on 1 device against fake CPU devices
        (--device_counts, default 1,8; XLA_FLAGS=--xla_force_host_platform_device_count),
        same global batch, one child process per measurement, alternating; on a CPU this
        measures splitting the batch over devices that share the same cores (the study splits
        its pre-training over one device per core, docs/methods.md §2.8), on a multi-GPU host
        the scaling.
"""

import functools
import os
import re
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxcnn.model import alexnet
from jaxcnn.train import devices as device_lib
from jaxcnn.train import distributed, host_memory, regimes, solver
from jaxcnn.train import step as step_lib

FLAGS = flags.FLAGS
flags.DEFINE_enum("preset", "caffenet", sorted(alexnet.PRESETS), "Network geometry.")
flags.DEFINE_integer("batch", 32, "Images per step.")
flags.DEFINE_integer("rounds", 5, "Alternating A/B rounds; medians are reported.")
flags.DEFINE_integer("steps", 3, "Steps timed per round and framework.")
flags.DEFINE_integer("threads", 0, "PyTorch intra-op threads (0: one per core).")
flags.DEFINE_enum("compare", "torch", ["torch", "regimes", "devices"], "What to compare.")
flags.DEFINE_integer("child_devices", 0, "Internal: time the pmapped step on this many devices.")
flags.DEFINE_integer(
    "jax_devices", 1, "--compare=torch: jaxcnn's step split over this many XLA:CPU devices."
)
flags.DEFINE_list("device_counts", ["1", "8"], "--compare=devices: counts, the first the base.")
flags.DEFINE_bool(
    "keep_freed_memory",
    True,
    "glibc keeps freed memory for reuse, as jaxcnn's scripts set it (jaxcnn.train.host_memory; "
    "both frameworks allocate through it).",
)


def jax_step_fn(module, params):
    tx = optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(0.01, momentum=0.9))

    def loss_fn(p, x, y, rng):
        logits, _ = module.apply({"params": p}, x, train=True, rngs={"dropout": rng})
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def step(p, opt_state, x, y, rng):
        loss, grads = jax.value_and_grad(loss_fn)(p, x, y, rng)
        updates, opt_state = tx.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1)), tx.init(params)


def torch_net(config):
    import torch
    from torch import nn

    layers, cin, size = [], 3, config.input_size
    for layer in config.convs:
        layers += [
            nn.Conv2d(
                cin, layer.features, layer.kernel, layer.stride, layer.padding, groups=layer.groups
            ),
            nn.ReLU(),
        ]
        if layer.pool:
            layers.append(nn.MaxPool2d(config.pool_window, config.pool_stride, ceil_mode=True))
        if layer.lrn:  # PyTorch, like Caffe, divides alpha by the window size.
            layers.append(
                nn.LocalResponseNorm(
                    config.lrn_size, config.lrn_alpha, config.lrn_beta, config.lrn_k
                )
            )
        cin = layer.features
    size = config.feature_shapes()["conv5"][0]
    din = size * size * cin
    layers.append(nn.Flatten())
    for fc in config.fcs:
        layers += [nn.Linear(din, fc.features), nn.ReLU(), nn.Dropout(config.dropout_rate)]
        din = fc.features
    layers.append(nn.Linear(din, config.num_classes))
    return torch.nn.Sequential(*layers)


def time_rounds(fn, steps):
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return time.perf_counter() - start


def _module_and_batch(torch):
    """The benchmarked network and one random batch (numpy, NHWC), shared by the comparisons."""
    if FLAGS.threads:
        torch.set_num_threads(FLAGS.threads)
    module = alexnet.from_preset(FLAGS.preset, 1000 if FLAGS.preset == "caffenet" else 100)
    cfg, n = module.config, FLAGS.batch
    rng = np.random.default_rng(0)
    x_np = rng.normal(size=(n, cfg.input_size, cfg.input_size, 3)).astype(np.float32)
    return module, x_np, rng.integers(0, cfg.num_classes, size=n)


def compare_torch():
    import torch

    module, x_np, y_np = _module_and_batch(torch)
    cfg, n = module.config, FLAGS.batch

    params = alexnet.init_params(module, jax.random.key(0))
    step, opt_state = jax_step_fn(module, params)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    if FLAGS.jax_devices > 1:  # committed shardings: jit partitions the step over the mesh
        mesh = Mesh(np.asarray(jax.devices()[: FLAGS.jax_devices]), ("batch",))
        replicated, rows = (
            NamedSharding(mesh, PartitionSpec()),
            NamedSharding(mesh, PartitionSpec("batch")),
        )
        params, opt_state = jax.device_put((params, opt_state), replicated)
        x, y = jax.device_put(x_np, rows), jax.device_put(y_np, rows)
    state = {"p": params, "o": opt_state, "i": 0}

    def jax_once():
        state["i"] += 1
        state["p"], state["o"], loss = step(
            state["p"], state["o"], x, y, jax.random.key(state["i"])
        )
        loss.block_until_ready()

    net = torch_net(cfg)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    xt = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy())
    yt = torch.from_numpy(y_np)
    net.train()

    def torch_once():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()

    load_before = os.getloadavg()[0]
    jax_once(), torch_once()  # compile / warm up
    jax_once(), torch_once()
    rates = {"jaxcnn": [], "pytorch": []}
    for r in range(FLAGS.rounds):
        order = [("jaxcnn", jax_once), ("pytorch", torch_once)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            rates[name].append(FLAGS.steps * n / time_rounds(fn, FLAGS.steps))
        print(
            f"round {r + 1}/{FLAGS.rounds}: jaxcnn {rates['jaxcnn'][-1]:.1f} img/s, "
            f"pytorch {rates['pytorch'][-1]:.1f} img/s",
            flush=True,
        )
    med = {k: statistics.median(v) for k, v in rates.items()}
    tflops = 3 * alexnet.forward_flops(cfg) * med["jaxcnn"] / 1e12
    print(
        f"\n{FLAGS.preset}, {cfg.input_size} px, batch {n}, float32, "
        f"{jax.devices()[0].platform} (jaxcnn on {FLAGS.jax_devices} device(s)), "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"median jaxcnn  {med['jaxcnn']:8.1f} img/s  ({tflops:.3f} TFLOP/s, 3x forward FLOPs)")
    print(f"median pytorch {med['pytorch']:8.1f} img/s")
    ratios = [a / b for a, b in zip(rates["jaxcnn"], rates["pytorch"], strict=True)]
    print(
        f"ratio jaxcnn / pytorch, median of the {len(ratios)} per-round ratios = "
        f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f})"
    )
    print(f"load average (1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")


def _jax_regime_step(module, regime, source, x, y):
    """A closure running one jaxcnn train_step of `regime` (ft / fc-ft) from `source`."""
    params, trainable = regimes.start_params(regime, module, jax.random.key(1), source)
    params = jax.tree_util.tree_map(jnp.copy, params)  # own buffers: the step donates them
    tx = solver.caffe_sgd(0.001, momentum=0.9, weight_decay=5e-4)
    state = {
        "s": step_lib.TrainState.create_for(
            apply_fn=module.apply, params=params, tx=tx, rng=jax.random.key(2), trainable=trainable
        )
    }
    step = jax.jit(step_lib.train_step, donate_argnums=0)
    batch = {"image": x, "label": y}

    def once():
        state["s"], metrics = step(state["s"], batch)
        metrics["loss"].block_until_ready()

    return once


def _torch_regime_step(cfg, regime, xt, yt):
    import torch

    net = torch_net(cfg)
    conv_part = net[: [type(m).__name__ for m in net].index("Flatten")]
    if regime == "fc-ft":  # frozen and, with no input gradient needed, not back-propagated into
        for p in conv_part.parameters():
            p.requires_grad_(False)
    trainable = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(trainable, lr=0.001, momentum=0.9, weight_decay=5e-4)
    net.train()

    def once():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()

    return once


def _alternate(fns: dict, rounds: int, steps: int, n: int) -> dict:
    for fn in fns.values():  # compile / warm up
        fn(), fn()
    rates = {k: [] for k in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            rates[name].append(steps * n / time_rounds(fns[name], steps))
        print(
            f"round {r + 1}/{rounds}: "
            + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items())
            + " img/s",
            flush=True,
        )
    return {k: statistics.median(v) for k, v in rates.items()}


def compare_regimes():
    """ft vs fc-ft step time, jaxcnn and PyTorch, on the same batch."""
    import torch

    module, x_np, y_np = _module_and_batch(torch)
    cfg, n = module.config, FLAGS.batch
    source = alexnet.init_params(module, jax.random.key(0))
    xt = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy())
    yt = torch.from_numpy(y_np)
    fns = {}
    for regime in ("ft", "fc-ft"):
        fns[f"jaxcnn {regime}"] = _jax_regime_step(
            module, regime, source, jnp.asarray(x_np), jnp.asarray(y_np, jnp.int32)
        )
        fns[f"pytorch {regime}"] = _torch_regime_step(cfg, regime, xt, yt)
    med = _alternate(fns, FLAGS.rounds, FLAGS.steps, n)
    print(
        f"\n{FLAGS.preset}, {cfg.input_size} px, batch {n}, float32, "
        f"{jax.devices()[0].platform}, torch threads {torch.get_num_threads()}"
    )
    for name, rate in med.items():
        regime = name.split()[1]
        flops = step_lib.train_flops_per_image(
            cfg, alexnet.FC_NAMES if regime == "fc-ft" else (*alexnet.CONV_NAMES, *alexnet.FC_NAMES)
        )
        print(f"median {name:15s} {rate:8.1f} img/s ({rate * flops / 1e12:.3f} TFLOP/s)")
    for fw in ("jaxcnn", "pytorch"):
        print(f"fc-ft / ft speed-up, {fw}: {med[fw + ' fc-ft'] / med[fw + ' ft']:.2f}x")
    for regime in ("ft", "fc-ft"):
        print(
            f"ratio jaxcnn / pytorch, {regime}: "
            f"{med['jaxcnn ' + regime] / med['pytorch ' + regime]:.2f}x"
        )


def time_devices():
    """Child process: images/s of the pmapped train_step on `child_devices` devices."""
    ndev = FLAGS.child_devices
    devices = jax.local_devices()[:ndev]
    if len(devices) != ndev:
        raise SystemExit(f"asked for {ndev} devices, have {jax.local_device_count()}")
    module = alexnet.from_preset(FLAGS.preset, 1000 if FLAGS.preset == "caffenet" else 100)
    cfg, n = module.config, FLAGS.batch
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.normal(size=(n, cfg.input_size, cfg.input_size, 3)).astype(np.float32),
        "label": rng.integers(0, cfg.num_classes, size=n).astype(np.int32),
    }
    batch = device_lib.split_for_devices(batch, ndev)
    params, trainable = regimes.start_params("pretrain", module, jax.random.key(0))
    state = step_lib.TrainState.create_for(
        apply_fn=module.apply, params=params, tx=solver.caffe_sgd(0.001), rng=jax.random.key(1)
    )
    state = distributed.replicate(state, devices)
    step = jax.pmap(
        functools.partial(step_lib.train_step, axis_name="batch"),
        axis_name="batch",
        devices=devices,
        donate_argnums=0,
    )
    holder = {"s": state}

    def once():
        holder["s"], metrics = step(holder["s"], batch)
        jax.block_until_ready(metrics["loss"])

    once(), once()
    print(f"IMG_PER_S {FLAGS.steps * n / time_rounds(once, FLAGS.steps):.3f}", flush=True)


def compare_devices():
    """Device counts (`--device_counts`), one child process per measurement, alternating."""
    counts = [int(c) for c in FLAGS.device_counts]
    rates = {n: [] for n in counts}
    for r in range(FLAGS.rounds):
        for ndev in counts if r % 2 == 0 else counts[::-1]:
            env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={ndev}")
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    f"--child_devices={ndev}",
                    f"--preset={FLAGS.preset}",
                    f"--batch={FLAGS.batch}",
                    f"--steps={FLAGS.steps}",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rates[ndev].append(float(re.search(r"IMG_PER_S ([\d.]+)", out).group(1)))
        print(
            f"round {r + 1}/{FLAGS.rounds}: "
            + ", ".join(f"{n} device(s) {v[-1]:.1f} img/s" for n, v in rates.items()),
            flush=True,
        )
    base = counts[0]
    print(f"\n{FLAGS.preset}, batch {FLAGS.batch} (global), float32, pmapped jaxcnn train_step")
    print(f"load average (1 min) after {os.getloadavg()[0]:.2f}")
    for n, v in rates.items():
        ratios = [a / b for a, b in zip(v, rates[base], strict=True)]
        print(
            f"{n} device(s): median {statistics.median(v):8.1f} img/s, "
            f"ratio to {base}: {statistics.median(ratios):.2f}x (rounds "
            f"{min(ratios):.2f}-{max(ratios):.2f})"
        )


def main(_):
    if FLAGS.jax_devices > 1:  # before JAX starts its backends
        os.environ["XLA_FLAGS"] = (
            f"{os.environ.get('XLA_FLAGS', '')} "
            f"--xla_force_host_platform_device_count={FLAGS.jax_devices}"
        )
    if FLAGS.keep_freed_memory:
        print(f"keep_freed_memory: {host_memory.keep_freed_memory()}")
    if FLAGS.child_devices:
        time_devices()
    elif FLAGS.compare == "regimes":
        compare_regimes()
    elif FLAGS.compare == "devices":
        compare_devices()
    else:
        compare_torch()


if __name__ == "__main__":
    app.run(main)
