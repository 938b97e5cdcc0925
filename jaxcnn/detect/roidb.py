"""Per-image boxes and their overlaps with the ground truth (R-CNN's ``roidb``).

An image's entry lists its ground-truth boxes first (all of them, difficult included, as
R-CNN's ``roidb_from_voc.m``) and then its proposals, with for every box and class the highest
IoU with a ground-truth box of that class (``overlap [K, C]``). From it follow

- the fine-tuning label of a box (`window_labels`): class ``c + 1`` when its highest IoU with
  any ground-truth box is >= 0.5 and that box is of class ``c``, else 0 (background);
- the detector training sets (`jaxcnn.detect.mining`): positives of class ``c`` are its
  ground-truth boxes, negatives the boxes with ``overlap[:, c] < 0.3``.

Boxes are ``[x1, y1, x2, y2]`` 1-based inclusive pixels (`jaxcnn.detect.boxes`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxcnn.data import records
from jaxcnn.detect import boxes as box_ops


@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """One image's ground truth: pixel boxes, class ids (0-based), difficult flags, size."""

    image_id: str
    height: int
    width: int
    boxes: np.ndarray  # int64 [G, 4]
    labels: np.ndarray  # int64 [G]
    difficult: np.ndarray  # bool [G]


def read_ground_truth(source, index: int) -> GroundTruth:
    """The ground truth of record `index` of a detection `jaxcnn.data.sources.Source`."""
    record = source[index]
    h, w = record["image"].shape[:2]
    objects = record["objects"]
    keep = np.ones(len(objects["label"]), bool)
    bbox = objects["bbox"]
    if len(bbox):
        keep = (bbox[:, 2] > bbox[:, 0]) & (bbox[:, 3] > bbox[:, 1])  # zero-area boxes dropped
    return GroundTruth(
        image_id=str(record["id"]),
        height=int(h),
        width=int(w),
        boxes=box_ops.from_normalised(bbox[keep], h, w),
        labels=np.asarray(objects["label"], np.int64)[keep],
        difficult=np.asarray(objects["difficult"], bool)[keep],
    )


def validate(gt: GroundTruth, num_classes: int) -> None:
    """Raises `records.BadExampleError` for labels outside [0, C) or boxes off the image."""
    if np.any((gt.labels < 0) | (gt.labels >= num_classes)):
        raise records.BadExampleError(f"{gt.image_id}: labels {gt.labels.tolist()}")
    b = gt.boxes
    if len(b) and (b.min() < 1 or b[:, 2].max() > gt.width or b[:, 3].max() > gt.height):
        raise records.BadExampleError(f"{gt.image_id}: boxes {b.tolist()} off the image")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One image's boxes (ground truth first, then proposals) and their overlaps."""

    boxes: np.ndarray  # int64 [K, 4]
    is_gt: np.ndarray  # bool [K]
    gt_label: np.ndarray  # int64 [K]: the class of a ground-truth box, -1 for proposals
    overlap: np.ndarray  # float32 [K, C]: highest IoU with a ground-truth box of each class
    max_iou: np.ndarray  # float32 [K]: highest IoU with any ground-truth box
    max_label: np.ndarray  # int64 [K]: class of that box (first on ties), -1 without GT


def make_entry(gt: GroundTruth, proposals_Px4: np.ndarray, num_classes: int) -> Entry:
    """The image's `Entry` from its ground truth and proposals (module docstring)."""
    props = np.asarray(proposals_Px4, np.int64).reshape(-1, 4)
    boxes = np.concatenate([gt.boxes.reshape(-1, 4), props])
    k, g = len(boxes), len(gt.boxes)
    overlap = np.zeros((k, num_classes), np.float32)
    max_iou, max_label = np.zeros(k, np.float32), np.full(k, -1, np.int64)
    if g and k:
        iou_KxG = box_ops.iou_matrix_np(boxes, gt.boxes)
        for c in np.unique(gt.labels):
            overlap[:, c] = iou_KxG[:, gt.labels == c].max(axis=1)
        best = np.argmax(iou_KxG, axis=1)  # first maximal box on ties
        max_iou = iou_KxG[np.arange(k), best].astype(np.float32)
        max_label = gt.labels[best]
    return Entry(
        boxes=boxes,
        is_gt=np.arange(k) < g,
        gt_label=np.concatenate([gt.labels, np.full(len(props), -1, np.int64)]),
        overlap=overlap,
        max_iou=max_iou,
        max_label=max_label,
    )


def window_labels(entry: Entry, *, fg_threshold: float = 0.5) -> np.ndarray:
    """int64 [K]: ``c + 1`` when the box's highest IoU (with any ground-truth box) is >=
    `fg_threshold` and that box is of class c; 0 (background) otherwise."""
    return np.where(entry.max_iou >= fg_threshold, entry.max_label + 1, 0)
