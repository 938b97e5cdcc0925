"""The convolution forms of `jaxcnn.model.alexnet` (docs/methods.md §1.3): same parameters and,
up to float rounding, the same outputs and gradients in every form.

- Grouped convolutions (Caffe's ``group``) run as one convolution per group on the channel
  slices followed by a concat (``impl="split"``): on CPU XLA's ``feature_group_count`` backward
  pass is ~3x slower. ``impl="feature_group_count"`` hands the groups to XLA.
- A convolution on at most `PATCHES_MAX_CHANNELS` input channels (conv1 on RGB) runs as explicit
  patches times a matrix (`patches_conv`): XLA's CPU convolution is slow for so few input
  channels, and one matrix product over ``kh * kw * C_in`` columns is 2x faster forward and
  backward for the small preset's conv1 (1.40x the whole training step at batch 128, 1.06x
  CaffeNet's at batch 32; idle 2-core CPU, alternating in one process).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

PATCHES_MAX_CHANNELS = 4


def patches_conv(x_NHWC, kernel_HWIO, *, stride: int, padding: int) -> jax.Array:
    """Convolution (cross-correlation, zero padding) as ``patches @ kernel``: the kh x kw shifted
    views of the padded input, concatenated in (i, j, c) order, times the kernel reshaped to
    ``[kh * kw * C_in, C_out]`` (the same order, HWIO).

    The input is first rearranged space-to-depth by the stride (pixel (s·y + p, s·x + q) to
    channel block (p, q) of pixel (y, x)), so that every kernel tap reads a unit-stride view:
    tap (s·a + p, s·b + q) is block (p, q) shifted by (a, b). 5% faster training step for the
    small preset than strided slices of the image."""
    kh, kw, cin, cout = kernel_HWIO.shape
    n, h, w, c = x_NHWC.shape
    h, w = h + 2 * padding, w + 2 * padding
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    hs, ws = -(-h // stride), -(-w // stride)  # padded up to a multiple of the stride
    fill_h, fill_w = padding + hs * stride - h, padding + ws * stride - w
    x = jnp.pad(x_NHWC, ((0, 0), (padding, fill_h), (padding, fill_w), (0, 0)))
    x = x.reshape(n, hs, stride, ws, stride, c).transpose(0, 1, 3, 2, 4, 5)
    x = x.reshape(n, hs, ws, stride * stride * c)
    cols = []
    for i in range(kh):
        a, p = divmod(i, stride)
        for j in range(kw):
            b, q = divmod(j, stride)
            block = (p * stride + q) * c
            cols.append(x[:, a : a + oh, b : b + ow, block : block + c])
    patches = jnp.concatenate(cols, axis=-1).reshape(n * oh * ow, kh * kw * c)
    return (patches @ kernel_HWIO.reshape(kh * kw * cin, cout)).reshape(n, oh, ow, cout)


def grouped_conv(
    x_NHWC, kernel_HWIO, *, stride: int, padding: int, groups: int, impl: str = "split"
) -> jax.Array:
    """Convolution with Caffe's `group`: output channel block g sees input channel block g.

    `kernel_HWIO` is [kh, kw, C_in / groups, C_out] for both implementations. "split" runs one
    convolution per group and concatenates; "feature_group_count" hands the groups to XLA.
    """
    conv = lambda lhs, rhs, g=1: jax.lax.conv_general_dilated(  # noqa: E731
        lhs,
        rhs,
        (stride, stride),
        [(padding, padding)] * 2,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=g,
    )
    if groups == 1:
        if kernel_HWIO.shape[2] <= PATCHES_MAX_CHANNELS:
            return patches_conv(x_NHWC, kernel_HWIO, stride=stride, padding=padding)
        return conv(x_NHWC, kernel_HWIO)
    if impl == "feature_group_count":
        return conv(x_NHWC, kernel_HWIO, groups)
    xs = jnp.split(x_NHWC, groups, axis=-1)
    ks = jnp.split(kernel_HWIO, groups, axis=-1)
    return jnp.concatenate([conv(xg, kg) for xg, kg in zip(xs, ks, strict=True)], axis=-1)
