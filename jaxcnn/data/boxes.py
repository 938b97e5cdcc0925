"""The box convention, R-CNN box warping with context padding and the PASCAL-DET-GT crops.

Box convention (docs/methods.md §Box convention): a stored box is TFDS's voc one, (ymin, xmin,
ymax, xmax) = VOC's 1-based inclusive pixel coordinates divided by the image height / width,
with no shift (`voc_to_normalised`); `normalised_to_voc` inverts it. Every producer
(preparation, toyworld) and consumer (warping, detection scoring) goes through these two.

`warp_box` follows R-CNN's `rcnn_im_crop.m` in 'warp' mode line by line, in 1-based
inclusive pixel boxes as there:

1. Box (x1, y1, x2, y2) = `normalised_to_voc(box)` (the VOC annotation's pixels).
2. With padding p at output size O: scale = O / (O - 2p); half sizes h = (y2 - y1 + 1) / 2,
   w = (x2 - x1 + 1) / 2; centre (x1 + w, y1 + h); the box becomes round(centre -+ half *
   scale) (round half away from zero, MATLAB's round).
3. Clip to the image; the part cut off on the top/left becomes zero padding of
   round(cut * O / unclipped size) pixels; the clipped window is resized (bilinear, no
   antialiasing, half-pixel centres: MATLAB's imresize(..., 'bilinear', 'antialiasing',
   false)) to round(clipped size * O / unclipped size), trimmed to fit in O.
4. The matching window of the O x O mean is subtracted and the result is pasted at the
   padding offset into zeros, so padding equals the mean colour (0 after subtraction).

R-CNN uses p = 16 at O = 227; for other output sizes scale it: `context_pad(O) = 16 O / 227`.
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading

import numpy as np

from jaxcnn.data import memory, records, sources

RCNN_PAD, RCNN_SIZE = 16, 227


def voc_to_normalised(xyxy_Kx4, *, height, width) -> np.ndarray:
    """float32 [..., 4] (ymin, xmin, ymax, xmax): VOC pixel boxes in the stored convention.

    `xyxy_Kx4` holds VOC XML's (xmin, ymin, xmax, ymax), 1-based inclusive pixel coordinates
    (the top-left pixel is (1, 1), a full-image box is (1, 1, W, H)). Each is divided by the
    image size without a shift, as TFDS's voc builder does: ymin / H, xmin / W, ymax / H,
    xmax / W. So a full-image box is stored as (1/H, 1/W, 1, 1) and a one-pixel box has
    ymin == ymax. Non-integer coordinates (a few VOC 2012 files) are kept as they are.
    """
    x1, y1, x2, y2 = np.moveaxis(np.asarray(xyxy_Kx4, np.float64), -1, 0)
    return np.stack([y1 / height, x1 / width, y2 / height, x2 / width], axis=-1).astype(np.float32)


def normalised_to_voc(box_Kx4, *, height, width) -> np.ndarray:
    """int64 [..., 4] (xmin, ymin, xmax, ymax) 1-based inclusive pixels of stored boxes.

    The inverse of `voc_to_normalised`: round(v * size) (half away from zero; stored values
    are within float32 error of an integer, so the original pixels come back exactly), then
    clipped to the pixels that exist, [1, W] and [1, H] (a clipped coordinate of 0 becomes 1).
    """
    ymin, xmin, ymax, xmax = np.moveaxis(np.asarray(box_Kx4, np.float64), -1, 0)
    xs = np.clip(_round(np.stack([xmin, xmax]) * width), 1, width)
    ys = np.clip(_round(np.stack([ymin, ymax]) * height), 1, height)
    return np.stack([xs[0], ys[0], xs[1], ys[1]], axis=-1).astype(np.int64)


def context_pad(out_size: int) -> float:
    """R-CNN's 16 pixels of context at 227, scaled to `out_size` (4.51 at 64)."""
    return RCNN_PAD * out_size / RCNN_SIZE


