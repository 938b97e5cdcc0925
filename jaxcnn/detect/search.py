"""Selective search proposals in R-CNN's "fast" configuration, with OpenCV's implementation.

R-CNN (``selective_search_boxes.m``, fast mode) resizes an image to width ``im_width`` = 500,
runs the hierarchical grouping of Uijlings et al. for every combination of

- colour space: HSV, Lab;
- Felzenszwalb-Huttenlocher segmentation: k in {50, 100}, sigma 0.8, min size = k pixels;
- merge strategy: colour+texture+size+fill, and texture+size+fill,

sorts all regions by a pseudo-random rank (hierarchy level x uniform random), drops boxes
narrower or shorter than 20 pixels, removes duplicates and maps the boxes back to the image.

OpenCV's ``cv2.ximgproc.segmentation`` implements the same algorithm (its ``process()`` ranks
and de-duplicates likewise); its own ``switchToSelectiveSearchFast`` preset uses k = 150, 300,
so `selective_search` configures the images, segmentations and strategies itself.

Small images (toyworld's 72 px): ``im_width = 0`` runs at the image's own width and scales the
pixel sizes linearly by ``width / 500``: min size ``k * width / 500`` and the minimum box side
``20 * width / 500`` (k itself, a colour-difference scale, is kept). ``max_boxes`` keeps the
first boxes in rank order (0: all). OpenCV draws the rank's random factors from the C
library's ``rand()``, which is reseeded (``srand(0)``) for every image, so an image's boxes and
their order do not depend on what ran before it or in which worker.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools

import numpy as np

RCNN_WIDTH = 500
COLOUR_SPACES = ("hsv", "lab")


def _f(default, flag, help_text, **meta):
    return dataclasses.field(default=default, metadata={"flag": flag, "help": help_text, **meta})


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """R-CNN's fast mode (module docstring); experiments/detect.py's flags ``--ss_*``."""

    ks: tuple[int, ...] = _f(
        (50, 100), "ss_ks", "Felzenszwalb-Huttenlocher k of each segmentation."
    )
    sigma: float = _f(0.8, "ss_sigma", "Their Gaussian smoothing sigma.")
    colour_spaces: tuple[str, ...] = _f(
        ("hsv", "lab"), "ss_colour_spaces", "Colour spaces segmented.", choices=COLOUR_SPACES
    )
    min_box_side: float = _f(20.0, "ss_min_box_side", "Drop narrower or shorter boxes (at 500 px).")
    im_width: int = _f(
        RCNN_WIDTH,
        "ss_width",
        "Selective search working width (R-CNN 500; 0: the image's own, scaled).",
    )
    max_boxes: int = _f(0, "ss_max_boxes", "Keep the first N proposals in rank order (0: all).")

    def __post_init__(self):
        bad = [c for c in self.colour_spaces if c not in COLOUR_SPACES]
        if bad or not self.colour_spaces or not self.ks:
            raise ValueError(
                f"need ks and colour spaces among {COLOUR_SPACES}, got {self.ks}, "
                f"{self.colour_spaces}"
            )
        if self.im_width < 0 or self.max_boxes < 0:
            raise ValueError(
                f"need im_width, max_boxes >= 0, got {self.im_width}, {self.max_boxes}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _cv2():
    try:
        import cv2
    except ImportError as e:  # an optional dependency: only proposals computed here need it
        raise ImportError(
            "selective search needs OpenCV's contrib modules: pip install "
            "opencv-contrib-python-headless"
        ) from e
    if not hasattr(cv2, "ximgproc"):
        raise ImportError("cv2 lacks ximgproc: install opencv-contrib-python-headless")
    return cv2


@functools.cache
def _libc():
    try:
        return ctypes.CDLL(None)  # the process's C library (glibc, macOS libSystem)
    except OSError:
        return None


def _seed_c_rand(seed: int) -> None:
    libc = _libc()
    if libc is not None and hasattr(libc, "srand"):
        libc.srand(ctypes.c_uint(seed))


def _strategies(seg):
    colour, texture, size, fill = (
        seg.createSelectiveSearchSegmentationStrategyColor(),
        seg.createSelectiveSearchSegmentationStrategyTexture(),
        seg.createSelectiveSearchSegmentationStrategySize(),
        seg.createSelectiveSearchSegmentationStrategyFill(),
    )
    texture2, size2, fill2 = (
        seg.createSelectiveSearchSegmentationStrategyTexture(),
        seg.createSelectiveSearchSegmentationStrategySize(),
        seg.createSelectiveSearchSegmentationStrategyFill(),
    )
    return (
        seg.createSelectiveSearchSegmentationStrategyMultiple(colour, texture, size, fill),
        seg.createSelectiveSearchSegmentationStrategyMultiple(texture2, size2, fill2),
    )


def selective_search(image_HxWx3: np.ndarray, cfg: SearchConfig = SearchConfig()) -> np.ndarray:
    """int64 [K, 4] boxes ``[x1, y1, x2, y2]`` (1-based inclusive) of a uint8 RGB image, in
    OpenCV's rank order (module docstring)."""
    cv2 = _cv2()
    seg = cv2.ximgproc.segmentation
    h, w = image_HxWx3.shape[:2]
    work_w = cfg.im_width or w
    scale = w / work_w  # image pixels per working pixel
    image = np.ascontiguousarray(image_HxWx3[:, :, ::-1])  # OpenCV works in BGR
    if work_w != w:
        image = cv2.resize(image, (work_w, max(1, round(h / scale))), interpolation=cv2.INTER_CUBIC)
    size_factor = work_w / RCNN_WIDTH if cfg.im_width == 0 else 1.0
    _seed_c_rand(0)  # the ranks' random factors: same order whatever ran before
    ss = seg.createSelectiveSearchSegmentation()
    ss.setBaseImage(image)
    codes = {"hsv": cv2.COLOR_BGR2HSV, "lab": cv2.COLOR_BGR2Lab}  # COLOUR_SPACES
    for space in cfg.colour_spaces:
        ss.addImage(cv2.cvtColor(image, codes[space]))
    for k in cfg.ks:
        min_size = max(1, round(k * size_factor))  # R-CNN: minSize = k (at width 500)
        ss.addGraphSegmentation(seg.createGraphSegmentation(cfg.sigma, float(k), min_size))
    for strategy in _strategies(seg):
        ss.addStrategy(strategy)
    rects = np.asarray(ss.process(), np.float64).reshape(-1, 4)  # x, y, w, h (0-based)
    side = cfg.min_box_side * size_factor
    rects = rects[(rects[:, 2] >= side) & (rects[:, 3] >= side)]
    boxes = np.stack(
        [rects[:, 0] + 1, rects[:, 1] + 1, rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]], 1
    )
    boxes = np.round((boxes - 1) * scale + 1)  # R-CNN: (boxes - 1) * scale + 1
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 1, w)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 1, h)
    _, first = np.unique(boxes, axis=0, return_index=True)  # duplicates after mapping back
    boxes = boxes[np.sort(first)].astype(np.int64)
    return boxes[: cfg.max_boxes] if cfg.max_boxes else boxes
