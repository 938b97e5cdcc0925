"""Literal numpy ports of the reference loops: the VOC devkit's ``VOCevaldet.m`` and R-CNN's
``nms.m``. They are the independent references that the vectorised JAX kernels
(`jaxcnn.detect.nms`, `jaxcnn.detect.ap`) are tested and benchmarked against; they follow the
MATLAB line by line (one detection at a time, Python loops), so they are slow by design.

Conventions shared with the kernels: boxes ``[x1, y1, x2, y2]`` 1-based inclusive, areas and
overlaps with +1; detections sorted by descending score with ties in input order (MATLAB's
stable ``sort(-confidence)``); the 11 recall thresholds are the exact decimals ``k / 10``.
"""

from __future__ import annotations

import numpy as np


def voc_ap_literal(
    det_image,
    det_boxes,
    det_scores,
    gt_image,
    gt_boxes,
    gt_difficult,
    *,
    iou_threshold=0.5,
    method="voc07",
):
    """``VOCevaldet.m`` + ``VOCap`` for one class, a detection at a time. Returns
    ``(ap, recall, precision)`` (precision NaN where neither a TP nor an FP has been seen)."""
    det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    gt_difficult = np.asarray(gt_difficult, bool)
    gt = {}
    for j, img in enumerate(np.asarray(gt_image).tolist()):
        gt.setdefault(img, []).append(j)
    detected = np.zeros(len(gt_boxes), bool)
    npos = int(np.sum(~gt_difficult))
    order = np.argsort(-np.asarray(det_scores, np.float64), kind="stable")
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for d, i in enumerate(order):
        bb = det_boxes[i]
        ovmax, jmax = -np.inf, -1
        for j in gt.get(np.asarray(det_image).tolist()[i], []):
            bbgt = gt_boxes[j]
            bi = [
                max(bb[0], bbgt[0]),
                max(bb[1], bbgt[1]),
                min(bb[2], bbgt[2]),
                min(bb[3], bbgt[3]),
            ]
            iw, ih = bi[2] - bi[0] + 1, bi[3] - bi[1] + 1
            if iw > 0 and ih > 0:
                ua = (
                    (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1)
                    + (bbgt[2] - bbgt[0] + 1) * (bbgt[3] - bbgt[1] + 1)
                    - iw * ih
                )
                ov = iw * ih / ua
                if ov > ovmax:
                    ovmax, jmax = ov, j
        if ovmax >= iou_threshold:
            if not gt_difficult[jmax]:
                if not detected[jmax]:
                    tp[d], detected[jmax] = 1, True
                else:
                    fp[d] = 1  # duplicate
        else:
            fp[d] = 1
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    rec = tp / npos if npos else np.full(len(tp), np.nan)
    with np.errstate(invalid="ignore"):
        prec = tp / (fp + tp)
    if npos == 0:
        return float("nan"), rec, prec
    return _ap_literal(rec, prec, method), rec, prec


def _ap_literal(rec, prec, method):
    if method == "voc07":
        ap = 0.0
        for k in range(11):
            t = k / 10
            sel = prec[(rec >= t) & ~np.isnan(prec)]  # MATLAB's max ignores NaN
            ap += (sel.max() if sel.size else 0.0) / 11
        return float(ap)
    if method != "voc12":
        raise ValueError(f"method must be 'voc07' or 'voc12', got {method!r}")
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], np.nan_to_num(prec, nan=0.0), [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = [i for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1]]
    return float(sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in idx))


def nms_literal(boxes, scores, *, iou_threshold):
    """Greedy NMS as R-CNN's ``nms.m``: take the highest-scoring remaining box, drop every
    remaining box whose IoU with it is > the threshold, repeat. Ties: input order."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = list(np.argsort(-np.asarray(scores, np.float64), kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = []
        for j in order:
            iw = min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]) + 1
            ih = min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]) + 1
            inter = max(0.0, iw) * max(0.0, ih)
            union = (
                (b[i, 2] - b[i, 0] + 1) * (b[i, 3] - b[i, 1] + 1)
                + (b[j, 2] - b[j, 0] + 1) * (b[j, 3] - b[j, 1] + 1)
                - inter
            )
            if inter / union <= iou_threshold:
                rest.append(j)
        order = rest
    return np.asarray(keep, np.int64)


def nms_numpy(boxes, scores, *, iou_threshold):
    """R-CNN's ``nms.m`` as written in MATLAB: one iteration per kept box, vector operations
    over the remaining ones (what a numpy user would run; ties: input order)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0]) + 1
        ih = np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1]) + 1
        inter = np.maximum(0.0, iw) * np.maximum(0.0, ih)
        order = rest[inter / (area[i] + area[rest] - inter) <= iou_threshold]
    return np.asarray(keep, np.int64)
