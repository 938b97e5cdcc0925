"""The PASCAL VOC detection metric (devkit ``VOCevaldet.m``), vectorised in JAX.

Rules for one class (docs/methods.md §Detection; devkit 2007 and R-CNN's evaluation):

1. Detections are sorted by descending confidence; ties keep input order (the devkit's
   stable ``sort(-confidence)``).
2. Each detection is compared with the ground-truth boxes of its class in its image and takes
   the one of highest IoU (+1 pixel convention; the first such box on ties), whether or not that
   box was already claimed.
3. IoU >= ``iou_threshold`` and that box difficult: neither true nor false positive. IoU >=
   threshold, not difficult, not yet claimed by a higher-ranked detection: true positive (it
   claims the box). Already claimed: false positive (duplicate). IoU below the threshold (or no
   ground truth in the image): false positive.
4. Positives ``npos`` = ground-truth boxes that are not difficult (images without detections
   included). Recall = cumTP / npos, precision = cumTP / (cumTP + cumFP) (undefined before the
   first TP or FP, and then ignored, as MATLAB's ``max`` ignores NaN).
5. ``voc07``: 11-point interpolated AP, mean over t = 0, 0.1, ..., 1 (exact decimals k/10) of
   the highest precision at recall >= t (0 if none). ``voc12``: area under the monotone
   envelope of the precision-recall curve (``VOCap``).

Because step 2 ignores claims, a detection is a true positive exactly when it is the first
eligible detection (in sorted order) pointing at its (image, box): one ``segment_min`` replaces
the devkit's sequential loop. A class with no positives has undefined AP: NaN.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.detect import boxes as box_ops

METHODS = ("voc07", "voc12")


def match_detections(
    det_image_N,
    det_boxes_Nx4,
    det_scores_N,
    det_valid_N,
    gt_boxes_IxGx4,
    gt_difficult_IxG,
    gt_valid_IxG,
    *,
    iou_threshold: float,
):
    """Devkit matching (module steps 1-3), jittable. Detections refer to images by their row
    ``0..I-1`` in the padded ground truth ``[I, G, ...]``.

    Returns ``(order_N, tp_N, fp_N)``: the sorted order and float 0/1 flags in that order;
    padding (``det_valid_N`` false) is sorted last and is neither TP nor FP.
    """
    n = det_scores_N.shape[0]
    num_images, g = gt_valid_IxG.shape
    order_N = jnp.argsort(jnp.where(det_valid_N, -det_scores_N, jnp.inf), stable=True)
    img_N = det_image_N[order_N]
    valid_N = det_valid_N[order_N]
    gt_NxGx4 = gt_boxes_IxGx4[img_N]
    ov_NxG = jax.vmap(lambda d, gt: box_ops.iou_matrix(d[None], gt)[0])(
        det_boxes_Nx4[order_N], gt_NxGx4
    )
    ov_NxG = jnp.where(gt_valid_IxG[img_N], ov_NxG, -1.0)  # padding slots never match
    jmax_N = jnp.argmax(ov_NxG, axis=1)  # first maximal box on ties (devkit's strict '>')
    ovmax_N = jnp.max(ov_NxG, axis=1)
    hit_N = valid_N & (ovmax_N >= iou_threshold)
    difficult_N = gt_difficult_IxG[img_N, jmax_N]
    candidate_N = hit_N & ~difficult_N
    key_N = img_N * g + jmax_N
    rank_N = jnp.arange(n)
    first = jax.ops.segment_min(
        jnp.where(candidate_N, rank_N, n), key_N, num_segments=num_images * g
    )
    tp_N = candidate_N & (first[key_N] == rank_N)
    fp_N = valid_N & ~tp_N & ~(hit_N & difficult_N)
    return order_N, tp_N.astype(jnp.float32), fp_N.astype(jnp.float32)


def precision_recall(tp_N, fp_N, npos):
    """Cumulative ``(recall_N, precision_N)``; precision NaN where cumTP + cumFP = 0."""
    tp_c, fp_c = jnp.cumsum(tp_N), jnp.cumsum(fp_N)
    seen = tp_c + fp_c
    prec = jnp.where(seen > 0, tp_c / jnp.maximum(seen, 1.0), jnp.nan)
    return tp_c / npos, prec


def average_precision(tp_N, fp_N, npos, *, method: str = "voc07") -> jax.Array:
    """AP of the precision-recall curve of 0/1 flags in ranked order (module step 5); points
    with undefined precision are ignored. Jittable.

    ``voc07`` compares recall with the levels k/10 in integers (``10 cumTP >= k npos``): XLA's
    vectorised division is not correctly rounded, so cumTP / npos and k / 10 computed on the
    device can miss a level they reach exactly (e.g. recall 0.7 against 0.7)."""
    rec, prec = precision_recall(tp_N, fp_N, npos)
    prec = jnp.nan_to_num(prec, nan=0.0)  # precision >= 0: 0 never wins a max
    if method == "voc07":
        tp_c = jnp.cumsum(tp_N).astype(jnp.int32)
        levels_T = jnp.arange(11, dtype=jnp.int32)
        reached_TN = 10 * tp_c[None, :] >= levels_T[:, None] * jnp.asarray(npos, jnp.int32)
        return jnp.mean(jnp.max(jnp.where(reached_TN, prec[None, :], 0.0), axis=1))
    if method != "voc12":
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    mrec = jnp.concatenate([jnp.zeros(1, rec.dtype), rec, jnp.ones(1, rec.dtype)])
    mpre = jnp.concatenate([jnp.zeros(1, prec.dtype), prec, jnp.zeros(1, prec.dtype)])
    envelope = jax.lax.cummax(mpre, reverse=True)
    step = mrec[1:] - mrec[:-1]  # zero where recall does not change
    return jnp.sum(step * envelope[1:])


@functools.partial(jax.jit, static_argnames=("iou_threshold", "method"))
def _curve_and_ap(*arrays, npos, iou_threshold, method):
    _, tp, fp = match_detections(*arrays, iou_threshold=iou_threshold)
    rec, prec = precision_recall(tp, fp, npos)
    return rec, prec, average_precision(tp, fp, npos, method=method)


def _bucket(n: int) -> int:
    return max(8, 1 << max(0, n - 1).bit_length())


def _pack_ground_truth(gt_image_G, gt_boxes_Gx4, gt_difficult_G, det_image_N):
    """Image ids -> rows; ground truth padded to [I, Gmax] (bucketed sizes)."""
    ids, det_rows = np.unique(np.concatenate([gt_image_G, det_image_N]), return_inverse=True)
    gt_rows, det_rows = det_rows[: len(gt_image_G)], det_rows[len(gt_image_G) :]
    counts = np.bincount(gt_rows, minlength=len(ids))
    num_i, num_g = _bucket(len(ids)), _bucket(int(counts.max(initial=1)))
    slot = np.zeros(len(gt_rows), np.int64)
    order = np.argsort(gt_rows, kind="stable")  # boxes keep their input order within an image
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot[order] = np.arange(len(gt_rows)) - starts[gt_rows[order]]
    boxes = np.zeros((num_i, num_g, 4), np.float32)
    difficult = np.zeros((num_i, num_g), bool)
    valid = np.zeros((num_i, num_g), bool)
    boxes[gt_rows, slot], difficult[gt_rows, slot], valid[gt_rows, slot] = (
        gt_boxes_Gx4,
        gt_difficult_G,
        True,
    )
    return det_rows, boxes, difficult, valid


def pr_curve(
    det_image_N,
    det_boxes_Nx4,
    det_scores_N,
    gt_image_G,
    gt_boxes_Gx4,
    gt_difficult_G,
    *,
    iou_threshold: float = 0.5,
    method: str = "voc07",
):
    """``(ap, recall_N, precision_N)`` of one class, numpy (see `detection_ap`)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    db = box_ops.check_boxes(det_boxes_Nx4, "det_boxes")
    gb = box_ops.check_boxes(gt_boxes_Gx4, "gt_boxes")
    di = np.asarray(det_image_N, np.int64).reshape(-1)
    ds = np.asarray(det_scores_N, np.float64).reshape(-1)
    gi = np.asarray(gt_image_G, np.int64).reshape(-1)
    gd = np.asarray(gt_difficult_G, bool).reshape(-1)
    if not (len(di) == len(ds) == len(db)) or not (len(gi) == len(gd) == len(gb)):
        raise ValueError(
            f"detections: {len(di)} images, {len(db)} boxes, {len(ds)} scores; ground truth: "
            f"{len(gi)} images, {len(gb)} boxes, {len(gd)} difficult flags (must agree)"
        )
    npos = int(np.sum(~gd))
    n = len(di)
    if n == 0:
        return (0.0 if npos else float("nan")), np.zeros(0), np.zeros(0)
    det_rows, gt_b, gt_d, gt_v = _pack_ground_truth(gi, gb, gd, di)
    m = _bucket(n)
    pad = lambda a, dtype: np.concatenate([a, np.zeros((m - n, *a.shape[1:]), a.dtype)]).astype(
        dtype
    )
    # float32 kernel: scores enter as descending ranks so that distinct scores stay distinct.
    neg_rank = -_dense_order(ds)
    rec, prec, ap = _curve_and_ap(
        pad(det_rows, np.int32),
        pad(db, np.float32),
        pad(neg_rank, np.float32),
        np.arange(m) < n,
        gt_b,
        gt_d,
        gt_v,
        npos=float(max(npos, 1)),
        iou_threshold=float(iou_threshold),
        method=method,
    )
    rec, prec = np.asarray(rec, np.float64)[:n], np.asarray(prec, np.float64)[:n]
    if npos == 0:
        return float("nan"), np.full(n, np.nan), prec
    return float(ap), rec, prec


