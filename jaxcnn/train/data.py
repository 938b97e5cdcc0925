"""Training and validation batches for `jaxcnn.train.loop`, built from `jaxcnn.data`.

A thin adapter from a dataset name to the trainer's data contract (see `jaxcnn.train.loop`):

- classification datasets (``imagenet2012``, ``sun397``, ``toyworld/source``,
  ``toyworld/places``, ...): `jaxcnn.data.pipeline`'s loaders, Caffe-style random crop + mirror
  for training, centre crop for validation, the training split's mean subtracted;
- a class subset of a classification dataset (``classes=``, `ClassSubset`): its records whose
  label is one of `classes`, relabelled 0..K-1 (e.g. one half of an A/B split, `jaxcnn.transfer`);
- detection datasets (``voc2007``, ``toyworld/scenes``) with ``gt_boxes``: one example per
  ground-truth box, warped with R-CNN's context padding (``jaxcnn.data.boxes.GtBoxSource``,
  the PASCAL-DET-GT stand-in), randomly mirrored for training.

Training and validation splits that fit in ``memory_mib`` are read once into memory and batched
there (`jaxcnn.data.memory`, same contracts); larger ones stream through grain. Every process
reads its own shard (``jax.process_index()`` of ``jax.process_count()``); the training iterator's
state is JSON and restores exactly.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence

import grain
import numpy as np
from absl import flags
from etils import epath

from jaxcnn import storage
from jaxcnn.data import boxes, memory, pipeline, preprocess, sources

MEAN_KINDS = ("image", "channel")


def _f(default, help_text, **meta):
    return dataclasses.field(default=default, metadata={"help": help_text, **meta})


@dataclasses.dataclass(frozen=True)
class DataConfig:
    dataset: str = dataclasses.field(
        default="toyworld/source",
        metadata={"help": "Dataset (jaxcnn.data.sources name).", "check": sources.dataset_spec},
    )
    train_split: str = _f("train", "Training split.")
    eval_split: str = _f("validation", "Validation split.")
    data_dir: str = _f("", "TFDS data_dir ('': $TFDS_DATA_DIR or ~/tensorflow_datasets).")
    split_seed: int = _f(0, "Seed of seeded splits (sun397, toyworld/places).")
    gt_boxes: bool = _f(False, "Detection datasets: train on ground-truth box crops.")
    crop: int = _f(64, "Network input size (random crop in training, centre crop in validation).")
    resize: int = _f(72, "Images are resized to this before cropping (Caffe: 256).")
    mean_kind: str = _f("image", "Mean subtracted: per pixel or per channel.", choices=MEAN_KINDS)
    eval_examples: int = _f(
        0, "Validate on the first N images (GT boxes: all boxes of those images; 0: all)."
    )
    worker_count: int = _f(0, "grain worker processes (0: in-process).")
    memory_mib: int = _f(
        2048,
        "Training and validation splits held in memory when one fits in this many MiB, each "
        "record read once (jaxcnn.data.memory); larger splits, or 0, stream through grain.",
    )

    def __post_init__(self):
        if self.mean_kind not in MEAN_KINDS:
            raise ValueError(f"mean_kind must be one of {MEAN_KINDS}, got {self.mean_kind!r}")
        if self.crop < 1 or self.resize < self.crop:
            raise ValueError(
                f"need 1 <= --crop <= --resize, got --crop={self.crop}, --resize={self.resize}"
            )


class _Mirror(grain.transforms.RandomMap):
    """Random horizontal flip of an already cropped, mean-subtracted example."""

    def random_map(self, record: dict, rng: np.random.Generator) -> dict:
        image = record["image"][:, ::-1] if rng.random() < 0.5 else record["image"]
        return {
            "image": np.ascontiguousarray(image, np.float32),
            "label": np.int32(record["label"]),
        }


class ClassSubset:
    """The records of a classification source whose label is in `classes`, relabelled to the
    label's position in `classes` (0..K-1). Exposes what the pipelines use of a `Source`."""

    def __init__(self, source, classes: Sequence[int]):
        classes = tuple(int(c) for c in classes)
        if source.kind != "classification":
            raise ValueError(f"a class subset needs a classification dataset, not {source!r}")
        if not classes or len(set(classes)) != len(classes):
            raise ValueError(f"classes must be non-empty and distinct, got {classes}")
        if min(classes) < 0 or max(classes) >= source.num_classes:
            raise ValueError(f"classes {classes} outside [0, {source.num_classes}) of {source!r}")
        self.lookup = np.full(source.num_classes, -1, np.int64)  # old label -> new, -1: dropped
        self.lookup[list(classes)] = np.arange(len(classes))
        labels_N = split_labels(source)
        self.source = source.subset(np.nonzero(self.lookup[labels_N] >= 0)[0])
        self.classes, self.num_classes, self.kind = classes, len(classes), source.kind
        self.split, self.dataset_dir = source.split, source.dataset_dir

    def __len__(self) -> int:
        return len(self.source)

    def __repr__(self) -> str:
        return f"ClassSubset({self.source!r}, {self.num_classes} classes)"

    def __getitem__(self, index: int) -> dict:
        record = dict(self.source[index])
        record["label"] = int(self.lookup[record["label"]])
        return record

    def subset(self, keep: Sequence[int]) -> ClassSubset:
        out = ClassSubset.__new__(ClassSubset)
        out.__dict__.update(self.__dict__)
        out.source = self.source.subset(keep)
        return out


