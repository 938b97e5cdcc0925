"""Features of every window: pool5 streamed to disk in float16, fc6/fc7 and ablations on the fly.

R-CNN caches pool5 of every box and computes fc6/fc7 from it when training and testing the detectors
(``rcnn_pool5_to_fcX.m``). Here pool5 (the model's ``conv5`` tap, after pooling) is stored as
float16 through `jaxcnn.features.extract_features` (resumable, manifest) in window order: image by
image, each image's boxes in its entry order (`jaxcnn.detect.roidb`). `LayerView` then gives any
layer of one image's windows: ``conv5`` (optionally ablated: binarize, sp-max, sp-shuffle,
sp-max-bin; `jaxcnn.features.ablations`), or ``fc6`` / ``fc7`` computed from the stored pool5 with
the network's own fc weights, in one jitted program per padded size. Float16 keeps 11 significant
bits: relative rounding <= 2^-11 of each pool5 value.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.detect import windows as windows_lib
from jaxcnn.features import ablations, extraction

LAYERS = ("conv5", "fc6", "fc7")


def window_batches(image_of, boxes_per_image, spec: windows_lib.WarpSpec, *, batch_size: int):
    """Warped windows of every image in order, ``{'image', 'mask'}`` batches (last padded)."""
    flat_img = np.concatenate([np.full(len(b), i) for i, b in enumerate(boxes_per_image)])
    flat_box = np.concatenate([np.asarray(b).reshape(-1, 4) for b in boxes_per_image])
    ws = windows_lib.WindowSet(flat_img, flat_box, np.zeros(len(flat_img), np.int64))
    for lo in range(0, len(ws), batch_size):
        idx = np.arange(lo, min(lo + batch_size, len(ws)))
        images = windows_lib.warp_windows(image_of, ws, idx, spec)
        short = batch_size - len(idx)
        if short:
            images = np.concatenate([images, np.zeros((short, *images.shape[1:]), np.float32)])
        yield {"image": images, "mask": np.arange(batch_size) < len(idx)}


def extract_pool5(
    module, params, image_of, boxes_per_image, spec, out_dir, *, batch_size=256, progress=None
) -> np.ndarray:
    """float16 memmap [W, H, W, C] of every window's pool5 (resumes an interrupted run)."""
    total = int(sum(len(b) for b in boxes_per_image))
    batches = window_batches(image_of, boxes_per_image, spec, batch_size=batch_size)
    try:
        return extraction.load_features(out_dir, "conv5")
    except ValueError:
        pass  # not there or incomplete: extract (resuming at the stored rows)
    extraction.extract_features(
        module,
        params,
        batches,
        taps=("conv5",),
        out_dir=out_dir,
        num_examples=total,
        dtype=np.float16,
        progress=progress,
    )
    return extraction.load_features(out_dir, "conv5")


def layer_from_pool5(params, pool5_NxHxWxC, *, layer: str, ablation: str = "none", key=None):
    """[N, D] features of `layer` from pool5 (jittable): conv5 ablated and flattened, or
    fc6 / fc7 = ReLU of the network's dense layers (the model's taps, before dropout)."""
    x = jnp.asarray(pool5_NxHxWxC, jnp.float32)
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
    if layer == "conv5":
        x = ablations.apply_ablation(ablation, x, key=key)
        return x.reshape(x.shape[0], -1)
    if ablation not in ("none", "binarize"):
        raise ValueError(f"{layer} accepts only the ablations none and binarize, not {ablation!r}")
    x = x.reshape(x.shape[0], -1)
    for name in ("fc6", "fc7")[: LAYERS.index(layer)]:
        x = jax.nn.relu(x @ params[name]["kernel"] + params[name]["bias"][None, :])
    return ablations.apply_ablation(ablation, x)


class LayerView:
    """``view(i) -> float32 [K_i, D]``: `layer` (+ ablation) features of image i's windows."""

    def __init__(self, pool5, counts_I, params, *, layer: str, ablation: str = "none", seed=0):
        self.pool5, self.params = pool5, params
        self.offsets = np.concatenate([[0], np.cumsum(counts_I)]).astype(np.int64)
        if self.offsets[-1] != len(pool5):
            raise ValueError(f"{self.offsets[-1]} windows listed, {len(pool5)} stored")
        self.layer, self.ablation, self.seed = layer, ablation, seed
        self._fn = jax.jit(functools.partial(layer_from_pool5, layer=layer, ablation=ablation))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __call__(self, i: int) -> np.ndarray:
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        n = hi - lo
        size = max(8, 1 << max(0, n - 1).bit_length())  # few padded shapes to compile
        x = np.zeros((size, *self.pool5.shape[1:]), np.float16)
        x[:n] = self.pool5[lo:hi]
        key = jax.random.fold_in(jax.random.PRNGKey(self.seed), i)  # sp-shuffle only
        return np.asarray(self._fn(self.params, x, key=key))[:n]