def _round(x):
    """MATLAB round: half away from zero."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def bilinear_resize(image_HxWxC: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """float32 [out_h, out_w, C]: bilinear, half-pixel centres, edges clamped, no antialias."""
    h, w = image_HxWxC.shape[:2]
    if out_h <= 0 or out_w <= 0 or h == 0 or w == 0:
        raise ValueError(f"cannot resize {image_HxWxC.shape} to {out_h}x{out_w}")

    def axis(n_in, n_out):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    (y0, y1, wy), (x0, x1, wx) = axis(h, out_h), axis(w, out_w)
    img = image_HxWxC.astype(np.float32)
    rows = img[y0] * (1 - wy)[:, None, None] + img[y1] * wy[:, None, None]
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def warp_box(
    image_HxWx3: np.ndarray,
    box_yxyx: np.ndarray,
    mean_OxOx3: np.ndarray,
    *,
    out_size: int,
    pad: float,
) -> np.ndarray:
    """float32 [O, O, 3]: the box (normalised ymin, xmin, ymax, xmax) warped R-CNN style
    with `pad` pixels of context (module doc), minus the mean, zero-padded outside the image."""
    h, w = image_HxWx3.shape[:2]
    if mean_OxOx3.shape != (out_size, out_size, 3):
        raise ValueError(f"mean shape {mean_OxOx3.shape} != ({out_size}, {out_size}, 3)")
    if not 0 <= pad < out_size / 2:
        raise ValueError(f"pad {pad} must be in [0, {out_size / 2})")
    x1, y1, x2, y2 = (float(v) for v in normalised_to_voc(box_yxyx, height=h, width=w))
    x2, y2 = max(x2, x1), max(y2, y1)  # >= 1 pixel
    if pad > 0:
        scale = out_size / (out_size - 2 * pad)
        half_h, half_w = (y2 - y1 + 1) / 2, (x2 - x1 + 1) / 2
        cx, cy = x1 + half_w, y1 + half_h
        x1, y1 = _round(cx - half_w * scale), _round(cy - half_h * scale)
        x2, y2 = _round(cx + half_w * scale), _round(cy + half_h * scale)
    unclipped_h, unclipped_w = y2 - y1 + 1, x2 - x1 + 1
    pad_x, pad_y = max(0.0, 1 - x1), max(0.0, 1 - y1)
    x1, y1, x2, y2 = max(1.0, x1), max(1.0, y1), min(float(w), x2), min(float(h), y2)
    if x2 < x1 or y2 < y1:
        raise ValueError(f"box {box_yxyx} lies outside the {h}x{w} image")
    scale_x, scale_y = out_size / unclipped_w, out_size / unclipped_h
    crop_w, crop_h = int(_round((x2 - x1 + 1) * scale_x)), int(_round((y2 - y1 + 1) * scale_y))
    pad_w, pad_h = int(_round(pad_x * scale_x)), int(_round(pad_y * scale_y))
    crop_h, crop_w = max(1, min(crop_h, out_size - pad_h)), max(1, min(crop_w, out_size - pad_w))
    window = image_HxWx3[int(y1) - 1 : int(y2), int(x1) - 1 : int(x2)]
    warped = bilinear_resize(window, crop_h, crop_w)
    out = np.zeros((out_size, out_size, 3), np.float32)
    at = (slice(pad_h, pad_h + crop_h), slice(pad_w, pad_w + crop_w))
    out[at] = warped - mean_OxOx3[at]
    return out


def center_mean(mean_SxSx3: np.ndarray, out_size: int) -> np.ndarray:
    """The centre out_size window of the resize-size mean (R-CNN's 227 of the 256 mean)."""
    off = (mean_SxSx3.shape[0] - out_size) // 2
    if off < 0:
        raise ValueError(f"mean {mean_SxSx3.shape} is smaller than {out_size}")
    return mean_SxSx3[off : off + out_size, off : off + out_size].astype(np.float32)


class GtBoxSource:
    """PASCAL-DET-GT: every ground-truth box of a detection source as one warped crop.

    Records: {'image': float32 [O, O, 3] (warp_box, mean-subtracted), 'label': int32,
    'difficult': bool, 'image_index': int64, 'object_index': int64}. Building the index reads
    every record's objects once (images are not decoded). When the split's preparation stored
    its images decoded (`memory.decoded_file`; toyworld does), the crops are cut from those and
    no record is read again (about half the time of a crop read from its JPEG record). Every
    box gives a crop (in the box
    convention a box with ymin == ymax is one pixel high, not empty); images without objects
    give none and are counted in `report`; invalid records raise
    `records.BadExampleError` unless `skip_bad`, which counts them in `report` and keeps
    their messages in `rejected`.
    """

    def __init__(self, source, *, out_size, mean_OxOx3, pad=None, skip_bad=False):
        if source.kind != "detection":
            raise ValueError(f"{source!r} has no boxes")
        self.source, self.out_size = source, out_size
        self.pad = context_pad(out_size) if pad is None else pad
        self.mean = mean_OxOx3.astype(np.float32)
        index, self.bbox, self.labels, self.difficult, report, rejected = _box_index(
            source, skip_bad
        )
        self.index, self.report, self.rejected = (
            index,
            collections.Counter(dict(report)),
            list(rejected),
        )
        self._images = _split_images(source)  # decoded images of the whole split, or None
        self._last = None  # (image index, decoded record) of the last box read

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def __repr__(self) -> str:
        return f"GtBoxSource({self.source!r}, {len(self)} boxes)"

    def __getstate__(self) -> dict:  # grain workers read the decoded file themselves
        return {**self.__dict__, "_images": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._images = _split_images(self.source)

    def __getitem__(self, j: int) -> dict:
        i, k = (int(v) for v in self.index[int(j)])
        if self._images is not None:
            image = self._images[int(self.source.indices[i])]
        else:  # boxes of one image are consecutive: read in order, each image is decoded once
            last = self._last
            image = last[1] if last is not None and last[0] == i else self.source[i]["image"]
            self._last = (i, image)
        crop = warp_box(image, self.bbox[int(j)], self.mean, out_size=self.out_size, pad=self.pad)
        return {
            "image": crop,
            "label": self.labels[j],
            "difficult": self.difficult[j],
            "image_index": np.int64(i),
            "object_index": np.int64(k),
        }


_INDEXES: dict[tuple, tuple] = {}  # `_records_key` -> `_read_box_index`'s result
_INDEXES_LOCK = threading.Lock()


def _records_key(source, skip_bad: bool) -> tuple | None:
    """What a `sources.Source` view's box index depends on (its files, their modification time,
    which records, the class count, `skip_bad`); None for other sources (not memoised)."""
    if not isinstance(source, sources.Source):
        return None
    try:
        stamp = os.stat(source.dataset_dir).st_mtime_ns
    except OSError:
        return None
    which = hashlib.sha1(np.ascontiguousarray(source.indices).tobytes()).hexdigest()
    return (
        source.dataset_dir,
        stamp,
        source.name,
        source.split,
        which,
        source.num_classes,
        skip_bad,
    )


def _box_index(source, skip_bad: bool) -> tuple:
    """`_read_box_index` of `source`, read once per process for a `sources.Source` view (every
    fine-tuning and feature set of a study opens the same splits; reading one split's 5,000
    records' objects took 1.2 s)."""
    key = _records_key(source, skip_bad)
    if key is None:
        return _read_box_index(source, skip_bad)
    with _INDEXES_LOCK:
        if key not in _INDEXES:
            _INDEXES[key] = _read_box_index(source, skip_bad)
        return _INDEXES[key]


def _read_box_index(source, skip_bad: bool) -> tuple:
    """(index [B, 2] of (record, object), bbox [B, 4], labels [B], difficult [B], report,
    rejected) of every ground-truth box of `source`, reading each record's objects (images are
    not decoded)."""
    report, rejected = collections.Counter(), []
    index, bbox, labels, difficult = [], [], [], []
    for i in range(len(source)):
        try:
            objects, _ = records.validate_objects(
                source.raw(i)["objects"], where=source.where(i), num_classes=source.num_classes
            )
        except records.BadExampleError as e:
            if not skip_bad:
                raise
            report["rejected images"] += 1
            rejected.append(str(e))
            continue
        if objects["label"].size == 0:
            report["images without objects"] += 1
        # every validated box covers >= 1 pixel (ymin == ymax is a one-pixel-high box)
        for k in range(objects["bbox"].shape[0]):
            index.append((i, k))
            bbox.append(objects["bbox"][k])
            labels.append(objects["label"][k])
            difficult.append(objects["difficult"][k])
    report["boxes"] = len(index)
    arrays = (
        np.array(index, np.int64).reshape(-1, 2),
        np.array(bbox, np.float32).reshape(-1, 4),
        np.array(labels, np.int32),
        np.array(difficult, bool),
    )
    for a in arrays:
        a.flags.writeable = False  # shared by every GtBoxSource of the same records
    return (*arrays, tuple(report.items()), tuple(rejected))


_IMAGES: dict[tuple, np.ndarray | None] = {}  # a split (folder, its mtime, name) -> images
_IMAGES_LOCK = threading.Lock()


def _split_images(source) -> np.ndarray | None:
    """uint8 [R, H, W, 3]: every image of `source`'s split in record order, when its preparation
    stored them decoded (`memory.decoded_file`) and a spot check of records spread over the file
    agrees (`memory.load_decoded`); else None. Looked up once per split and process (the array
    is read-only: every view of the split shares it)."""
    if not isinstance(source, sources.Source) or source.num_records == 0:
        return None
    try:
        stamp = os.stat(source.dataset_dir).st_mtime_ns
    except OSError:
        return None
    key = (source.dataset_dir, stamp, source.name, source.split, source.num_records)
    with _IMAGES_LOCK:
        if key not in _IMAGES:
            _IMAGES[key] = _read_split_images(source.whole())
        return _IMAGES[key]


def _read_split_images(whole) -> np.ndarray | None:
    size = whole[0]["image"].shape[0]
    path = memory.decoded_file(whole.dataset_dir, whole.split, whole.num_records, size)
    if not os.path.exists(path):
        return None
    store = memory.load_decoded(path, lambda i: (whole[i]["image"], -1))
    if store is None:
        return None
    store.data.flags.writeable = False
    return store.data
