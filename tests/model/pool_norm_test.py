"""The hand-written backward passes of max pooling and LRN against literal numpy references:
Caffe's pooling loop (clipped ceil-mode windows, strict `>` scan) and central finite differences
of Caffe's LRN formula in float64."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.model import pool_norm


def _caffe_pool_backward(x, g, window, stride):
    """pooling_layer.cpp, MAX, pad 0: each output's gradient goes to the first maximum of its
    window (row-major scan with a strict `>`), the window clipped at the image edge."""
    n, h, w, c = x.shape
    oh, ow = g.shape[1:3]
    out = np.zeros(x.shape, np.float64)
    for b in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    best, where = -np.inf, None
                    for r in range(i * stride, min(i * stride + window, h)):
                        for s in range(j * stride, min(j * stride + window, w)):
                            if x[b, r, s, ch] > best:
                                best, where = x[b, r, s, ch], (r, s)
                    out[b, where[0], where[1], ch] += g[b, i, j, ch]
    return out


@pytest.mark.parametrize(
    "size,window,stride",
    [(5, 3, 2), (6, 3, 2), (13, 3, 2), (15, 3, 2), (30, 3, 2), (9, 2, 2), (7, 3, 1), (10, 3, 3),
     (9, 1, 2), (11, 2, 3)],
)  # fmt: skip
def test_max_pool_backward_routes_to_caffes_switch(size, window, stride):
    rng = np.random.default_rng(size * 100 + window * 10 + stride)
    # Rounded values: many tied maxima (and all-zero windows, as after a ReLU).
    x = np.maximum(np.round(rng.normal(size=(2, size, size, 3)) * 2), 0).astype(np.float32)
    oh = pool_norm.pool_output_size(size, window, stride)
    assert oh == math.ceil((size - window) / stride) + 1
    g = rng.normal(size=(2, oh, oh, 3)).astype(np.float32)
    pool = functools.partial(pool_norm.max_pool_ceil, window=window, stride=stride)
    out, vjp = jax.vjp(jax.jit(pool), jnp.asarray(x))
    (got,) = jax.jit(vjp)(jnp.asarray(g))
    assert out.shape == (2, oh, oh, 3)
    want = _caffe_pool_backward(x, g, window, stride)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-6)
    # A tied window sends its whole gradient to one entry (the split gradient would not).
    assert np.count_nonzero(np.asarray(got)) <= np.count_nonzero(g)


def test_max_pool_gradient_is_autodiffs_without_ties():
    x = jax.random.normal(jax.random.key(0), (2, 15, 15, 4))  # continuous: no ties
    loss = lambda pool, v: jnp.sum(jnp.sin(pool(v, 3, 2)))  # noqa: E731

    def chain(v, window, stride):  # the plain forward form, differentiated by JAX
        parts = list(pool_norm._window_slices(v, window, stride))
        return functools.reduce(jnp.maximum, parts)

    np.testing.assert_allclose(
        jax.jit(jax.grad(functools.partial(loss, pool_norm.max_pool_ceil)))(x),
        jax.jit(jax.grad(functools.partial(loss, chain)))(x),
        rtol=1e-6,
        atol=1e-7,
    )


def _caffe_lrn64(a, size, alpha, beta, k):
    out = np.empty_like(a)
    c = a.shape[-1]
    for ch in range(c):
        lo, hi = max(0, ch - size // 2), min(c, ch + size // 2 + 1)
        out[..., ch] = a[..., ch] / (k + alpha / size * np.sum(a[..., lo:hi] ** 2, axis=-1)) ** beta
    return out


@pytest.mark.parametrize("channels,beta", [(3, 0.75), (7, 0.75), (16, 0.75), (7, 0.5)])
def test_lrn_backward_matches_finite_differences(channels, beta):
    rng = np.random.default_rng(channels)
    # Large activations so that the normalisation (and its cross-channel terms) matters.
    a = np.abs(rng.normal(scale=40.0, size=(2, 2, 3, channels)))
    g = rng.normal(size=a.shape)
    kw = dict(size=5, alpha=1e-3, beta=beta, k=1.0)
    _, vjp = jax.vjp(jax.jit(functools.partial(pool_norm.local_response_norm, **kw)),
                     jnp.asarray(a, jnp.float32))  # fmt: skip
    (got,) = jax.jit(vjp)(jnp.asarray(g, jnp.float32))
    eps, want = 1e-4, np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        up, down = a.copy(), a.copy()
        up[idx] += eps
        down[idx] -= eps
        want[idx] = np.sum(g * (_caffe_lrn64(up, **kw) - _caffe_lrn64(down, **kw))) / (2 * eps)
    assert np.max(np.abs(want - g)) > 1e-2  # the cross-channel terms are not negligible
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("size", [0, 4])
def test_lrn_size_must_be_odd(size):
    with pytest.raises(ValueError, match="must be odd"):
        pool_norm.local_response_norm(jnp.ones((1, 2, 2, 6)), size=size)


def test_large_pooling_window_keeps_its_switch():
    # 13 x 13 = 169 window entries: more than an int8 switch index holds.
    x = np.zeros((1, 13, 13, 1), np.float32)
    x[0, 12, 12, 0] = 1.0  # the last entry of the single window
    _, vjp = jax.vjp(lambda v: pool_norm.max_pool_ceil(v, 13, 13), jnp.asarray(x))
    np.testing.assert_array_equal(vjp(jnp.ones((1, 1, 1, 1)))[0], x)


def test_lrn_keeps_bfloat16_and_computes_in_float32():
    x = jax.random.uniform(jax.random.key(0), (1, 2, 2, 6), minval=0, maxval=50)
    y16 = jax.jit(pool_norm.local_response_norm)(x.astype(jnp.bfloat16))
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(
        np.asarray(y16, np.float32), _caffe_lrn64(np.asarray(x.astype(jnp.bfloat16), np.float64),
                                                  5, 1e-4, 0.75, 1.0), rtol=1e-2)  # fmt: skip
