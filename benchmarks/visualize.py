"""Visualisation speed: jaxcnn against Captum (PyTorch) on the same CaffeNet, same inputs.

    pip install -e '.[bench]'
    python benchmarks/visualize.py                       # occlusion + deconvnet, CaffeNet 227 px
    python benchmarks/visualize.py --parts=projections --channels=1  # one map: the same work
    python benchmarks/visualize.py --compare=train_step  # training step with the rule option

`--compare=captum` (default) builds CaffeNet (random Caffe-initialised weights, 1000 classes) in
jaxcnn and copies the weights into the same network in PyTorch (grouped convs, Caffe LRN,
ceil-mode pooling), then times, alternating A/B over rounds and printing medians:

- occlusion maps of one 227 px image, square 32 px, stride 8 (25 x 25 = 625 positions):
  `jaxcnn.visualize.occlusion_maps` (chunks of --chunk occluded copies through one compiled
  forward) against `captum.attr.Occlusion` on the softmax output with the same window, stride,
  baseline 0 and `perturbations_per_eval=--chunk`;
- deconvnet projections of the strongest conv-5 activation of --channels feature maps in each of
  --images images: `jaxcnn.visualize.project` (one call, vmapped over the channels) against
  `captum.attr.NeuronDeconvolution` on pool-5 (one call per channel, all images batched).
  Captum seeds the backward pass with 1 and jaxcnn with the activation's value, so the
  projections are compared after scaling Captum's by that value (the max relative difference is
  printed).

`--compare=train_step` times the jaxcnn training step (SGD, momentum, weight decay) of
`alexnet.AlexNet` with the backward-rule option in place (`alexnet.LayerOps`, default ops) against
the same network with the pre-option forward pass written out (`LegacyAlexNet` below), and
checks that their jaxprs are identical.
"""

import os
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from jaxcnn import visualize
from jaxcnn.model import alexnet

FLAGS = flags.FLAGS
flags.DEFINE_enum("compare", "captum", ["captum", "train_step"], "What to compare.")
flags.DEFINE_integer("rounds", 3, "Alternating A/B rounds; medians are reported.")
flags.DEFINE_integer("chunk", 32, "Occluded copies per forward pass (both frameworks).")
flags.DEFINE_integer("images", 8, "Images per projection call.")
flags.DEFINE_integer("channels", 8, "conv-5 feature maps projected per image.")
flags.DEFINE_integer("threads", 0, "PyTorch intra-op threads (0: one per core).")
flags.DEFINE_multi_enum("parts", ["occlusion", "projections"], ["occlusion", "projections"],
                        "captum: which comparisons to run.")  # fmt: skip
flags.DEFINE_enum("preset", "small", sorted(alexnet.PRESETS), "train_step: network geometry.")
flags.DEFINE_integer("batch", 128, "train_step: images per step.")
flags.DEFINE_integer("steps", 3, "train_step: steps timed per round.")


def torch_caffenet(config, params):
    """CaffeNet in PyTorch with jaxcnn's `params` copied in (HWIO -> OIHW; fc6 rows from our
    (H, W, C) flattening to PyTorch's (C, H, W))."""
    import torch
    from torch import nn

    layers, cin, convs = [], 3, []
    for layer in config.convs:
        conv = nn.Conv2d(cin, layer.features, layer.kernel, layer.stride, layer.padding,
                         groups=layer.groups)  # fmt: skip
        convs.append(conv)
        layers += [conv, nn.ReLU()]
        if layer.pool:
            layers.append(nn.MaxPool2d(config.pool_window, config.pool_stride, ceil_mode=True))
        if layer.lrn:  # PyTorch, like Caffe, divides alpha by the window size
            layers.append(nn.LocalResponseNorm(config.lrn_size, config.lrn_alpha,
                                               config.lrn_beta, config.lrn_k))  # fmt: skip
        cin = layer.features
    size = config.feature_shapes()["conv5"][0]
    dense = [nn.Linear(size * size * cin, config.fcs[0].features)]
    dense += [nn.Linear(config.fcs[0].features, config.fcs[1].features)]
    dense += [nn.Linear(config.fcs[1].features, config.num_classes)]
    net = nn.Sequential(*layers, nn.Flatten(), dense[0], nn.ReLU(), dense[1], nn.ReLU(), dense[2])
    t = lambda a: torch.from_numpy(np.array(a, np.float32))  # noqa: E731  (a writable copy)
    with torch.no_grad():
        for conv, name in zip(convs, alexnet.CONV_NAMES, strict=True):
            conv.weight.copy_(t(np.transpose(params[name]["kernel"], (3, 2, 0, 1))))
            conv.bias.copy_(t(params[name]["bias"]))
        k6 = np.asarray(params["fc6"]["kernel"]).reshape(size, size, cin, -1)
        dense[0].weight.copy_(t(k6.transpose(2, 0, 1, 3).reshape(size * size * cin, -1).T))
        for lin, name in zip(dense, alexnet.FC_NAMES, strict=True):
            if name != "fc6":
                lin.weight.copy_(t(np.asarray(params[name]["kernel"]).T))
            lin.bias.copy_(t(params[name]["bias"]))
    return net.eval(), len(layers) - 1  # the Sequential index of pool-5


