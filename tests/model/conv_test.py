"""Convolution forms: patches x matrix against a literal numpy convolution and lax.conv, through
jax.jit, outputs and gradients (docs/methods.md §1.3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.model import conv


def _numpy_conv(x, k, stride, pad):
    """Literal cross-correlation with zero padding, NHWC x HWIO."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n, h, w, _ = x.shape
    kh, kw, _, co = k.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, oh, ow, co))
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                window = x[b, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
                out[b, i, j] = np.tensordot(window, k, axes=([0, 1, 2], [0, 1, 2]))
    return out


@pytest.mark.parametrize(
    "size,kernel,cin,stride,pad",
    [(9, 3, 3, 1, 1), (11, 5, 3, 2, 0), (13, 4, 2, 3, 2), (5, 5, 1, 1, 0), (27, 11, 3, 4, 0)],
)
def test_patches_conv_equals_a_literal_convolution(size, kernel, cin, stride, pad):
    rng = np.random.default_rng(size)
    x = rng.standard_normal((2, size, size + 1, cin)).astype(np.float32)
    k = rng.standard_normal((kernel, kernel, cin, 4)).astype(np.float32)
    f = jax.jit(lambda x, k: conv.patches_conv(x, k, stride=stride, padding=pad))
    np.testing.assert_allclose(f(x, k), _numpy_conv(x, k, stride, pad), rtol=1e-5, atol=1e-5)


def test_grouped_conv_uses_patches_for_few_channels_with_lax_gradients():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((3, 12, 12, 3)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((5, 5, 3, 6)), jnp.float32)
    t = jnp.asarray(rng.standard_normal((3, 4, 4, 6)), jnp.float32)

    def lax_conv(x, k):
        return jax.lax.conv_general_dilated(
            x, k, (3, 3), [(1, 1)] * 2, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    def loss(f):
        return jax.jit(jax.value_and_grad(lambda x, k: jnp.sum(f(x, k) * t), argnums=(0, 1)))

    ours = loss(lambda x, k: conv.grouped_conv(x, k, stride=3, padding=1, groups=1))(x, k)
    ref = loss(lax_conv)(x, k)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-5)
    for a, b in zip(ours[1], ref[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # the patches form is chosen only up to PATCHES_MAX_CHANNELS input channels
    jaxpr = str(
        jax.make_jaxpr(lambda x, k: conv.grouped_conv(x, k, stride=3, padding=1, groups=1))(x, k)
    )
    assert "conv_general_dilated" not in jaxpr
    wide = jnp.zeros((1, 8, 8, conv.PATCHES_MAX_CHANNELS + 1))
    kw = jnp.zeros((3, 3, conv.PATCHES_MAX_CHANNELS + 1, 2))
    jaxpr = str(
        jax.make_jaxpr(lambda x, k: conv.grouped_conv(x, k, stride=1, padding=1, groups=1))(
            wide, kw
        )
    )
    assert "conv_general_dilated" in jaxpr
