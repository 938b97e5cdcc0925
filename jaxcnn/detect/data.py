"""The detection data of one split: ground truth, proposals and roidb entries, cached.

Proposals come from R-CNN's precomputed files (`jaxcnn.detect.proposals.load_rcnn_proposals`,
matched to the split's images by id) or are computed here with selective search
(`jaxcnn.detect.proposal_cache`). Training entries hold ground truth and proposals (R-CNN's
roidb); test entries the proposals only (detections are proposals).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np

from jaxcnn.data import boxes as data_boxes
from jaxcnn.data import pipeline, sources
from jaxcnn.detect import proposal_cache, proposals, roidb
from jaxcnn.detect import search as ss
from jaxcnn.detect import windows as windows_lib

DATASETS = (*(n for n, d in sources.DATASETS.items() if d.kind == "detection"), "toyworld/scenes")


def check_dataset(name: str) -> None:
    """ValueError unless `name` is a detection dataset of `jaxcnn.data.sources`."""
    try:
        kind = sources.dataset_spec(name).kind
    except ValueError:
        kind = None
    if kind != "detection":
        raise ValueError(
            f"{name!r} is not a detection dataset; choose from {list(DATASETS)} "
            "(or toyworld/scenes_<size>)"
        )


def _f(default, help_text, **meta):
    return dataclasses.field(default=default, metadata={"help": help_text, **meta})


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """The detection data and its proposals (flags are generated from it)."""

    dataset: str = _f(
        "toyworld/scenes", "Detection dataset (jaxcnn.data.sources).", check=check_dataset
    )
    data_dir: str = _f("", "TFDS data_dir ('': default).")
    train_split: str = _f("trainval", "Training split.", choices=sources.SPLITS)
    test_split: str = _f("test", "Test split.", choices=sources.SPLITS)
    train_images: int = _f(0, "First N training images (0: all).")
    test_images: int = _f(0, "First N test images (0: all).")
    resize: int = _f(72, "Size of the stored mean (256 for CaffeNet); the warp uses its centre.")
    crop: int = _f(64, "Network input / warp size (227 for CaffeNet).")
    rcnn_proposals: str = _f(
        "",
        "R-CNN .mat proposals, '{split}' in the name, e.g. .../voc_2007_{split}.mat ('': "
        "selective search here).",
    )
    search: ss.SearchConfig = ss.SearchConfig(im_width=0, max_boxes=150)
    proposal_workers: int = _f(2, "Selective-search processes.")

    def __post_init__(self):
        check_dataset(self.dataset)
        sources.check_split(self.dataset, self.train_split, "train_split")
        sources.check_split(self.dataset, self.test_split, "test_split")
        if min(self.train_images, self.test_images) < 0 or self.proposal_workers < 1:
            raise ValueError("need --train_images, --test_images >= 0 and --proposal_workers >= 1")
        if self.crop < 1 or self.resize < self.crop:
            raise ValueError(
                f"need 1 <= --crop <= --resize, got --crop={self.crop}, --resize={self.resize}"
            )

    def key(self, split: str) -> str:
        """A short digest of everything that decides one split's boxes."""
        d = dataclasses.asdict(self)
        d.pop("proposal_workers")
        d["split"] = split
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


@dataclasses.dataclass
class Split:
    """One split: the source, per-image ground truth, proposals and roidb entries."""

    name: str
    source: object
    ground_truth: list
    proposals: list
    entries: list
    key: str

    @property
    def counts(self) -> list[int]:
        return [len(e.boxes) for e in self.entries]


def _source(spec: DataSpec, split: str, count: int):
    source = sources.open_split(spec.dataset, split, data_dir=spec.data_dir or None)
    return source.subset(range(min(count, len(source)))) if count else source


def _rcnn_boxes(spec: DataSpec, split: str, gts) -> list[np.ndarray]:
    ids, boxes = proposals.load_rcnn_proposals(spec.rcnn_proposals.format(split=split))
    by_id = dict(zip(ids, boxes, strict=True))
    missing = [g.image_id for g in gts if os.path.splitext(g.image_id)[0] not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} images have no R-CNN proposals, e.g. {missing[:3]}")
    return [by_id[os.path.splitext(g.image_id)[0]] for g in gts]


def load_split(spec: DataSpec, split: str, count: int, cache_dir: str, *, train: bool, log=print):
    """The `Split` (proposals computed once and cached under `cache_dir`)."""
    source = _source(spec, split, count)
    gts = [roidb.read_ground_truth(source, i) for i in range(len(source))]
    key = spec.key(split) + f"-{len(source)}"
    if spec.rcnn_proposals:
        props = _rcnn_boxes(spec, split, gts)
    else:
        out = os.path.join(cache_dir, f"proposals-{split}-{key}")
        props = proposal_cache.compute_proposals(
            source, out, spec.search, workers=spec.proposal_workers, progress=log
        )
    num_classes = source.num_classes
    entries = []
    for gt, p in zip(gts, props, strict=True):
        if not train:  # test windows are the proposals only
            gt = dataclasses.replace(gt, boxes=np.zeros((0, 4), np.int64), labels=gt.labels[:0])
        entries.append(roidb.make_entry(gt, p, num_classes))
    return Split(split, source, gts, props, entries, key)


def warp_spec(spec: DataSpec) -> windows_lib.WarpSpec:
    """R-CNN's warp for this geometry: 16 px of context at 227, scaled; the training mean."""
    train_source = sources.open_split(
        spec.dataset, spec.train_split, data_dir=spec.data_dir or None
    )
    mean = pipeline.get_mean(train_source, resize=spec.resize).array("image")
    return windows_lib.WarpSpec(
        spec.crop, data_boxes.context_pad(spec.crop), data_boxes.center_mean(mean, spec.crop)
    )