def _median_rates(fns: dict, rounds: int, work: int) -> dict:
    """Alternate the closures over `rounds` (order flipped every round): median items/s."""
    for fn in fns.values():
        fn()  # compile / warm up
    rates = {k: [] for k in fns}
    for r in range(rounds):
        for name in list(fns) if r % 2 == 0 else list(fns)[::-1]:
            start = time.perf_counter()
            fns[name]()
            rates[name].append(work / (time.perf_counter() - start))
        print(f"round {r + 1}/{rounds}: "
              + ", ".join(f"{k} {v[-1]:.2f}/s" for k, v in rates.items()), flush=True)  # fmt: skip
    return {k: statistics.median(v) for k, v in rates.items()}


def _report(what, med, unit):
    names = list(med)
    for name in names:
        print(f"median {name:10s} {med[name]:9.3f} {unit}/s")
    print(f"ratio {names[0]} / {names[1]}, {what}: {med[names[0]] / med[names[1]]:.2f}x")


def compare_occlusion(module, params, net, image_np, label):
    import torch
    from captum.attr import Occlusion

    size, stride = 32, 8
    x = jnp.asarray(image_np)

    def jax_once():
        maps = visualize.occlusion_maps(module, params, x, label=label, size=size, stride=stride,
                                        chunk=FLAGS.chunk)  # fmt: skip
        maps["prob"].block_until_ready()

    probs = torch.nn.Sequential(net, torch.nn.Softmax(dim=1))
    occ = Occlusion(probs)
    xt = torch.from_numpy(image_np.transpose(2, 0, 1)[None].copy())

    def captum_once():
        with torch.no_grad():
            occ.attribute(
                xt, sliding_window_shapes=(3, size, size), strides=(3, stride, stride),
                baselines=0.0, target=label, perturbations_per_eval=FLAGS.chunk,
            )  # fmt: skip

    rows, cols = visualize.occlusion.grid_shape(227, 227, size, stride)
    print(f"\nocclusion: 227 px image, square {size}, stride {stride}: {rows} x {cols} positions")
    med = _median_rates({"jaxcnn": jax_once, "captum": captum_once}, FLAGS.rounds, 1)
    _report("occlusion maps", med, "maps")


def compare_projections(module, params, net, pool5_index, x_np):
    import torch
    from captum.attr import NeuronDeconvolution

    channels = list(range(FLAGS.channels))
    x = jnp.asarray(x_np)
    xt = torch.from_numpy(x_np.transpose(0, 3, 1, 2).copy())
    deconv = NeuronDeconvolution(net, net[pool5_index])

    def strongest(c):  # each image's strongest activation of map c (first max, row-major)
        return lambda out: out[:, c].flatten(1).max(dim=1).values

    def jax_once():
        return visualize.project(module, params, x, layer="conv5", channel=channels)

    def captum_once():
        return [deconv.attribute(xt, neuron_selector=strongest(c)) for c in channels]

    got, ref = np.asarray(jax_once()), captum_once()
    _, taps = jax.jit(lambda p, v: module.apply({"params": p}, v, train=False))(params, x)
    conv5 = np.asarray(taps["conv5"])
    rel = 0.0
    for k, c in enumerate(channels):
        value = conv5[..., c].reshape(len(x_np), -1).max(axis=1)[:, None, None, None]
        want = ref[k].detach().numpy().transpose(0, 2, 3, 1) * value
        rel = max(rel, float(np.abs(got[k] - want).max() / max(np.abs(want).max(), 1e-30)))
    print(f"\ndeconvnet: {len(x_np)} images x {len(channels)} conv5 maps; "
          f"max |jaxcnn - captum| / max |captum| = {rel:.2e}")  # fmt: skip
    fns = {"jaxcnn": lambda: jax_once().block_until_ready(), "captum": captum_once}
    med = _median_rates(fns, FLAGS.rounds, len(x_np) * len(channels))
    _report("deconvnet projections", med, "projections")


