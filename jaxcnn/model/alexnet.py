"""CaffeNet (Caffe's AlexNet) in flax.linen, with its geometry as data.

docs/methods.md §1. The network is one module, `AlexNet`, parameterised by an `AlexNetConfig` that
lists every layer's kernel, stride, padding, groups, width, pooling and LRN. Two presets:

- ``caffenet``: the BVLC reference CaffeNet, 227 px input, 60,965,224 parameters at 1000 classes.
- ``small``: the same topology for CPU work: 64 px input, conv1 5×5 stride 2, widths scaled by a
  multiplier (default 0.25); conv5 keeps a 3×3 map after pooling.

Conventions:
- Input NHWC float32, mean-subtracted by the data pipeline. `apply(..., train=False)` returns
  ``(logits, taps)``; taps (docs/methods.md §1, "feature taps") are ``conv1``/``conv2`` after pool
  and LRN, ``conv3``/``conv4`` the ReLU outputs, ``conv5`` after pooling, ``fc6``/``fc7`` the ReLU
  outputs before dropout.
- Parameters are a 1:1 image of Caffe's blobs: one kernel per layer, HWIO with I = C_in / groups
  (Caffe's OIHW transposed), one bias. fc6's kernel rows follow our NHWC flattening (H, W, C);
  Caffe flattens (C, H, W), which the Caffe importer reorders.
- Convolutions: `jaxcnn.model.conv.grouped_conv` (grouped ones split per group by default,
  ``grouped_impl``; a layer on <= 4 input channels, conv1 on RGB, as patches times a matrix).
- Max pooling uses Caffe's ceil-mode output size, ``ceil((H - k) / s) + 1`` (pooling pad is 0 in
  CaffeNet, so Caffe's clipping rule for padded pools never applies); its gradient goes to each
  window's first maximum, as Caffe's. Pooling and LRN are in `jaxcnn.model.pool_norm`, with
  hand-written backward passes (docs/methods.md §1.4).
- LRN is Caffe's ACROSS_CHANNELS: ``b = a / (k + alpha / n * sum_window a^2) ** beta`` (Caffe
  divides alpha by the window size n), zero-padded at the channel ends.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcnn.model.conv import grouped_conv
from jaxcnn.model.pool_norm import local_response_norm, max_pool_ceil, pool_output_size

TAP_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
CONV_NAMES = TAP_NAMES[:5]
FC_NAMES = ("fc6", "fc7", "fc8")


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One conv stage: conv -> ReLU [-> maxpool] [-> LRN]."""

    features: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1
    pool: bool = False
    lrn: bool = False
    weight_std: float = 0.01
    bias_init: float = 0.0


@dataclasses.dataclass(frozen=True)
class DenseLayer:
    features: int
    weight_std: float = 0.01
    bias_init: float = 0.0


@dataclasses.dataclass(frozen=True)
class AlexNetConfig:
    """Geometry and initialisation of an AlexNet-topology network (docs/methods.md §1)."""

    input_size: int
    num_classes: int
    convs: tuple[ConvLayer, ...]
    fcs: tuple[DenseLayer, ...]  # fc6, fc7 (fc8 is built from num_classes and classifier_*)
    classifier_std: float = 0.01
    classifier_bias: float = 0.0
    dropout_rate: float = 0.5
    pool_window: int = 3
    pool_stride: int = 2
    lrn_size: int = 5
    lrn_alpha: float = 1e-4
    lrn_beta: float = 0.75
    lrn_k: float = 1.0
    grouped_impl: str = "split"  # or "feature_group_count"
    dtype: Any = jnp.float32  # compute dtype; parameters stay float32
    input_scale: float = 1.0  # multiplies the (mean-subtracted) input, Caffe's transform scale

    def __post_init__(self):
        if len(self.convs) != 5 or len(self.fcs) != 2:
            raise ValueError("AlexNet topology needs 5 conv layers and 2 hidden fc layers")
        if self.grouped_impl not in ("split", "feature_group_count"):
            raise ValueError(
                f"grouped_impl must be 'split' or 'feature_group_count', got {self.grouped_impl!r}"
            )
        for name, layer in zip(CONV_NAMES, self.convs, strict=True):
            if layer.features % layer.groups:
                raise ValueError(
                    f"{name}: {layer.features} features not divisible by {layer.groups} groups"
                )
        if min(sizes := self.map_sizes()) < 1:  # zero-pixel maps: XLA would fail much later
            least = next(i for i in range(1, 4096) if min(self.map_sizes(i)) >= 1)
            raise ValueError(
                f"--crop {self.input_size} is too small (conv maps {sizes}): use --crop >= {least}"
            )

    def map_sizes(self, input_size: int | None = None) -> list[int]:
        """Each conv tap's spatial size at `input_size` (default: the config's), Caffe's way."""
        sizes, size = [], self.input_size if input_size is None else input_size
        for layer in self.convs:
            size = (size + 2 * layer.padding - layer.kernel) // layer.stride + 1
            if layer.pool:
                size = pool_output_size(size, self.pool_window, self.pool_stride)
            sizes.append(size)
        return sizes

    def feature_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-image tap shapes, computed from the geometry with Caffe's size formulas."""
        convs = zip(CONV_NAMES, self.convs, self.map_sizes(), strict=True)
        fcs = {n: (fc.features,) for n, fc in zip(("fc6", "fc7"), self.fcs, strict=True)}
        return {**{name: (s, s, layer.features) for name, layer, s in convs}, **fcs}


