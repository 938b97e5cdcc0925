"""A tiny network of the AlexNet topology and inputs with tied maxima, shared by the tests."""

import functools

import jax
import numpy as np
import pytest

from jaxcnn.model import alexnet


def tiny_config(input_scale=1.0):
    """19 px input: conv1 3x3 -> 17, pool -> 8; conv2 (groups 2) -> 8, pool -> 4 (ceil mode: a
    partial last window); conv3-5 -> 4, pool -> 2 (partial again); fc 6, 6; 3 classes."""
    convs = (
        alexnet.ConvLayer(4, 3, pool=True, lrn=True),
        alexnet.ConvLayer(4, 3, padding=1, groups=2, pool=True, lrn=True),
        alexnet.ConvLayer(6, 3, padding=1),
        alexnet.ConvLayer(6, 3, padding=1, groups=2),
        alexnet.ConvLayer(4, 3, padding=1, groups=2, pool=True),
    )
    fcs = (alexnet.DenseLayer(6), alexnet.DenseLayer(6))
    # alpha large enough that LRN's cross-channel terms matter in the comparisons.
    return alexnet.AlexNetConfig(
        19, 3, convs, fcs, lrn_alpha=0.5, input_scale=input_scale,
        grouped_impl="feature_group_count",  # fewer ops to compile than "split", same outputs
    )  # fmt: skip


def random_params(module, seed):
    """Gaussian parameters (std 0.5) of `module`'s shapes (eval_shape: nothing is run)."""
    params = jax.eval_shape(functools.partial(alexnet.init_params, module), jax.random.key(0))
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(
        lambda p: (rng.normal(size=p.shape) * 0.5).astype(np.float32), params
    )


def blocky_images(n, size, seed):
    """Piecewise-constant images (4x4 blocks): flat regions give equal activations, so many
    pooling windows hold tied positive maxima (and negative regions tied zeros)."""
    rng = np.random.default_rng(seed)
    blocks = rng.normal(size=(n, -(-size // 4), -(-size // 4), 3)).astype(np.float32)
    return np.repeat(np.repeat(blocks, 4, axis=1), 4, axis=2)[:, :size, :size]


@pytest.fixture(scope="module")
def tiny():
    module = alexnet.AlexNet(tiny_config())
    return module, random_params(module, 0), blocky_images(3, 19, 1)


@functools.partial(jax.jit, static_argnums=0)
def forward(module, params, x):
    """(logits, taps), jitted: eager Flax dispatches op by op and is slow."""
    return module.apply({"params": params}, x, train=False)
