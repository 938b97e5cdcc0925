"""Region proposals: R-CNN's precomputed selective-search files, and recall against ground truth.

R-CNN ships its proposals as MATLAB files, one per image set (``voc_2007_trainval.mat``,
``voc_2007_test.mat``), each with two cell arrays: ``images`` (the image ids, e.g. ``'000005'``)
and ``boxes`` (per image a ``K x 4`` double matrix of 1-based ``[y1 x1 y2 x2]`` boxes).
R-CNN's ``roidb_from_voc.m`` reorders the columns with ``(:, [2 1 4 3])``; `load_rcnn_proposals`
does the same, giving ``[x1, y1, x2, y2]`` 1-based inclusive pixels, the convention of
`jaxcnn.detect`.
"""

from __future__ import annotations

import numpy as np

from jaxcnn.detect import boxes as box_ops


def _cells(value) -> list:
    """A MATLAB cell array as loaded by scipy (object array, 1 x N or N x 1) -> list."""
    arr = np.asarray(value, dtype=object)
    return list(arr.reshape(-1))


def _image_id(cell) -> str:
    """A cell holding a MATLAB char array (scipy: array(['000005'])) or a number -> str."""
    arr = np.asarray(cell)
    if arr.dtype.kind in "US":
        return "".join(str(s) for s in arr.reshape(-1)).strip()
    if arr.size == 1 and arr.dtype.kind in "iuf":
        value = arr.reshape(-1)[0]
        return str(int(value)) if float(value).is_integer() else str(value)
    raise ValueError(f"cannot read an image id from {arr!r}")


def load_rcnn_proposals(path) -> tuple[list[str], list[np.ndarray]]:
    """``(image_ids, boxes)`` from one of R-CNN's selective-search ``.mat`` files.

    Returns the ids as strings, in file order, and per image an int64 array ``[K, 4]`` of
    ``[x1, y1, x2, y2]`` 1-based inclusive pixel boxes (the file's ``[y1 x1 y2 x2]`` columns
    reordered; an image without proposals gives ``[0, 4]``). Raises ValueError naming the
    problem for a file that is not in that layout (MATLAB v7.3/HDF5 files included, which
    scipy cannot read: re-save them with ``save -v7``).
    """
    import scipy.io  # a transitive dependency; imported here because only this needs it

    try:
        mat = scipy.io.loadmat(path)
    except NotImplementedError as e:  # scipy raises this for MATLAB v7.3 (HDF5) files
        raise ValueError(f"{path}: MATLAB v7.3 file; re-save it with `save -v7` ({e})") from e
    missing = [k for k in ("images", "boxes") if k not in mat]
    if missing:
        have = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path}: no variable(s) {missing} (R-CNN's layout); has {have}")
    ids = [_image_id(c) for c in _cells(mat["images"])]
    cells = _cells(mat["boxes"])
    if len(ids) != len(cells):
        raise ValueError(f"{path}: {len(ids)} image ids but {len(cells)} box arrays")
    out = []
    for image_id, cell in zip(ids, cells, strict=True):
        b = np.asarray(cell, np.float64)
        if b.size == 0:
            out.append(np.zeros((0, 4), np.int64))
            continue
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"{path}: boxes of image {image_id} have shape {b.shape}, not K x 4")
        if not np.all(b == np.round(b)):
            raise ValueError(f"{path}: boxes of image {image_id} are not whole pixels")
        xyxy = b[:, [1, 0, 3, 2]].astype(np.int64)
        box_ops.check_boxes(xyxy, f"{path}: boxes of image {image_id}")
        out.append(xyxy)
    return ids, out


def recall_at(proposals: list[np.ndarray], gt_boxes: list[np.ndarray], *, iou: float = 0.5):
    """Fraction of ground-truth boxes covered by some proposal of their image with IoU >= `iou`
    (difficult boxes included, as proposal papers report), and the mean boxes per image."""
    if len(proposals) != len(gt_boxes):
        raise ValueError(f"{len(proposals)} proposal lists for {len(gt_boxes)} images")
    covered = total = 0
    for props, gt in zip(proposals, gt_boxes, strict=True):
        total += len(gt)
        if len(gt) and len(props):
            covered += int(np.sum(box_ops.iou_matrix_np(gt, props).max(axis=1) >= iou))
    per_image = float(np.mean([len(p) for p in proposals])) if proposals else 0.0
    return (covered / total if total else float("nan")), per_image
