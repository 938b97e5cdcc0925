"""One SGD training step of CaffeNet: jaxcnn (JAX/Flax) against the same network in PyTorch.

Both sides build the identical network (grouped conv2/4/5, Caffe LRN, ceil-mode pooling, dropout),
the same loss (softmax cross-entropy) and the same update (SGD, momentum 0.9, weight decay 5e-4), on
the same random batch. Runs alternate A/B so that noise from other processes hits both; the
medians of the rounds are printed with the ratio (jaxcnn images/s over PyTorch images/s).

    pip install -e '.[bench]'
    python benchmarks/train_step.py                    # CaffeNet, 227 px, batch 32
    python benchmarks/train_step.py --preset=small --batch=128
"""

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from jaxcnn import models

FLAGS = flags.FLAGS
flags.DEFINE_enum("preset", "caffenet", sorted(models.PRESETS), "Network geometry.")
flags.DEFINE_integer("batch", 32, "Images per step.")
flags.DEFINE_integer("rounds", 5, "Alternating A/B rounds; medians are reported.")
flags.DEFINE_integer("steps", 3, "Steps timed per round and framework.")
flags.DEFINE_integer("threads", 0, "PyTorch intra-op threads (0: one per core).")


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


def main(_):
    import torch

    if FLAGS.threads:
        torch.set_num_threads(FLAGS.threads)
    module = models.from_preset(FLAGS.preset, 1000 if FLAGS.preset == "caffenet" else 100)
    cfg, n = module.config, FLAGS.batch
    rng = np.random.default_rng(0)
    x_np = rng.normal(size=(n, cfg.input_size, cfg.input_size, 3)).astype(np.float32)
    y_np = rng.integers(0, cfg.num_classes, size=n)

    params = models.init_params(module, jax.random.key(0))
    step, opt_state = jax_step_fn(module, params)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
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
    tflops = 3 * models.forward_flops(cfg) * med["jaxcnn"] / 1e12
    print(
        f"\n{FLAGS.preset}, {cfg.input_size} px, batch {n}, float32, "
        f"{jax.devices()[0].platform} ({jax.device_count()} device), "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"median jaxcnn  {med['jaxcnn']:8.1f} img/s  ({tflops:.3f} TFLOP/s, 3x forward FLOPs)")
    print(f"median pytorch {med['pytorch']:8.1f} img/s")
    print(f"ratio jaxcnn / pytorch = {med['jaxcnn'] / med['pytorch']:.2f}x")


if __name__ == "__main__":
    app.run(main)
