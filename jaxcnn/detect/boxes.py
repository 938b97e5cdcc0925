"""Pixel boxes for detection: areas and IoU with the VOC devkit's +1 convention, conversions.

Every box in `jaxcnn.detect` is ``[x1, y1, x2, y2]`` in 1-based inclusive pixels (the VOC
devkit's and R-CNN's): the box covers columns ``x1..x2`` and rows ``y1..y2``, so its width is
``x2 - x1 + 1`` and a one-pixel box has ``x1 == x2``. IoU follows the devkit's ``VOCevaldet.m``
(and R-CNN's ``boxoverlap.m``)::

    iw = min(x2, x2') - max(x1, x1') + 1,   ih = likewise in y
    inter = iw * ih if iw > 0 and ih > 0 else 0
    IoU = inter / ((x2 - x1 + 1)(y2 - y1 + 1) + (x2' - x1' + 1)(y2' - y1' + 1) - inter)

Stored datasets keep TFDS's normalised ``(ymin, xmin, ymax, xmax)``; `from_normalised` and
`to_normalised` are the one mapping of docs/methods.md §3.5 (`jaxcnn.data.boxes`), the one
`warp_box` uses, so a pixel box goes through `warp_pixel_box` unchanged.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxcnn.data import boxes as data_boxes


def check_boxes(boxes_Nx4, name: str = "boxes") -> np.ndarray:
    """float64 [N, 4] copy; ValueError unless finite with x2 >= x1 and y2 >= y1 (area >= 1)."""
    b = np.asarray(boxes_Nx4, np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{name} must be [N, 4] (x1, y1, x2, y2), got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{name} has non-finite coordinates")
    bad = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    if np.any(bad):
        raise ValueError(f"{name} has boxes with x2 < x1 or y2 < y1: {b[bad][:3].tolist()}")
    return b


def area(boxes_Nx4):
    """Areas ``(x2 - x1 + 1)(y2 - y1 + 1)`` (jnp or np, the input's kind)."""
    b = boxes_Nx4
    return (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)


def iou_matrix(a_Nx4: jnp.ndarray, b_Mx4: jnp.ndarray) -> jnp.ndarray:
    """[N, M] IoU of every pair (module docstring), jittable; disjoint pairs give exactly 0."""
    a, b = jnp.asarray(a_Nx4), jnp.asarray(b_Mx4)
    iw = jnp.minimum(a[:, None, 2], b[None, :, 2]) - jnp.maximum(a[:, None, 0], b[None, :, 0]) + 1
    ih = jnp.minimum(a[:, None, 3], b[None, :, 3]) - jnp.maximum(a[:, None, 1], b[None, :, 1]) + 1
    inter = jnp.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    union = area(a)[:, None] + area(b)[None, :] - inter  # >= 1 for valid boxes
    return inter / union


def iou_matrix_np(a_Nx4: np.ndarray, b_Mx4: np.ndarray) -> np.ndarray:
    """float64 numpy twin of `iou_matrix` (host-side labelling of proposals)."""
    a, b = np.asarray(a_Nx4, np.float64), np.asarray(b_Mx4, np.float64)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def from_normalised(bbox_Kx4: np.ndarray, height: int, width: int) -> np.ndarray:
    """int64 [K, 4] pixel boxes of stored (ymin, xmin, ymax, xmax) boxes: the one mapping of
    docs/methods.md §3.5, `jaxcnn.data.boxes.normalised_to_voc`."""
    b = np.asarray(bbox_Kx4, np.float64).reshape(-1, 4)
    return data_boxes.normalised_to_voc(b, height=height, width=width)


def to_normalised(boxes_Kx4: np.ndarray, height: int, width: int) -> np.ndarray:
    """[K, 4] stored (ymin, xmin, ymax, xmax) of pixel boxes (`data.boxes.voc_to_normalised`),
    which `from_normalised` maps back exactly."""
    b = np.asarray(boxes_Kx4, np.float64).reshape(-1, 4)
    return data_boxes.voc_to_normalised(b, height=height, width=width)


def clip(boxes_Kx4: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel boxes clipped to the image (1..width, 1..height)."""
    b = np.array(boxes_Kx4, copy=True)
    b[:, 0::2] = np.clip(b[:, 0::2], 1, width)
    b[:, 1::2] = np.clip(b[:, 1::2], 1, height)
    return b


def warp_pixel_box(
    image_HxWx3: np.ndarray, box_4: np.ndarray, mean_OxOx3: np.ndarray, *, out_size: int, pad: float
) -> np.ndarray:
    """R-CNN's warp of one pixel box with context padding: `jaxcnn.data.boxes.warp_box`
    (``rcnn_im_crop.m``, 'warp' mode) on the box's normalised form. float32 [O, O, 3]."""
    h, w = image_HxWx3.shape[:2]
    normalised = to_normalised(np.asarray(box_4)[None], h, w)[0]
    return data_boxes.warp_box(image_HxWx3, normalised, mean_OxOx3, out_size=out_size, pad=pad)
