"""Greedy non-maximum suppression (R-CNN's ``nms.m``), as a jittable kernel and the public call.

Rule (docs/methods.md §Detection): visit the boxes in descending score order (ties: input
order, a stable sort); keep a box unless its IoU (+1 pixel convention, `jaxcnn.detect.boxes`)
with an already kept box is > ``iou_threshold``. R-CNN's ``nms.m`` breaks score ties the other
way (MATLAB's ascending sort, last taken first); with distinct scores the two agree.

`nms_mask` computes the [N, N] IoU matrix once and runs the greedy pass as a `lax.fori_loop` of
N vector steps, so ``vmap`` over classes (or images) batches many suppressions in one program.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.detect import boxes as box_ops


def nms_mask(boxes_Nx4, scores_N, valid_N=None, *, iou_threshold: float) -> jax.Array:
    """bool [N]: which boxes greedy NMS keeps (in input positions). Jittable, vmappable.

    Args:
      boxes_Nx4: float [N, 4] pixel boxes ``[x1, y1, x2, y2]``.
      scores_N: float [N].
      valid_N: optional bool [N]; invalid entries (padding) are never kept and suppress nothing.
      iou_threshold: a box is suppressed when IoU > this with a kept, higher-ranked box.
    """
    n = scores_N.shape[0]
    valid_N = jnp.ones((n,), bool) if valid_N is None else valid_N
    # Stable sort of -score: equal scores keep input order; padding goes last.
    order_N = jnp.argsort(jnp.where(valid_N, -scores_N, jnp.inf), stable=True)
    sorted_boxes = boxes_Nx4[order_N]
    over_NxN = box_ops.iou_matrix(sorted_boxes, sorted_boxes) > iou_threshold
    valid_sorted = valid_N[order_N]

    def body(i, keep_N):
        suppressed = jnp.any(keep_N & over_NxN[:, i])  # kept boxes are all ranked before i
        return keep_N.at[i].set(valid_sorted[i] & ~suppressed)

    keep_sorted = jax.lax.fori_loop(0, n, body, jnp.zeros((n,), bool))
    return jnp.zeros((n,), bool).at[order_N].set(keep_sorted)


@functools.partial(jax.jit, static_argnames="iou_threshold")
def _nms_mask_jit(boxes_Nx4, scores_N, valid_N, *, iou_threshold):
    return nms_mask(boxes_Nx4, scores_N, valid_N, iou_threshold=iou_threshold)


def _bucket(n: int) -> int:
    """Padded length: the next power of two (at least 8), so few shapes are compiled."""
    return max(8, 1 << max(0, n - 1).bit_length())


def nms(boxes_Nx4, scores_N, *, iou_threshold: float) -> np.ndarray:
    """int64 indices of the boxes greedy NMS keeps, in descending score order (ties: input
    order). ``boxes_Nx4`` are ``[x1, y1, x2, y2]`` 1-based inclusive pixels."""
    b = box_ops.check_boxes(boxes_Nx4)
    s = np.asarray(scores_N, np.float64).reshape(-1)
    if s.shape[0] != b.shape[0]:
        raise ValueError(f"{b.shape[0]} boxes but {s.shape[0]} scores")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    n = b.shape[0]
    if n == 0:
        return np.zeros((0,), np.int64)
    m = _bucket(n)
    pad_b = np.zeros((m, 4), np.float32)
    pad_b[:n] = b
    pad_s = np.zeros((m,), np.float32)
    pad_s[:n] = s
    # Ranks, not raw scores, enter the float32 kernel: distinct float64 scores stay distinct.
    pad_s[:n] = -_ranks(s)
    keep = np.asarray(_nms_mask_jit(pad_b, pad_s, np.arange(m) < n, iou_threshold=iou_threshold))
    kept = np.nonzero(keep[:n])[0]
    return kept[np.argsort(-s[kept], kind="stable")].astype(np.int64)


def _ranks(scores_N: np.ndarray) -> np.ndarray:
    """0-based rank of each score in descending order, equal scores sharing the lowest rank."""
    order = np.argsort(-scores_N, kind="stable")
    sorted_s = scores_N[order]
    first = np.r_[True, sorted_s[1:] != sorted_s[:-1]]
    rank_sorted = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    ranks = np.empty(len(order), np.float64)
    ranks[order] = rank_sorted
    return ranks