def split_labels(source) -> np.ndarray:
    """int64 [N] labels of a classification source, read once (images not decoded) and cached in
    its dataset directory as ``jaxcnn-labels-<split>-<N>.npy``."""
    name = f"jaxcnn-labels-{source.split}-{len(source)}.npy"
    cache = epath.Path(source.dataset_dir) / name
    if cache.exists():
        with cache.open("rb") as f:
            return np.load(f)
    labels = sources.pool_labels(source, cache_dir=None)
    storage.save_npy(os.fspath(cache), labels)
    return labels


def _open(cfg: DataConfig, split: str):
    return sources.open_split(
        cfg.dataset, split, data_dir=cfg.data_dir or None, seed=cfg.split_seed
    )


def _mean(cfg: DataConfig) -> np.ndarray:
    mean = pipeline.get_mean(_open(cfg, cfg.train_split), resize=cfg.resize)
    return mean.array(cfg.mean_kind)


def _source(
    cfg: DataConfig,
    split: str,
    mean_SxSx3: np.ndarray,
    *,
    first: int = 0,
    classes: Sequence[int] = (),
):
    """The split as training examples; `classes`: of those classes only, relabelled 0..K-1
    (`ClassSubset`); `first` > 0 keeps its first images only."""
    source = _open(cfg, split)
    if classes:
        source = ClassSubset(source, classes)
    if first:
        source = source.subset(range(min(first, len(source))))
    if classes:
        return source
    if source.kind == "detection":
        if not cfg.gt_boxes:
            raise ValueError(
                f"{cfg.dataset} is a detection dataset: set gt_boxes to train on "
                "its ground-truth boxes (image-level multi-labels are not a "
                "softmax task)"
            )
        return boxes.GtBoxSource(
            source, out_size=cfg.crop, mean_OxOx3=boxes.center_mean(mean_SxSx3, cfg.crop)
        )
    if cfg.gt_boxes:
        raise ValueError(f"{cfg.dataset} has no boxes (gt_boxes is for detection datasets)")
    return source


def num_classes(cfg: DataConfig, *, classes: Sequence[int] = ()) -> int:
    return len(classes) if classes else _open(cfg, cfg.train_split).num_classes


