"""Occlusion sensitivity (Zeiler & Fergus 2014, §4.2 and Fig. 7).

See docs/methods.md §Visualisation. A square of side `size` filled with `value` (0 is the
training mean, since inputs are mean-subtracted) is placed with its top-left corner at
``(i·stride, j·stride)`` for every position that lies fully inside the image:
``rows = (H − size) // stride + 1`` (columns alike). For each position the occluded image goes
through the network and gives the softmax probability of `label`, the most probable class and the
summed activity of one feature map of `layer`: the one with the largest summed activity on the
unoccluded image (the first among ties). The occluded copies are built on the device and go
through one compiled forward in chunks (`lax.map`), never one call per position.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.model import alexnet


def grid_shape(height: int, width: int, size: int, stride: int) -> tuple[int, int]:
    """(rows, cols) of occluder positions fully inside an ``height × width`` image."""
    if size < 1 or stride < 1:
        raise ValueError(f"size and stride must be >= 1, got {size}, {stride}")
    if size > min(height, width):
        raise ValueError(f"occluder of size {size} does not fit a {height}x{width} image")
    return (height - size) // stride + 1, (width - size) // stride + 1


def _summed(acts):
    """Per-image summed activity of every feature map: [N, F] (fc taps: the unit itself)."""
    return acts if acts.ndim == 2 else jnp.sum(acts, axis=(1, 2))


def _forward(module, params, x, layer):
    logits, taps = module.apply({"params": params}, x, train=False)
    return logits, _summed(taps[layer])


@functools.partial(jax.jit, static_argnames=("module", "layer"))
def strongest_feature_map(module, params, image_HxWx3, *, layer="conv5"):
    """Index of the feature map of `layer` with the largest summed activity on the image."""
    _, summed = _forward(module, params, image_HxWx3[None].astype(jnp.float32), layer)
    return jnp.argmax(summed[0])  # the first among ties


@functools.partial(jax.jit, static_argnames=("module", "layer", "size", "stride", "chunk"))
def _occlude(module, params, image, label, value, *, layer, size, stride, chunk):
    h, w, _ = image.shape
    rows, cols = grid_shape(h, w, size, stride)
    fmap = strongest_feature_map(module, params, image, layer=layer)
    count = rows * cols
    padded = -(-count // chunk) * chunk  # the last chunk repeats position 0, then is dropped
    pos = jnp.arange(padded) % count
    top_left = jnp.stack([pos // cols, pos % cols], axis=1) * stride  # [P, 2]
    ys, xs = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]

    def run_chunk(corners_Cx2):
        y0, x0 = corners_Cx2[:, 0, None, None], corners_Cx2[:, 1, None, None]
        inside = (ys >= y0) & (ys < y0 + size) & (xs >= x0) & (xs < x0 + size)  # [C, H, W]
        x = jnp.where(inside[..., None], jnp.asarray(value, image.dtype), image[None])
        logits, summed = _forward(module, params, x, layer)
        prob = jax.nn.softmax(logits, axis=-1)
        return prob[:, label], jnp.argmax(prob, axis=-1).astype(jnp.int32), summed[:, fmap]

    out = jax.lax.map(run_chunk, top_left.reshape(padded // chunk, chunk, 2))
    return tuple(o.reshape(padded)[:count].reshape(rows, cols) for o in out)


def occlusion_maps(
    module: alexnet.AlexNet,
    params,
    image_HxWx3,
    *,
    label: int,
    size: int,
    stride: int,
    value: float = 0.0,
    layer: str = "conv5",
    chunk: int = 32,
) -> dict[str, jax.Array]:
    """Occlusion sensitivity maps of one image (module docstring).

    Args:
      image_HxWx3: float [H, W, 3] network input (mean-subtracted).
      label: the class whose probability is mapped.
      size, stride: occluder side and step in pixels; value: its fill (0: the mean).
      layer: the tap whose strongest feature map's activity is mapped.
      chunk: occluded copies per forward pass.

    Returns:
      ``{"prob": float32, "top_class": int32, "activity": float32}``, each [rows, cols];
      entry (i, j) is the occluder at ``(i·stride, j·stride)``.
    """
    image = jnp.asarray(image_HxWx3, jnp.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an [H, W, 3] image, got shape {image.shape}")
    if layer not in alexnet.TAP_NAMES:
        raise ValueError(f"layer must be one of {alexnet.TAP_NAMES}, got {layer!r}")
    if not 0 <= label < module.config.num_classes:
        raise ValueError(f"label {label} outside [0, {module.config.num_classes})")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    rows, cols = grid_shape(image.shape[0], image.shape[1], size, stride)
    chunk = min(chunk, rows * cols)
    prob, top, act = _occlude(
        module, params, image, label, value,
        layer=layer, size=size, stride=stride, chunk=chunk,
    )  # fmt: skip
    return {"prob": prob, "top_class": top, "activity": act.astype(jnp.float32)}


def occluded_image(image_HxWx3, *, top: int, left: int, size: int, value: float = 0.0):
    """numpy copy of the image with one occluder (for figures and references)."""
    out = np.array(image_HxWx3, copy=True)
    out[top : top + size, left : left + size] = value
    return out