def caffenet_config(num_classes: int = 1000, bias_one: float = 1.0, **overrides) -> AlexNetConfig:
    """BVLC reference CaffeNet (train_val.prototxt). `bias_one` is the bias of conv2, conv4, conv5,
    fc6 and fc7: 1 in CaffeNet, 0.1 in BVLC AlexNet."""
    convs = (
        ConvLayer(96, 11, stride=4, pool=True, lrn=True),
        ConvLayer(256, 5, padding=2, groups=2, pool=True, lrn=True, bias_init=bias_one),
        ConvLayer(384, 3, padding=1),
        ConvLayer(384, 3, padding=1, groups=2, bias_init=bias_one),
        ConvLayer(256, 3, padding=1, groups=2, pool=True, bias_init=bias_one),
    )
    fcs = (DenseLayer(4096, 0.005, bias_one), DenseLayer(4096, 0.005, bias_one))
    return AlexNetConfig(227, num_classes, convs, fcs, **overrides)


def small_config(
    num_classes: int = 100,
    width: float = 0.25,
    fc_width: int = 512,
    input_size: int = 64,
    bias_one: float = 0.1,
    init: str = "msra",
    **overrides,
) -> AlexNetConfig:
    """CaffeNet's topology at 64 px for CPU work: conv1 5x5/2, channel widths x `width`
    (rounded to even numbers so the two groups split evenly), fc6/fc7 `fc_width` wide.
    Spatial maps at 64 px: 15, 7, 7, 7, 3 (conv5 keeps a 3x3 map).

    `init="caffe"` uses CaffeNet's Gaussian stds (0.01, fc 0.005); `init="msra"` (the default)
    scales each layer's std to sqrt(2 / fan_in) (He et al. 2015), which lets the narrow network
    leave the chance-level plateau within a few hundred iterations instead of thousands. The
    default `bias_one` 0.1 is BVLC AlexNet's (CaffeNet: 1)."""

    def w(n):  # even, so that two groups split evenly; never silently widened to 2
        if round(n * width / 2) < 1:
            raise ValueError(f"width {width} leaves {n} channels < 2: use --width > {1 / 96:.4f}")
        return 2 * round(n * width / 2)

    convs = (
        ConvLayer(w(96), 5, stride=2, pool=True, lrn=True),
        ConvLayer(w(256), 5, padding=2, groups=2, pool=True, lrn=True, bias_init=bias_one),
        ConvLayer(w(384), 3, padding=1),
        ConvLayer(w(384), 3, padding=1, groups=2, bias_init=bias_one),
        ConvLayer(w(256), 3, padding=1, groups=2, pool=True, bias_init=bias_one),
    )
    fcs = (DenseLayer(fc_width, 0.005, bias_one), DenseLayer(fc_width, 0.005, bias_one))
    config = AlexNetConfig(input_size, num_classes, convs, fcs, **overrides)
    if init == "caffe":
        return config
    if init != "msra":
        raise ValueError(f"init must be 'caffe' or 'msra', got {init!r}")
    return msra_init(config)


def msra_init(config: AlexNetConfig) -> AlexNetConfig:
    """`config` with weight stds sqrt(2 / fan_in) from conv1 to fc7. The classifier keeps
    CaffeNet's std 0.01: sqrt(1 / fan_in) gave the small preset initial logits of std 2.3 (4.6
    with dropout), a loss of 7.3 (11.8) against ln(100) = 4.6, and ~150 of 600 pre-training
    iterations near chance (docs/methods.md §1.2).

    The input is scaled by 1/64 (Caffe's `transform_param { scale }`), about the inverse
    standard deviation of mean-subtracted pixels in 0-255 units, so that it has unit scale."""
    convs, cin = [], 3
    for layer in config.convs:
        fan_in = layer.kernel**2 * cin // layer.groups
        convs.append(dataclasses.replace(layer, weight_std=math.sqrt(2.0 / fan_in)))
        cin = layer.features
    size, _, _ = config.feature_shapes()["conv5"]
    fcs, din = [], size * size * cin
    for fc in config.fcs:
        fcs.append(dataclasses.replace(fc, weight_std=math.sqrt(2.0 / din)))
        din = fc.features
    return dataclasses.replace(
        config,
        convs=tuple(convs),
        fcs=tuple(fcs),
        input_scale=1.0 / 64.0,
    )