def train_iterator(
    cfg: DataConfig, *, batch_size: int, seed: int, classes: Sequence[int] = ()
) -> pipeline.StatefulIterator:
    """Infinite shuffled training batches of this process (`batch_size` per process); with
    `classes`, of those classes only, relabelled 0..K-1 (`ClassSubset`; the mean stays the
    whole training split's)."""
    mean = _mean(cfg)
    source = _source(cfg, cfg.train_split, mean, classes=classes)
    in_memory = _memory_batches(cfg, source, mean, batch_size=batch_size, seed=seed)
    if in_memory is not None:
        return in_memory
    if not isinstance(source, boxes.GtBoxSource):
        return pipeline.StatefulIterator(
            pipeline.train_loader(
                source,
                batch_size=batch_size,
                mean_SxSx3=mean,
                crop=cfg.crop,
                seed=seed,
                worker_count=cfg.worker_count,
            )
        )
    if len(source) < batch_size:
        raise ValueError(f"{source!r} has fewer boxes than one batch ({batch_size})")
    import jax  # the process index and count only; batches stay on the host

    if not flags.FLAGS.is_parsed():  # grain reads absl flags (their defaults outside app.run)
        flags.FLAGS.mark_as_parsed()
    sampler = grain.samplers.IndexSampler(
        num_records=len(source),
        shuffle=True,
        seed=seed,
        num_epochs=None,
        shard_options=grain.sharding.ShardOptions(
            jax.process_index(), jax.process_count(), drop_remainder=True
        ),
    )
    loader = grain.DataLoader(
        data_source=source,
        sampler=sampler,
        worker_count=cfg.worker_count,
        operations=[_Mirror(), grain.transforms.Batch(batch_size, drop_remainder=True)],
    )
    return pipeline.StatefulIterator(loader)


def _memory_records(cfg: DataConfig, source):
    """The process's `memory.RecordStore` of `source` when its records fit in
    ``cfg.memory_mib`` (GT boxes warped as float32, images decoded at the resize size as
    uint8), else None."""
    gt = isinstance(source, boxes.GtBoxSource)
    shape = (cfg.crop, cfg.crop, 3) if gt else (cfg.resize, cfg.resize, 3)
    dtype = np.float32 if gt else np.uint8
    budget = cfg.memory_mib * 2**20
    if len(source) * int(np.prod(shape)) * np.dtype(dtype).itemsize > budget:
        return None
    if gt:

        def fetch(i):
            return source[i]["image"], source.labels[i]

        key = memory.source_key(source, "gt", source.out_size, source.pad, source.mean.tobytes())
    else:

        def fetch(i):
            record = source[i]
            return preprocess.resize_image(record["image"], cfg.resize), record["label"]

        key = memory.source_key(source, "image", cfg.resize)

    def make():
        whole = isinstance(source, sources.Source) and np.array_equal(
            source.indices, np.arange(len(source))
        )
        if whole:  # a whole split: its preparation may have stored it decoded
            path = memory.decoded_file(source.dataset_dir, source.split, len(source), cfg.resize)
            if os.path.exists(path):
                loaded = memory.load_decoded(path, fetch)
                if loaded is not None:
                    return loaded
        return memory.RecordStore(fetch, len(source), shape, dtype, name=repr(source))

    return memory.store(key, make, budget_bytes=budget)


def _memory_batches(cfg: DataConfig, source, mean, *, batch_size: int, seed: int):
    """`memory.MemoryBatches` over `source` when it fits in memory (`_memory_records`)."""
    import jax  # the process index and count only; batches stay on the host

    records = _memory_records(cfg, source)
    if records is None:
        return None
    gt = isinstance(source, boxes.GtBoxSource)
    return memory.MemoryBatches(
        records,
        batch_size=batch_size,
        seed=seed,
        mean_SxSx3=None if gt else mean,
        crop=None if gt else cfg.crop,
        shard_index=jax.process_index(),
        shard_count=jax.process_count(),
    )


def eval_batches(
    cfg: DataConfig, *, batch_size: int, classes: Sequence[int] = ()
) -> Callable[[], Iterable[dict]]:
    """A function returning one ordered, padded pass over this process's share of the
    evaluation split (batches with ``mask``); with `classes`, of those classes only."""
    mean = _mean(cfg)
    source = _source(cfg, cfg.eval_split, mean, first=cfg.eval_examples, classes=classes)
    transform = (
        None
        if isinstance(source, boxes.GtBoxSource)
        else pipeline.EvalTransform(mean, crop=cfg.crop)
    )

    def batches():
        import jax  # the process index and count only; batches stay on the host

        records = _memory_records(cfg, source)
        if records is not None:
            return memory.eval_batches(
                records,
                batch_size=batch_size,
                mean_SxSx3=None if transform is None else mean,
                crop=None if transform is None else cfg.crop,
                shard_index=jax.process_index(),
                shard_count=jax.process_count(),
            )
        return iter(
            pipeline.eval_loader(
                source, batch_size=batch_size, transform=transform, worker_count=cfg.worker_count
            )
        )

    return batches
