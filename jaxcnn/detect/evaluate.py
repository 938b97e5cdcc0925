"""Test-time detection and its evaluation (R-CNN's ``rcnn_test.m``).

For every test image: score every proposal with every class's detector; per class keep the 100
highest-scoring boxes; suppress with greedy NMS at IoU 0.3 (`jaxcnn.detect.suppress`). Then
each class's detections over all images are scored with the VOC devkit's AP
(`jaxcnn.detect.ap`; ``voc07`` by default, ``voc12`` as an option). R-CNN also trims each class
to about 40 boxes per image over the whole set before NMS to save memory; that step only drops
low-scoring boxes and is left out here.

`postprocess` is one jitted program over a chunk of images (vmapped over images and classes).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.detect import ap as ap_lib
from jaxcnn.detect import suppress


def postprocess(scores_BxK, boxes_Bx4, valid_B, *, top_k: int, iou_threshold: float):
    """One image: per class the `top_k` best valid boxes, then NMS. Jittable, vmappable.

    Returns ``(boxes [K, T, 4], scores [K, T], keep [K, T])`` with T = min(top_k, B); ``keep``
    marks the valid boxes that survive NMS.
    """
    t = min(top_k, scores_BxK.shape[0])
    masked_KxB = jnp.where(valid_B[None, :], scores_BxK.T, -jnp.inf)
    top_KxT, idx_KxT = jax.lax.top_k(masked_KxB, t)  # ties: lower index first
    top_boxes = boxes_Bx4[idx_KxT]
    valid_KxT = jnp.isfinite(top_KxT)
    nms = functools.partial(suppress.nms_mask, iou_threshold=iou_threshold)
    keep = jax.vmap(nms)(top_boxes, jnp.where(valid_KxT, top_KxT, 0.0), valid_KxT)
    return top_boxes, top_KxT, keep


@functools.partial(jax.jit, static_argnames=("top_k", "iou_threshold"))
def _postprocess_images(scores_IxBxK, boxes_IxBx4, valid_IxB, *, top_k, iou_threshold):
    fn = functools.partial(postprocess, top_k=top_k, iou_threshold=iou_threshold)
    return jax.vmap(fn)(scores_IxBxK, boxes_IxBx4, valid_IxB)


@dataclasses.dataclass
class Detections:
    """Per class: image index, pixel box and score of every kept detection."""

    image: list  # K arrays int64 [N_k]
    boxes: list  # K arrays float32 [N_k, 4]
    scores: list  # K arrays float32 [N_k]


def _bucket(n: int) -> int:
    return max(8, 1 << max(0, n - 1).bit_length())


def detect(
    scores_per_image,
    boxes_per_image,
    *,
    top_k: int = 100,
    iou_threshold: float = 0.3,
    chunk: int = 64,
) -> Detections:
    """Detections of every class on every image from per-image ``scores [B_i, K]`` and
    ``boxes [B_i, 4]`` (the proposals only). Images are processed `chunk` at a time, padded to
    a power-of-two box count."""
    k = scores_per_image[0].shape[1]
    out_i, out_b, out_s = ([[] for _ in range(k)] for _ in range(3))
    for lo in range(0, len(scores_per_image), chunk):
        part = range(lo, min(lo + chunk, len(scores_per_image)))
        b = _bucket(max(max(len(scores_per_image[i]) for i in part), 1))
        n = chunk
        s = np.zeros((n, b, k), np.float32)
        bx = np.ones((n, b, 4), np.float32)
        valid = np.zeros((n, b), bool)
        for j, i in enumerate(part):
            m = len(scores_per_image[i])
            s[j, :m], bx[j, :m], valid[j, :m] = scores_per_image[i], boxes_per_image[i], True
        tb, ts, keep = (
            np.asarray(a)
            for a in _postprocess_images(s, bx, valid, top_k=top_k, iou_threshold=iou_threshold)
        )
        for j, i in enumerate(part):
            for c in range(k):
                kept = keep[j, c]
                out_i[c].append(np.full(int(kept.sum()), i, np.int64))
                out_b[c].append(tb[j, c][kept])
                out_s[c].append(ts[j, c][kept])
    cat = lambda parts, shape: [np.concatenate(p) if p else np.zeros(shape) for p in parts]
    return Detections(cat(out_i, 0).copy(), cat(out_b, (0, 4)), cat(out_s, 0))


def evaluate(dets: Detections, ground_truth, *, method: str = "voc07", iou_threshold=0.5):
    """Per-class ``(ap_K, curves)``: AP by the devkit's rules and ``(recall, precision)``
    arrays; ``ground_truth`` is a list of `jaxcnn.detect.roidb.GroundTruth` (image i = the
    detections' image index i)."""
    k = len(dets.scores)
    gt_img = np.concatenate([np.full(len(g.labels), i) for i, g in enumerate(ground_truth)])
    gt_box = np.concatenate([g.boxes.reshape(-1, 4) for g in ground_truth])
    gt_lab = np.concatenate([g.labels for g in ground_truth])
    gt_dif = np.concatenate([g.difficult for g in ground_truth])
    aps, curves = np.zeros(k), []
    for c in range(k):
        sel = gt_lab == c
        aps[c], rec, prec = ap_lib.pr_curve(
            dets.image[c],
            dets.boxes[c],
            dets.scores[c],
            gt_img[sel],
            gt_box[sel],
            gt_dif[sel],
            iou_threshold=iou_threshold,
            method=method,
        )
        curves.append((rec, prec))
    return aps, curves


def resample_images(dets: Detections, ground_truth, pick) -> tuple[Detections, list]:
    """The detections and ground truth of the test set made of images ``pick`` (old indices,
    repeats allowed): new image j is old image ``pick[j]``, with all of its detections."""
    pick = np.asarray(pick, np.int64)
    n = len(ground_truth)
    image, boxes, scores = [], [], []
    for img, bx, sc in zip(dets.image, dets.boxes, dets.scores, strict=True):
        order = np.argsort(img, kind="stable")
        count = np.bincount(img, minlength=n)
        start = np.concatenate([[0], np.cumsum(count)[:-1]])
        rows = np.concatenate([order[start[i] : start[i] + count[i]] for i in pick] or [[]])
        rows = rows.astype(np.int64)
        image.append(np.repeat(np.arange(len(pick)), count[pick]))
        boxes.append(bx[rows])
        scores.append(sc[rows])
    return Detections(image, boxes, scores), [ground_truth[i] for i in pick]


def bootstrap_map(dets: Detections, ground_truth, *, resamples: int, method: str = "voc07"):
    """mAP on `resamples` bootstrap resamples of the test images (resample r draws the images
    with replacement with seed r, so two networks' resamples are the same images): the noise
    of the test set for the three-valued verdicts (docs/methods.md §9.2)."""
    n, out = len(ground_truth), []
    for r in range(resamples):
        pick = np.random.default_rng(r).integers(0, n, n)
        aps, _ = evaluate(*resample_images(dets, ground_truth, pick), method=method)
        out.append(float(np.nanmean(aps)) if np.isfinite(aps).any() else float("nan"))
    return out