PRESETS = {"caffenet": caffenet_config, "small": small_config}


class CaffeConv(nn.Module):
    """Conv layer whose parameters mirror one Caffe blob pair (kernel HWIO/groups, bias)."""

    layer: ConvLayer
    impl: str = "split"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        L = self.layer
        in_per_group = x.shape[-1] // L.groups
        kernel = self.param(
            "kernel",
            nn.initializers.normal(L.weight_std),
            (L.kernel, L.kernel, in_per_group, L.features),
            jnp.float32,
        )
        bias = self.param("bias", nn.initializers.constant(L.bias_init), (L.features,), jnp.float32)
        y = grouped_conv(
            x.astype(self.dtype),
            kernel.astype(self.dtype),
            stride=L.stride,
            padding=L.padding,
            groups=L.groups,
            impl=self.impl,
        )
        return y + bias.astype(self.dtype).reshape(1, 1, 1, -1)


@dataclasses.dataclass(frozen=True)
class LayerOps:
    """The network's ReLU, max pooling and LRN: the training path by default; `jaxcnn.visualize`
    swaps in the same forward passes with other backward rules (deconvnet, guided)."""

    relu: Callable = nn.relu
    max_pool: Callable = max_pool_ceil  # (x, window, stride)
    lrn: Callable = local_response_norm  # (x, *, size, alpha, beta, k)


class AlexNet(nn.Module):
    """AlexNet-topology network; `__call__(x, *, train)` returns `(logits, taps)`."""

    config: AlexNetConfig
    ops: LayerOps = LayerOps()

    @nn.compact
    def __call__(self, x, *, train: bool):
        cfg = self.config
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected NHWC images with 3 channels, got shape {x.shape}")
        taps = {}
        x = x.astype(cfg.dtype)
        if cfg.input_scale != 1.0:
            x = x * cfg.input_scale
        for name, layer in zip(CONV_NAMES, cfg.convs, strict=True):
            x = self.ops.relu(CaffeConv(layer, cfg.grouped_impl, cfg.dtype, name=name)(x))
            if layer.pool:
                x = self.ops.max_pool(x, cfg.pool_window, cfg.pool_stride)
            if layer.lrn:
                x = self.ops.lrn(
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
            x = self.ops.relu(x)
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


def caffenet(num_classes: int = 1000, **overrides) -> AlexNet:
    """The BVLC reference CaffeNet as a linen Module."""
    return AlexNet(caffenet_config(num_classes, **overrides))


def from_preset(name: str, num_classes: int, **overrides) -> AlexNet:
    """A linen Module from a named preset (`caffenet` or `small`); overrides go to the preset's
    config function (e.g. `width=0.5` for `small`, `dtype=jnp.bfloat16`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return AlexNet(PRESETS[name](num_classes, **overrides))


@functools.partial(jax.jit, static_argnums=0)
def init_params(module: AlexNet, rng: jax.Array) -> dict:
    """Float32 parameters for `module` from its config's Caffe fillers, compiled once per geometry.

    The random numbers come from JAX's "rbg" generator keyed by `rng` (a threefry key), whose XLA
    program compiles about 3x faster on CPU than threefry's (1.5 s instead of 4.5 s for the
    small preset): it matters for the many short runs of the embedded study. Equal `rng` give
    equal parameters.
    """
    data = (
        jax.random.key_data(rng) if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key) else rng
    )
    rbg = jax.random.wrap_key_data(jnp.concatenate([data, data]).astype(jnp.uint32), impl="rbg")
    size = module.config.input_size
    x = jnp.zeros((1, size, size, 3), jnp.float32)
    return module.init({"params": rbg}, x, train=False)["params"]


def count_params(params) -> int:
    return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))


def forward_flops(config: AlexNetConfig) -> int:
    """Multiply-add FLOPs (2 per MAC) of one image's forward pass through conv and fc layers."""
    flops, size, cin = 0, config.input_size, 3
    for layer in config.convs:
        size = (size + 2 * layer.padding - layer.kernel) // layer.stride + 1
        flops += 2 * size * size * layer.features * layer.kernel**2 * cin // layer.groups
        if layer.pool:
            size = pool_output_size(size, config.pool_window, config.pool_stride)
        cin = layer.features
    din = size * size * cin
    for dout in [fc.features for fc in config.fcs] + [config.num_classes]:
        flops += 2 * din * dout
        din = dout
    return flops