def _dense_order(scores: np.ndarray) -> np.ndarray:
    """Descending rank of each score, equal scores sharing one rank (ties stay ties)."""
    _, inverse = np.unique(-scores, return_inverse=True)
    return inverse.astype(np.float64)


def detection_ap(
    det_image_N,
    det_boxes_Nx4,
    det_scores_N,
    gt_image_G,
    gt_boxes_Gx4,
    gt_difficult_G,
    *,
    iou_threshold: float = 0.5,
    method: str = "voc07",
) -> float:
    """Average precision of one class by the VOC devkit's rules (module docstring).

    Args:
      det_image_N: int image id of each detection.
      det_boxes_Nx4: ``[x1, y1, x2, y2]`` 1-based inclusive pixels.
      det_scores_N: confidences (higher first; ties keep input order).
      gt_image_G, gt_boxes_Gx4, gt_difficult_G: the class's ground-truth boxes, all images.
      iou_threshold: 0.5 in VOC.
      method: ``"voc07"`` (11-point, VOC 2007 and R-CNN) or ``"voc12"`` (envelope area).

    Returns:
      AP in [0, 1]; 0.0 for a class without detections; NaN when the class has no
      non-difficult ground-truth box.
    """
    return pr_curve(
        det_image_N,
        det_boxes_Nx4,
        det_scores_N,
        gt_image_G,
        gt_boxes_Gx4,
        gt_difficult_G,
        iou_threshold=iou_threshold,
        method=method,
    )[0]