def compare_captum():
    import torch

    if FLAGS.threads:
        torch.set_num_threads(FLAGS.threads)
    module = alexnet.caffenet(1000)
    params = jax.device_get(alexnet.init_params(module, jax.random.key(0)))
    net, pool5 = torch_caffenet(module.config, params)
    rng = np.random.default_rng(0)
    images = (rng.normal(size=(FLAGS.images, 227, 227, 3)) * 50).astype(np.float32)
    print(f"CaffeNet 227 px, float32, {jax.devices()[0].platform}, "
          f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()}")  # fmt: skip
    if "occlusion" in FLAGS.parts:
        compare_occlusion(module, params, net, images[0], label=3)
    if "projections" in FLAGS.parts:
        compare_projections(module, params, net, pool5, images)
    print(f"load average at the end {os.getloadavg()}")


class LegacyAlexNet(alexnet.AlexNet):
    """`alexnet.AlexNet.__call__` as it was before the backward-rule option (commit f5ee98f): ReLU,
    pooling and LRN called directly rather than through `self.ops` (the baseline of
    --compare=train_step)."""

    @nn.compact
    def __call__(self, x, *, train: bool):
        cfg = self.config
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected NHWC images with 3 channels, got shape {x.shape}")
        taps = {}
        x = x.astype(cfg.dtype)
        if cfg.input_scale != 1.0:
            x = x * cfg.input_scale
        for name, layer in zip(alexnet.CONV_NAMES, cfg.convs, strict=True):
            x = nn.relu(alexnet.CaffeConv(layer, cfg.grouped_impl, cfg.dtype, name=name)(x))
            if layer.pool:
                x = alexnet.max_pool_ceil(x, cfg.pool_window, cfg.pool_stride)
            if layer.lrn:
                x = alexnet.local_response_norm(
                    x, size=cfg.lrn_size, alpha=cfg.lrn_alpha, beta=cfg.lrn_beta, k=cfg.lrn_k
                )
            taps[name] = x
        x = x.reshape(x.shape[0], -1)
        for name, layer in zip(("fc6", "fc7"), cfg.fcs, strict=True):
            x = nn.Dense(
                layer.features,
                dtype=cfg.dtype,
                name=name,
                kernel_init=nn.initializers.normal(layer.weight_std),
                bias_init=nn.initializers.constant(layer.bias_init),
            )(x)
            x = nn.relu(x)
            taps[name] = x
            x = nn.Dropout(cfg.dropout_rate, deterministic=not train)(x)
        logits = nn.Dense(
            cfg.num_classes,
            dtype=cfg.dtype,
            name="fc8",
            kernel_init=nn.initializers.normal(cfg.classifier_std),
            bias_init=nn.initializers.constant(cfg.classifier_bias),
        )(x)
        return logits.astype(jnp.float32), taps


def _train_step(module):
    tx = optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(0.01, momentum=0.9))

    def step(p, opt_state, x, y, rng):
        def loss_fn(p):
            logits, _ = module.apply({"params": p}, x, train=True, rngs={"dropout": rng})
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, opt_state = tx.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss

    return step, tx


def compare_train_step():
    classes = 1000 if FLAGS.preset == "caffenet" else 100
    config = alexnet.PRESETS[FLAGS.preset](classes)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(FLAGS.batch, config.input_size, config.input_size, 3)),
                    jnp.float32)  # fmt: skip
    y = jnp.asarray(rng.integers(0, classes, FLAGS.batch), jnp.int32)
    fns, jaxprs = {}, {}
    for name, module in (("option", alexnet.AlexNet(config)), ("legacy", LegacyAlexNet(config))):
        step, tx = _train_step(module)
        params = alexnet.init_params(module, jax.random.key(0))
        args = (params, tx.init(params), x, y, jax.random.key(1))
        jaxprs[name] = str(jax.make_jaxpr(step)(*args))
        jitted = jax.jit(step, donate_argnums=(0, 1))
        state = {"p": jax.tree_util.tree_map(jnp.copy, params), "o": tx.init(params)}

        def once(jitted=jitted, state=state):
            for i in range(FLAGS.steps):
                state["p"], state["o"], loss = jitted(state["p"], state["o"], x, y,
                                                      jax.random.key(i))  # fmt: skip
            loss.block_until_ready()

        fns[name] = once
    print(f"{FLAGS.preset}, {config.input_size} px, batch {FLAGS.batch}, "
          f"{jax.devices()[0].platform}, load average {os.getloadavg()}")  # fmt: skip
    print(f"jaxprs of the two training steps identical: {jaxprs['option'] == jaxprs['legacy']}")
    med = _median_rates(fns, FLAGS.rounds, FLAGS.steps * FLAGS.batch)
    _report("training step with the rule option / without", med, "img")
    print(f"load average at the end {os.getloadavg()}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    compare_captum() if FLAGS.compare == "captum" else compare_train_step()


if __name__ == "__main__":
    app.run(main)
