"""Caffe's max pooling and LRN with backward passes written out (docs/methods.md §1.4).

Both are `jax.custom_vjp` functions because the backward passes autodiff derives from their
forward forms are slow on a CPU: XLA fuses each backward into one loop that recomputes the forward
window chains for every input element (the small preset's training step spent about 60 of its
~240 ms there; with these forms about 20, and the whole step ran 1.4x faster: idle 2-core CPU,
alternating in one process).

- `max_pool_ceil`: forward as the maximum of window² strided slices with Caffe's ceil-mode size.
  It keeps the *switch* of every window (its first maximum in row-major order, Caffe's strict
  ``>`` scan, as PyTorch records it) and the backward pass routes each output's gradient to its
  switch only. At tied maxima this is Caffe's rule (autodiff of a `jnp.maximum` chain would split
  the gradient between the tied entries); elsewhere the two are equal.
- `local_response_norm`: ``b = a · s^-β`` with ``s = k + α/n · Σ_window a²``; its backward is
  ``g·s^-β − 2βα/n · a · Σ_window(g · b / s)`` (the channel window is symmetric, so its transpose is
  itself).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp


def pool_output_size(size: int, window: int, stride: int) -> int:
    """Caffe's ceil-mode pooled size for pad 0: ceil((size - window) / stride) + 1."""
    return int(math.ceil((size - window) / stride)) + 1


def _window_slices(x_NHWC, window: int, stride: int):
    """The window² strided slices [N, OH, OW, C] of `x` in row-major window order; the bottom and
    right edges are padded with -inf so that a last, partial window is pooled (ceil mode)."""
    n, h, w, c = x_NHWC.shape
    oh, ow = pool_output_size(h, window, stride), pool_output_size(w, window, stride)
    pad_h, pad_w = (oh - 1) * stride + window - h, (ow - 1) * stride + window - w
    x = jnp.pad(x_NHWC, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), constant_values=-jnp.inf)
    for i in range(window):
        for j in range(window):
            limit = (n, i + (oh - 1) * stride + 1, j + (ow - 1) * stride + 1, c)
            yield jax.lax.slice(x, (0, i, j, 0), limit, (1, stride, stride, 1))


def _pool_and_switches(x_NHWC, window: int, stride: int):
    """(maximum, switch): the switch is the window index i * window + j of the first maximum."""
    index = jnp.int8 if window * window <= 127 else jnp.int32
    best = switch = None
    for k, part in enumerate(_window_slices(x_NHWC, window, stride)):
        if best is None:
            best, switch = part, jnp.zeros(part.shape, index)
            continue
        later_is_larger = part > best
        best = jnp.where(later_is_larger, part, best)
        switch = jnp.where(later_is_larger, jnp.asarray(k, index), switch)
    return best, switch


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def max_pool_ceil(x_NHWC: jax.Array, window: int, stride: int) -> jax.Array:
    """Max pooling with Caffe's ceil-mode output size; the gradient goes to each window's switch."""
    return _pool_and_switches(x_NHWC, window, stride)[0]


def _max_pool_fwd(x_NHWC, window, stride):
    out, switch = _pool_and_switches(x_NHWC, window, stride)
    return out, (switch, x_NHWC.shape)


def _max_pool_bwd(window, stride, residuals, g):
    """Each window entry (i, j) = (stride·a + p, stride·b + q) sends the gradients of the outputs
    whose switch it is to input (stride·(oh + a) + p, stride·(ow + b) + q): to plane (p, q) of the
    input's stride x stride interleave, shifted by (a, b). The planes are sums of shifted dense
    arrays, interleaved once at the end (no scatter, no strided writes)."""
    switch, (n, h, w, c) = residuals
    oh, ow = g.shape[1], g.shape[2]
    reach = -(-window // stride)  # shifts a, b < reach
    ph, pw = oh + reach - 1, ow + reach - 1  # plane size
    planes = {}
    for i in range(window):
        a, p = divmod(i, stride)
        for j in range(window):
            b, q = divmod(j, stride)
            routed = jnp.where(switch == i * window + j, g, jnp.zeros_like(g))
            routed = jnp.pad(routed, ((0, 0), (a, ph - oh - a), (b, pw - ow - b), (0, 0)))
            planes[p, q] = routed if (p, q) not in planes else planes[p, q] + routed
    zero = jnp.zeros((n, ph, pw, c), g.dtype)  # a plane no window entry reaches (window < stride)
    grid = jnp.stack(
        [jnp.stack([planes.get((p, q), zero) for q in range(stride)]) for p in range(stride)]
    )  # [p, q, N, PH, PW, C]
    full = grid.transpose(2, 3, 0, 4, 1, 5).reshape(n, ph * stride, pw * stride, c)
    return (full[:, :h, :w],)


max_pool_ceil.defvjp(_max_pool_fwd, _max_pool_bwd)


def _channel_window_sum(v_NHWC, size: int):
    """Σ over the `size` channels centred on each channel, zero-padded at the ends."""
    half, c = size // 2, v_NHWC.shape[-1]
    padded = jnp.pad(v_NHWC, ((0, 0), (0, 0), (0, 0), (half, size - 1 - half)))
    total = padded[..., :c]
    for i in range(1, size):
        total = total + padded[..., i : i + c]
    return total


def _lrn_fwd(x, size, alpha, beta, k):
    scale = k + (alpha / size) * _channel_window_sum(x * x, size)  # >= k > 0
    if beta == 0.75:  # Caffe's value: s^-3/4 = rsqrt(s) * sqrt(rsqrt(s)), 2x faster than pow
        inv = jax.lax.rsqrt(scale)
        factor = inv * jnp.sqrt(inv)
    else:
        factor = scale ** (-beta)
    return x * factor, (x, scale, factor)


def _lrn_bwd(size, alpha, beta, k, residuals, g):
    x, scale, factor = residuals
    g_factor = g * factor
    cross = _channel_window_sum(g_factor * x / scale, size)  # Σ_window g · b / s
    return (g_factor - (2 * beta * alpha / size) * x * cross,)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _lrn(x, size, alpha, beta, k):
    return _lrn_fwd(x, size, alpha, beta, k)[0]


_lrn.defvjp(_lrn_fwd, _lrn_bwd)


def local_response_norm(
    x_NHWC: jax.Array, *, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> jax.Array:
    """Caffe ACROSS_CHANNELS LRN: b = a / (k + alpha/size * sum_{|c'-c| <= size//2} a_c'^2)^beta.

    The window is centred on each channel and zero-padded at the ends (as Caffe's padded square
    buffer); `size` must be odd, as Caffe requires (the backward pass relies on the window being
    symmetric). Computed in float32 even for bfloat16 inputs (the sum of squares loses precision).
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"LRN size must be odd and positive (Caffe's rule), got {size}")
    return _lrn(x_NHWC.astype(jnp.float32), size, alpha, beta, k).astype(x_NHWC.dtype)
