"""What a unit responds to over a dataset: its top-k patches with their projections (Zeiler &
Fergus Fig. 2), and its strongest activation at each training snapshot (Fig. 4).

See docs/methods.md §Visualisation. Two passes: one streamed pass keeps every chosen layer's
top k per channel on the device (`topk.merge_top`), then only the images needed are reloaded,
projected (`projection.project_positions`, the positions found in the first pass) and cropped to
the unit's receptive field (`fields`), zeros outside the image.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.model import alexnet
from jaxcnn.visualize import fields, projection, topk


@dataclasses.dataclass
class ImageSet:
    """Images of a split as the network sees them (mean-subtracted), and as a person does.

    `batches()` yields ``{'image', 'mask', 'index'}`` in index order (e.g.
    `jaxcnn.data.pipeline.eval_loader`); `inputs(indices)` returns those images as float32
    [n, S, S, 3] network inputs; `display_mean` [S, S, 3] (0-255) is added back for display.
    """

    batches: Callable[[], Iterable[dict]]
    inputs: Callable[[np.ndarray], np.ndarray]
    display_mean: np.ndarray
    label: Callable[[int], int] | None = None  # one class per image (occlusion's label)
    class_names: Sequence[str] = ()

    def display(self, inputs_NxSxSx3) -> np.ndarray:
        """float [n, S, S, 3] in [0, 1]: the network inputs with the mean added back."""
        return np.clip((np.asarray(inputs_NxSxSx3) + self.display_mean) / 255.0, 0.0, 1.0)


@functools.partial(jax.jit, static_argnames=("module", "layers"))
def forward(module, params, images, *, layers=alexnet.TAP_NAMES):
    """(logits, {layer: acts} of `layers`), jitted."""
    logits, taps = module.apply({"params": params}, images, train=False)
    return logits, {name: taps[name] for name in layers}


def top_per_layer(
    module: alexnet.AlexNet,
    params,
    images: ImageSet,
    *,
    layers: Sequence[str],
    k: int,
    distinct_images: bool = True,
) -> dict[str, topk.TopActivations]:
    """`topk.stream_top_activations` of several layers in one pass over `images`."""
    shapes = module.config.feature_shapes()
    state = {name: topk.init_top(shapes[name][-1], k) for name in layers}
    for batch in images.batches():
        mask = np.asarray(batch["mask"], bool) & (np.asarray(batch["index"]) >= 0)
        _, acts = forward(module, params, jnp.asarray(batch["image"]))  # one compile for all
        for name in layers:
            state[name] = topk.merge_top(
                state[name], acts[name], jnp.asarray(batch["index"]), jnp.asarray(mask),
                distinct_images=distinct_images,
            )  # fmt: skip
    for name, top in state.items():
        if bool(jnp.any(top.image_index < 0)):
            raise ValueError(f"{name}: fewer than k={k} candidates in the split")
    return state


def _project_chunked(module, params, x, channel, yx, *, layer, rule, lrn, chunk=64):
    """`project_positions` in fixed-size chunks (one compiled shape; padding repeats row 0)."""
    out, n = [], x.shape[0]
    chunk = min(chunk, n)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        pad = np.r_[np.arange(start, stop), np.zeros(chunk - (stop - start), int)]
        proj = projection.project_positions(
            module, params, x[pad], layer=layer, channel_N=channel[pad], yx_Nx2=yx[pad],
            rule=rule, lrn=lrn,
        )  # fmt: skip
        out.append(np.asarray(proj)[: stop - start])
    return np.concatenate(out)


def unit_patches(
    module: alexnet.AlexNet,
    params,
    images: ImageSet,
    top: topk.TopActivations,
    *,
    layer: str,
    channels: Sequence[int],
    rule: str = "deconv",
    lrn: str = "vjp",
) -> dict[str, Any]:
    """The top-k patches of `channels` and their projections, cropped to the receptive field.

    Returns ``{'channels' [K], 'values' [K, k], 'image_index' [K, k], 'yx' [K, k, 2],
    'patches' [K, k, R, R, 3] (display pixels in [0, 1], 0.5 outside the image and for
    activations <= 0, where the unit is silent),
    'projections' [K, k, R, R, 3] (input-space signal, 0 outside the image)}``.
    """
    ch = np.asarray(channels, int)
    values = np.asarray(top.values)[ch]
    index = np.asarray(top.image_index)[ch]
    yx = np.asarray(top.yx)[ch]
    num, k = index.shape
    unique, inverse = np.unique(index.ravel(), return_inverse=True)
    x = images.inputs(unique)[inverse]  # [K·k, S, S, 3]
    proj = _project_chunked(
        module, params, x, np.repeat(ch, k), yx.reshape(-1, 2), layer=layer, rule=rule, lrn=lrn
    )
    field = fields.receptive_field(module.config, layer)
    flat_yx = yx.reshape(-1, 2)
    patches = fields.crop_fields(images.display(x), field, flat_yx, fill=0.5)
    patches[values.ravel() <= 0] = 0.5  # the unit is silent there: no patch to show
    projections = fields.crop_fields(proj, field, flat_yx, fill=0.0)
    size = field.size
    return {
        "channels": ch,
        "values": values,
        "image_index": index,
        "yx": yx,
        "patches": patches.reshape(num, k, size, size, 3),
        "projections": projections.reshape(num, k, size, size, 3),
    }


def random_units(top: topk.TopActivations, count: int, *, seed: int = 0) -> np.ndarray:
    """`count` channels drawn at random (sorted) among those whose k-th strongest activation is
    positive (all k patches show something), else among those with any positive activation (a
    dead unit has nothing to show); fewer if fewer qualify."""
    values = np.asarray(top.values)
    alive = np.flatnonzero(values[:, -1] > 0)
    if alive.size < count:
        alive = np.flatnonzero(values[:, 0] > 0)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(alive, size=min(count, alive.size), replace=False))


def feature_evolution(
    module: alexnet.AlexNet,
    snapshots: Mapping[int, Any],
    images: ImageSet,
    *,
    layer: str,
    channels: Sequence[int],
    rule: str = "deconv",
    lrn: str = "vjp",
) -> dict[int, dict[str, Any]]:
    """Per snapshot step, `unit_patches` of each channel's strongest activation over the split
    (k = 1), found anew with that snapshot's parameters (Zeiler & Fergus Fig. 4)."""
    out = {}
    for step, params in sorted(snapshots.items()):
        top = top_per_layer(module, params, images, layers=(layer,), k=1)[layer]
        out[step] = unit_patches(
            module, params, images, top, layer=layer, channels=channels, rule=rule, lrn=lrn
        )
    return out
