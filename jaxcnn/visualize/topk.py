"""The k strongest activations of every unit over a dataset (Zeiler & Fergus Fig. 2's top 9).

See docs/methods.md §Visualisation. Candidates are (value, image index, position) triples of one
channel. By default each image contributes at most one candidate per channel, its strongest
position (the deep-visualization toolbox's choice); with ``distinct_images=False`` every position
is a candidate. Order: values descending, ties broken by the lower image index, then the earlier
position in row-major order. `lax.top_k` returns the lower index first among equal values, so
laying the candidates out in (image, position) order gives exactly this tie rule; the streaming
form keeps the running top k in front of each new batch's candidates (whose image indices are
higher), so merging preserves it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class TopActivations(NamedTuple):
    values: jax.Array  # float32 [F, k], descending
    image_index: jax.Array  # int32 [F, k]
    yx: jax.Array  # int32 [F, k, 2]; (0, 0) for fc taps


def _as_maps(acts):
    """[N, P, F] and the map width: conv taps [N, H, W, F], fc taps [N, F] (P = 1)."""
    if acts.ndim == 2:
        return acts[:, None, :], 1
    if acts.ndim != 4:
        raise ValueError(f"acts must be [N, H, W, F] or [N, F], got shape {acts.shape}")
    n, h, w, f = acts.shape
    return acts.reshape(n, h * w, f), w


def _candidates(acts, image_N, valid_N, distinct_images):
    """Per channel, candidates in (image, position) order: values, image index, flat position
    ([F, M] each); invalid rows get value -inf and image -1."""
    maps, _ = _as_maps(acts)
    maps = jnp.where(valid_N[:, None, None], maps.astype(jnp.float32), -jnp.inf)
    n, p, f = maps.shape
    if distinct_images:
        values = jnp.max(maps, axis=1).T  # [F, N]
        pos = jnp.argmax(maps, axis=1).T.astype(jnp.int32)  # first maximum in row-major order
        image = jnp.broadcast_to(image_N[None, :], (f, n))
    else:
        values = jnp.moveaxis(maps, 2, 0).reshape(f, n * p)
        pos = jnp.broadcast_to(jnp.tile(jnp.arange(p, dtype=jnp.int32), n)[None], (f, n * p))
        image = jnp.broadcast_to(jnp.repeat(image_N, p)[None], (f, n * p))
    image = jnp.where(values > -jnp.inf, image, -1)
    return values, image.astype(jnp.int32), pos


def _select(values, image, pos, k, width):
    values, order = jax.lax.top_k(values, k)  # equal values: the lower index (earlier) first
    image = jnp.take_along_axis(image, order, axis=1)
    pos = jnp.take_along_axis(pos, order, axis=1)
    return TopActivations(values, image, jnp.stack([pos // width, pos % width], axis=-1))


@functools.partial(jax.jit, static_argnames=("k", "distinct_images"))
def _top(acts, *, k, distinct_images):
    n = acts.shape[0]
    values, image, pos = _candidates(
        acts, jnp.arange(n, dtype=jnp.int32), jnp.ones(n, bool), distinct_images
    )
    return _select(values, image, pos, k, _as_maps(acts)[1])


def top_activations(acts_NxHxWxF, *, k: int, distinct_images: bool = True) -> TopActivations:
    """The k strongest activations of each channel (module docstring for order and ties).

    Args:
      acts_NxHxWxF: float [N, H, W, F] conv activations or [N, F] fc activations.
      k: how many per channel; at most N (distinct images) or N·H·W candidates.
      distinct_images: at most one per image (its first strongest position) if True.

    Returns:
      `TopActivations` (values [F, k], image_index [F, k], yx [F, k, 2]).
    """
    acts = jnp.asarray(acts_NxHxWxF)
    maps, _ = _as_maps(acts)
    available = maps.shape[0] if distinct_images else maps.shape[0] * maps.shape[1]
    if not 1 <= k <= available:
        raise ValueError(f"k must be in [1, {available}], got {k}")
    return _top(acts, k=k, distinct_images=distinct_images)


def init_top(num_features: int, k: int) -> TopActivations:
    """The empty running top k of the streaming form: values -inf, image -1."""
    return TopActivations(
        jnp.full((num_features, k), -jnp.inf, jnp.float32),
        jnp.full((num_features, k), -1, jnp.int32),
        jnp.zeros((num_features, k, 2), jnp.int32),
    )


@functools.partial(jax.jit, static_argnames=("distinct_images",))
def merge_top(state: TopActivations, acts, image_N, valid_N, *, distinct_images=True):
    """The running top k updated with one batch of activations (`image_N`: their image indices,
    all above those already seen; `valid_N`: False for padding rows)."""
    k = state.values.shape[1]
    maps_width = _as_maps(acts)[1]
    values, image, pos = _candidates(acts, image_N.astype(jnp.int32), valid_N, distinct_images)
    old_pos = state.yx[..., 0] * maps_width + state.yx[..., 1]
    return _select(
        jnp.concatenate([state.values, values], axis=1),
        jnp.concatenate([state.image_index, image], axis=1),
        jnp.concatenate([old_pos, pos], axis=1),
        k,
        maps_width,
    )


def stream_top_activations(
    forward, params, batches: Iterable[dict], *, num_features: int, k: int,
    distinct_images: bool = True,
) -> TopActivations:  # fmt: skip
    """`top_activations` over a whole split, one batch at a time, merged on the device.

    Args:
      forward: jitted ``forward(params, images) -> acts`` ([B, H, W, F] or [B, F]).
      batches: dicts with ``image`` [B, H, W, 3] and optionally ``mask`` [B] (False: padding)
        and ``index`` [B] (image indices, increasing over the stream; default: running count).

    Raises:
      ValueError if the split has fewer than k candidates for some channel.
    """
    state, seen = init_top(num_features, k), 0
    for batch in batches:
        b = batch["image"].shape[0]
        mask = np.asarray(batch.get("mask", np.ones(b, bool)), bool)
        index = np.asarray(batch.get("index", np.arange(seen, seen + b)))
        acts = forward(params, jnp.asarray(batch["image"]))
        state = merge_top(
            state, acts, jnp.asarray(index), jnp.asarray(mask & (index >= 0)),
            distinct_images=distinct_images,
        )  # fmt: skip
        seen += b
    if bool(jnp.any(state.image_index < 0)):
        raise ValueError(f"fewer than k={k} candidates in the {seen} rows streamed")
    return state
