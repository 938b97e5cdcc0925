"""Which images a probe sees, and the features of a checkpoint on them.

A `FeatureSet` names a dataset split and a view of it:

- ``image``: whole images, centre-cropped (PASCAL-CLS, SUN-CLS and their toyworld stand-ins);
- ``gt_boxes``: ground-truth boxes warped with R-CNN's context padding (PASCAL-DET-GT).

`extract` runs a checkpoint over a feature set with `jaxcnn.features.extract_features` (chunked
to disk, resumable) and returns the taps with the labels. Labels come back in one convention for
every view: multi-label sets as int8 ``[N, C]`` with VOC's devkit coding (1 present, -1 absent,
0 difficult-only), single-label sets as int32 ``[N]``, GT boxes with their ``difficult`` flags.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import threading

import numpy as np

from jaxcnn import model, storage
from jaxcnn.data import boxes, pipeline, sources
from jaxcnn.features import extraction
from jaxcnn.features import labels as label_codes
from jaxcnn.storage import checkpoints

VIEWS = ("image", "gt_boxes")


@dataclasses.dataclass(frozen=True)
class FeatureSet:
    dataset: str  # a jaxcnn.data.sources name, e.g. "toyworld/scenes", "voc2007"
    split: str
    view: str = "image"
    mean_split: str = "train"  # the split whose mean is subtracted (the target's training set)
    data_dir: str = ""
    split_seed: int = 0
    crop: int = 64
    resize: int = 72
    mean_kind: str = "image"
    max_examples: int = 0  # 0: all; N: the first N images (all boxes of those images)

    def __post_init__(self):
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {self.view!r}")
        if self.crop < 1 or self.resize < self.crop:
            raise ValueError(
                f"need 1 <= --crop <= --resize, got --crop={self.crop}, --resize={self.resize}"
            )

    @property
    def name(self) -> str:
        size = self.max_examples or "all"
        return f"{self.dataset.replace('/', '-')}-{self.split}-{self.view}-{size}-{self.crop}px"


def _f(default, help_text, **meta):
    return dataclasses.field(default=default, metadata={"help": help_text, **meta})


@dataclasses.dataclass(frozen=True)
class SetPair:
    """A training and a test feature set of one dataset, as a probe or selectivity run states
    them (flags are generated from it)."""

    dataset: str = _f(
        "toyworld/scenes", "Dataset (jaxcnn.data.sources name).", check=sources.dataset_spec
    )
    data_dir: str = _f("", "TFDS data_dir ('': default).")
    train_split: str = _f("trainval", "Split the SVMs are trained on.")
    test_split: str = _f("test", "Split they are scored on.")
    view: str = _f("image", "Whole images or GT-box crops.", choices=VIEWS)
    max_train: int = _f(0, "Use the first N training images (0: all).")
    max_test: int = _f(0, "Use the first N test images (0: all).")
    crop: int = _f(64, "Network input size (227 for CaffeNet).")
    resize: int = _f(72, "Resize before cropping (256 for CaffeNet).")
    batch_size: int = _f(128, "Extraction batch size.")

    def __post_init__(self):
        if self.batch_size < 1 or self.max_train < 0 or self.max_test < 0:
            raise ValueError("need --batch_size >= 1, --max_train >= 0 and --max_test >= 0")
        self.sets()  # checks crop and resize

    def sets(self) -> tuple[FeatureSet, FeatureSet]:
        common = dict(
            data_dir=self.data_dir,
            crop=self.crop,
            resize=self.resize,
            view=self.view,
            mean_split=self.train_split,
        )
        return (
            FeatureSet(self.dataset, self.train_split, max_examples=self.max_train, **common),
            FeatureSet(self.dataset, self.test_split, max_examples=self.max_test, **common),
        )


def check_input(run_dir: str, step: int | None, fs: FeatureSet) -> None:
    """ValueError unless the run's network takes `fs.crop`-pixel inputs (checked before any
    extraction: a mismatch would otherwise fail inside XLA)."""
    size = model.module_from_run(run_dir, step).config.input_size
    if size != fs.crop:
        raise ValueError(
            f"--crop {fs.crop} does not match the network of {run_dir}, which takes {size}-pixel "
            f"inputs; use --crop={size} (and --resize >= {size})"
        )


def _open(fs: FeatureSet, split: str):
    return sources.open_split(fs.dataset, split, data_dir=fs.data_dir or None, seed=fs.split_seed)


def open_view(fs: FeatureSet):
    """(random-access source, grain transform or None, class names) of a feature set."""
    source = _open(fs, fs.split)
    if fs.max_examples:
        source = source.subset(range(min(fs.max_examples, len(source))))
    mean = pipeline.get_mean(_open(fs, fs.mean_split), resize=fs.resize).array(fs.mean_kind)
    if fs.view == "gt_boxes":
        if source.kind != "detection":
            raise ValueError(f"{fs.dataset} has no boxes: use view='image'")
        crops = boxes.GtBoxSource(
            source, out_size=fs.crop, mean_OxOx3=boxes.center_mean(mean, fs.crop)
        )
        return crops, None, source.class_names
    return source, pipeline.EvalTransform(mean, crop=fs.crop), source.class_names


# Preprocessed images (or warped boxes) of a feature set stay in memory for the next checkpoint
# extracted on it (the study runs up to 9 networks over the same images): sets up to MEMO_BYTES
# each, the most recent MEMO_TOTAL_BYTES in all. Larger sets are read and preprocessed anew.
MEMO_BYTES = 256 * 2**20
MEMO_TOTAL_BYTES = 1024 * 2**20
_memo: collections.OrderedDict = collections.OrderedDict()
_memo_lock = threading.Lock()  # extractions may run on several threads (the study's analyses)


def _remember(fs: FeatureSet, records: dict) -> None:
    with _memo_lock:
        _memo[fs] = records
        _memo.move_to_end(fs)
        while sum(v["image"].nbytes for v in _memo.values()) > MEMO_TOTAL_BYTES:
            _memo.popitem(last=False)


def _array_batches(records: dict, batch_size: int):
    n = len(records["image"])
    for start in range(0, n, batch_size):
        batch = {k: v[start : start + batch_size] for k, v in records.items()}
        rows = len(batch["image"])
        pad = batch_size - rows
        if pad:  # a full-size last batch (one compiled shape), padding rows masked out
            batch = {k: np.concatenate([v, np.repeat(v[-1:], pad, 0)]) for k, v in batch.items()}
        yield {**batch, "mask": np.arange(batch_size) < rows}


def _batches(fs: FeatureSet, source, transform, batch_size: int):
    """`fs`'s preprocessed batches: from memory if an earlier extraction in this process kept
    them, else one pass of the loader (kept for the next checkpoint when small enough)."""
    with _memo_lock:
        records = _memo.get(fs)
        if records is not None:
            _memo.move_to_end(fs)
    if records is not None:
        yield from _array_batches(records, batch_size)
        return
    keep = {} if len(source) * fs.crop**2 * 3 * 4 <= MEMO_BYTES else None
    for batch in pipeline.eval_loader(source, batch_size=batch_size, transform=transform):
        if keep is not None:
            real = np.asarray(batch["mask"], bool)
            for key in ("image", "label", "difficult"):
                if key in batch:
                    keep.setdefault(key, []).append(np.asarray(batch[key])[real])
        yield batch
    if keep:
        _remember(fs, {k: np.concatenate(v) for k, v in keep.items()})


def _label_pass(batches, sink: dict):
    """Yield `batches` unchanged, collecting the labels (and difficult flags) of real rows."""
    for batch in batches:
        keep = np.asarray(batch["mask"], bool)
        for key in ("label", "difficult"):
            if key in batch:
                sink.setdefault(key, []).append(np.asarray(batch[key])[keep])
        yield batch


def _save_labels(label_file: str, sink: dict) -> None:
    storage.save_npz(label_file, **{k: np.concatenate(v) for k, v in sink.items()})


def extract(
    run_dir: str,
    step: int | None,
    fs: FeatureSet,
    out_dir: str,
    *,
    taps,
    batch_size: int = 128,
    progress=None,
) -> dict:
    """Features of checkpoint (`run_dir`, `step`) on `fs`, written under `out_dir`.

    Returns ``{'taps': {name: array}, 'labels', 'difficult' (gt_boxes), 'class_names',
    'num_examples'}``; tap arrays are memory-mapped from `out_dir`. Re-running after an
    interruption continues from the last finished chunk.
    """
    source, transform, names = open_view(fs)
    check_input(run_dir, step, fs)
    module = model.module_from_run(run_dir, step)
    loader = lambda: pipeline.eval_loader(source, batch_size=batch_size, transform=transform)  # noqa: E731
    os.makedirs(out_dir, exist_ok=True)
    sink: dict = {}
    label_file = os.path.join(out_dir, "labels.npz")
    if not (os.path.exists(label_file) and extraction.is_complete(out_dir, taps, len(source))):
        extraction.extract_features(
            module,
            checkpoints.restore_params(run_dir, step),  # verified
            _label_pass(_batches(fs, source, transform, batch_size), sink),
            taps=tuple(taps),
            out_dir=out_dir,
            num_examples=len(source),
            progress=progress,
        )
    if not os.path.exists(label_file):
        if sum(len(v) for v in sink.get("label", [])) != len(source):
            sink = {}  # the extraction skipped batches: read the labels in one pass
            for _ in _label_pass(loader(), sink):
                pass
        _save_labels(label_file, sink)
    stored = np.load(label_file)
    labels = stored["label"]
    out = {
        "taps": {t: extraction.load_features(out_dir, t) for t in taps},
        "labels": label_codes.to_devkit_labels(labels) if labels.ndim == 2 else labels,
        "class_names": names,
        "num_examples": len(source),
    }
    if "difficult" in stored:
        out["difficult"] = stored["difficult"]
    return out


def class_names(fs) -> tuple[str, ...]:
    """Class names of a `feature_sets.FeatureSet`'s dataset."""
    return sources.open_split(
        fs.dataset, fs.split, data_dir=fs.data_dir or None, seed=fs.split_seed
    ).class_names
