"""Projections of one unit's activation down to the pixels (Zeiler & Fergus 2014, §2.1).

See docs/methods.md §Visualisation. For each image the chosen activation of tap `layer` keeps its
value, every other activation of that tap is zeroed, and this signal goes back to the input
through the network's backward pass under a rule of `jaxcnn.visualize.rules` (deconvnet by
default). The forward pass runs once per batch; the backward pass is vmapped over channels, all
in one compiled call.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.model import alexnet
from jaxcnn.visualize import rules


def _check(module, x_NHWC, layer):
    if layer not in alexnet.TAP_NAMES:
        raise ValueError(f"layer must be one of {alexnet.TAP_NAMES}, got {layer!r}")
    if x_NHWC.ndim != 4 or x_NHWC.shape[-1] != 3:
        raise ValueError(f"expected NHWC images with 3 channels, got shape {x_NHWC.shape}")
    return module.config.feature_shapes()[layer][-1]


def _tap_and_backward(module, params, x_NHWC, layer):
    """(acts of `layer`, vjp from a cotangent of those acts to the input)."""
    tap = lambda x: module.apply({"params": params}, x, train=False)[1][layer]  # noqa: E731
    acts, vjp = jax.vjp(tap, x_NHWC.astype(jnp.float32))
    return acts, lambda seed: vjp(seed.astype(acts.dtype))[0]


def strongest_position(acts, channel):
    """[N, 2] (y, x): the spatial arg-max of `channel` per image, the first in row-major order
    (`jnp.argmax` returns the first of tied maxima); (0, 0) for fc taps."""
    n = acts.shape[0]
    if acts.ndim == 2:
        return jnp.zeros((n, 2), jnp.int32)
    _, h, w, _ = acts.shape
    flat = jnp.argmax(acts[..., channel].reshape(n, h * w), axis=1)
    return jnp.stack([flat // w, flat % w], axis=1).astype(jnp.int32)


def _seed(acts, channel_N, yx_Nx2):
    """Cotangent: acts at (n, y_n, x_n, channel_n), zero elsewhere."""
    n = jnp.arange(acts.shape[0])
    if acts.ndim == 2:
        keep = jnp.zeros(acts.shape, bool).at[n, channel_N].set(True)
    else:
        keep = jnp.zeros(acts.shape, bool).at[n, yx_Nx2[:, 0], yx_Nx2[:, 1], channel_N].set(True)
    return jnp.where(keep, acts, jnp.zeros_like(acts))


@functools.partial(jax.jit, static_argnames=("module", "layer"))
def _project_channels(module, params, x_NHWC, channels_K, *, layer):
    acts, backward = _tap_and_backward(module, params, x_NHWC, layer)
    n = x_NHWC.shape[0]

    def one(channel):
        yx = strongest_position(acts, channel)
        return backward(_seed(acts, jnp.full((n,), channel), yx))

    return jax.vmap(one)(channels_K).astype(jnp.float32)


@functools.partial(jax.jit, static_argnames=("module", "layer"))
def _project_positions(module, params, x_NHWC, channel_N, yx_Nx2, *, layer):
    acts, backward = _tap_and_backward(module, params, x_NHWC, layer)
    return backward(_seed(acts, channel_N, yx_Nx2)).astype(jnp.float32)


def project(
    module: alexnet.AlexNet,
    params,
    x_NHWC,
    *,
    layer: str,
    channel: int | Sequence[int],
    rule: str = "deconv",
    lrn: str = "vjp",
) -> jax.Array:
    """Projection of each image's strongest activation of one feature map to the input.

    Args:
      module: the network (its `ops` are replaced by those of `rule`); params: its parameters.
      x_NHWC: float [N, H, W, 3] network inputs (mean-subtracted).
      layer: a tap name (`alexnet.TAP_NAMES`).
      channel: a feature map (conv taps) or unit (fc taps) of `layer`, or a sequence of them.
      rule, lrn: the backward rule (`jaxcnn.visualize.rules`).

    Returns:
      float32 [N, H, W, 3] for one channel, [K, N, H, W, 3] for K channels: the input-space
      signal of the activation ``a`` at the spatial arg-max of the map (first in row-major order
      among ties; the unit itself for fc taps), seeded with its value ``a``. For
      ``rule="grad"`` this is ``a · ∂a/∂x``; a map whose maximum is 0 projects to zeros.
    """
    x = jnp.asarray(x_NHWC)
    num_features = _check(module, x, layer)
    channels = np.atleast_1d(np.asarray(channel))
    if channels.ndim != 1 or not np.issubdtype(channels.dtype, np.integer):
        raise ValueError(f"channel must be an int or a sequence of ints, got {channel!r}")
    if channels.size and (channels.min() < 0 or channels.max() >= num_features):
        raise ValueError(f"channels must lie in [0, {num_features}) for {layer}, got {channel!r}")
    out = _project_channels(
        rules.with_rule(module, rule, lrn), params, x, jnp.asarray(channels), layer=layer
    )
    return out[0] if np.ndim(channel) == 0 else out


def project_positions(
    module: alexnet.AlexNet,
    params,
    x_NHWC,
    *,
    layer: str,
    channel_N,
    yx_Nx2,
    rule: str = "deconv",
    lrn: str = "vjp",
) -> jax.Array:
    """[N, H, W, 3]: image n's projection of the activation at ``(yx_Nx2[n], channel_N[n])``
    (each image its own unit and position, as the top-k patches of `top_activations`; the
    position is ignored for fc taps). Otherwise as `project`."""
    x = jnp.asarray(x_NHWC)
    num_features = _check(module, x, layer)
    channel_N, yx_Nx2 = np.asarray(channel_N), np.asarray(yx_Nx2)
    if channel_N.shape != (x.shape[0],) or yx_Nx2.shape != (x.shape[0], 2):
        raise ValueError(
            f"need channel_N [{x.shape[0]}] and yx_Nx2 [{x.shape[0]}, 2], got "
            f"{channel_N.shape} and {yx_Nx2.shape}"
        )
    if channel_N.size and (channel_N.min() < 0 or channel_N.max() >= num_features):
        raise ValueError(f"channels must lie in [0, {num_features}) for {layer}")
    shape = module.config.feature_shapes()[layer]
    if (
        len(shape) == 3
        and yx_Nx2.size
        and (yx_Nx2.min() < 0 or yx_Nx2[:, 0].max() >= shape[0] or yx_Nx2[:, 1].max() >= shape[1])
    ):
        raise ValueError(f"positions must lie inside the {shape[:2]} map of {layer}")
    return _project_positions(
        rules.with_rule(module, rule, lrn),
        params,
        x,
        jnp.asarray(channel_N, jnp.int32),
        jnp.asarray(yx_Nx2, jnp.int32),
        layer=layer,
    )
