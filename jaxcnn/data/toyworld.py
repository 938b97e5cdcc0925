"""toyworld: the embedded default dataset, a TFDS builder writing array_record files.

Three parts (TFDS builder configs), each in the feature format of the real dataset it stands
in for, so that they are read by exactly the same code (`jaxcnn.data.sources`):

| part   | stands in for | features (as the TFDS original)               | splits              |
|--------|---------------|-----------------------------------------------|---------------------|
| source | imagenet2012  | image, label (100 classes), file_name         | train, validation   |
| scenes | voc/2007      | image, image/filename, labels,                | train, validation,  |
|        |               | labels_no_difficult, objects{bbox, label,     | test                |
|        |               | is_difficult, is_truncated}                   |                     |
| places | sun397        | image, label (40 classes), file_name          | pool (seeded split) |

Images are 72x72 RGB JPEG (quality 90) by default. Preparation is deterministic: shard k of a
split is drawn from `np.random.default_rng([seed, part, split, k])` in worker processes and
written in shard order, with TFDS shuffling disabled, so the same seed gives byte-identical
array_record files whatever the number of workers. Config names are `<part>[_<size>][_seed<s>]`,
e.g. `source`, `scenes_tiny`, `places_seed3`; the class tables never change (toyworld_world).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os

import numpy as np
import tensorflow_datasets as tfds
from array_record.python import array_record_module
from etils import epath
from tensorflow_datasets.proto import tf_example_pb2

from jaxcnn.data import memory, preprocess
from jaxcnn.data import toyworld_world as world

PARTS = world.PARTS
SHARD_SIZE = world.SHARD_SIZE


@dataclasses.dataclass(frozen=True)
class ToyworldSizes:
    """Number of images per split. scenes_train/val together are VOC's 'trainval'."""

    source_train_per_class: int = 500
    source_val_per_class: int = 50
    scenes_train: int = 2500
    scenes_val: int = 2500
    scenes_test: int = 5000
    places_per_class: int = 150


SIZES = {
    "default": ToyworldSizes(),
    "tiny": ToyworldSizes(
        source_train_per_class=3,
        source_val_per_class=1,
        scenes_train=24,
        scenes_val=16,
        scenes_test=40,
        places_per_class=10,
    ),
}


def config_name(part: str, size: str = "default", seed: int = 0) -> str:
    """Builder-config name of one toyworld part: `<part>[_<size>][_seed<s>]`."""
    if part not in PARTS or size not in SIZES:
        raise ValueError(f"unknown toyworld part/size {part!r}/{size!r}: {PARTS} x {tuple(SIZES)}")
    return part + ("" if size == "default" else f"_{size}") + ("" if seed == 0 else f"_seed{seed}")


@dataclasses.dataclass(kw_only=True)
class ToyworldConfig(tfds.core.BuilderConfig):
    part: str = "source"
    size: str = "default"
    seed: int = 0
    image_size: int = 72
    jpeg_quality: int = 90


def make_config(part: str, size: str = "default", seed: int = 0, **kwargs) -> ToyworldConfig:
    return ToyworldConfig(
        name=config_name(part, size, seed), part=part, size=size, seed=seed, **kwargs
    )


def _split_plan(config: ToyworldConfig) -> dict[str, np.ndarray | int]:
    """Per split: the label of every image (source, places; exactly balanced) or a count."""
    sizes = SIZES[config.size]
    if config.part == "source":
        c = world.NUM_SOURCE_CLASSES
        return {
            "train": np.repeat(np.arange(c), sizes.source_train_per_class),
            "validation": np.repeat(np.arange(c), sizes.source_val_per_class),
        }
    if config.part == "scenes":
        return {
            "train": sizes.scenes_train,
            "validation": sizes.scenes_val,
            "test": sizes.scenes_test,
        }
    return {"pool": np.repeat(np.arange(world.NUM_PLACES_CLASSES), sizes.places_per_class)}


def _split_tasks(config: ToyworldConfig, split_id: int, split: str, plan) -> list[tuple]:
    rng = np.random.default_rng([config.seed, PARTS.index(config.part), split_id])
    if isinstance(plan, np.ndarray):
        labels = plan[rng.permutation(plan.size)]  # class order shuffled once per split
        chunks = [labels[i : i + SHARD_SIZE] for i in range(0, labels.size, SHARD_SIZE)]
    else:
        chunks = [min(SHARD_SIZE, plan - i) for i in range(0, plan, SHARD_SIZE)]
    c = config
    return [
        world.ShardTask(
            c.part, c.seed, split_id, split, k, chunk, c.image_size, c.jpeg_quality, c.name
        )
        for k, chunk in enumerate(chunks)
    ]


class Toyworld(tfds.core.GeneratorBasedBuilder):
    """Procedurally generated stand-ins for ImageNet, PASCAL VOC and SUN397 (module doc)."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.1.0": "scenes boxes in VOC's convention (boxes.voc_to_normalised): min side + 1 pixel",
        "1.0.0": "first release",
    }
    BUILDER_CONFIGS = [make_config(p, s) for s in SIZES for p in PARTS]

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # TFDS's default looks the module up through `importlib_resources`, which TFDS
        # 4.9.10 does not install; the answer is this file either way.
        return epath.Path(__file__)

    def __init__(self, *, num_workers: int | None = None, pool=None, **kwargs):
        self._num_workers = num_workers if num_workers is not None else os.cpu_count()
        self._pool = pool  # a multiprocessing pool shared by several builders (optional)
        self.pixel_sums = {}  # split -> (float64 [S, S, 3] sum of decoded images, count)
        self.decoded = {}  # split -> [uint8 [n, S, S, 3] decoded images, int labels] per shard
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.image_size
        image = tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg")
        if self.builder_config.part == "scenes":
            label = tfds.features.ClassLabel(names=world.SCENE_NAMES)
            features = {
                "image": image,
                "image/filename": tfds.features.Text(),
                "objects": tfds.features.Sequence(
                    {
                        "bbox": tfds.features.BBoxFeature(),
                        "label": label,
                        "is_difficult": np.bool_,
                        "is_truncated": np.bool_,
                    }
                ),
                "labels": tfds.features.Sequence(label),
                "labels_no_difficult": tfds.features.Sequence(label),
            }
        else:
            names = (
                world.SOURCE_NAMES if self.builder_config.part == "source" else world.PLACES_NAMES
            )
            features = {
                "image": image,
                "label": tfds.features.ClassLabel(names=names),
                "file_name": tfds.features.Text(),
            }
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"toyworld/{self.builder_config.name}: {size}x{size} procedural images.",
            features=tfds.features.FeaturesDict(features),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing is downloaded
        plans = _split_plan(self.builder_config)
        return {
            split: self._generate_examples(_split_tasks(self.builder_config, i, split, plan))
            for i, (split, plan) in enumerate(plans.items())
        }

    def _generate_examples(self, tasks):
        if self._pool is not None:
            shards = self._pool.imap(world.generate_shard, tasks)  # imap keeps the order
            yield from self._collect(tasks, shards)
        elif self._num_workers <= 1 or len(tasks) == 1:
            yield from self._collect(tasks, map(world.generate_shard, tasks))
        else:
            with worker_pool(min(self._num_workers, len(tasks))) as pool:
                yield from self._collect(tasks, pool.imap(world.generate_shard, tasks))

    def _collect(self, tasks, shards):
        """Yields the examples; adds each shard's pixel sum to `pixel_sums[split]` and its
        decoded images and labels to `decoded[split]`."""
        for task, (examples, pixel_sum, decoded) in zip(tasks, shards, strict=True):
            total, count = self.pixel_sums.get(task.split, (0.0, 0))
            self.pixel_sums[task.split] = (total + pixel_sum, count + len(examples))
            # scenes images have no single label: -1 stands in their decoded files
            labels = np.full(len(decoded), -1) if task.part == "scenes" else task.chunk
            self.decoded.setdefault(task.split, []).append((decoded, labels))
            yield from examples


def worker_pool(num_workers: int):
    """A 'spawn' process pool for `generate_shard` (not fork: the parent may run JAX
    threads). Spawned workers re-import the main script, so guard it with __main__."""
    return multiprocessing.get_context("spawn").Pool(num_workers)


def prepare(
    part: str,
    *,
    size: str = "default",
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    num_workers: int | None = None,
    pool=None,
) -> Toyworld:
    """Generates one toyworld part (if not already there) and returns its builder.

    The files land in `<data_dir>/toyworld/<config_name>/<VERSION>/` (TFDS's default data_dir
    when None). Dataset statistics are skipped: they would need TensorFlow. `pool` (from
    `worker_pool`) lets several parts share workers; otherwise each split starts its own.
    """
    config = make_config(part, size, seed)
    registered = {c.name for c in Toyworld.BUILDER_CONFIGS}
    builder = Toyworld(
        config=config.name if config.name in registered else config,
        data_dir=data_dir,
        file_format="array_record",
        num_workers=num_workers,
        pool=pool,
    )
    if builder.is_prepared():
        return builder
    skip = tfds.download.ComputeStatsMode.SKIP
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(compute_stats=skip))
    for path in sorted(epath.Path(builder.data_dir).glob("*.array_record-*")):
        _canonicalise_records(path)
    _store_means(builder)
    _store_decoded(builder)
    return builder


def _store_decoded(builder: Toyworld) -> None:
    """Stores each split's decoded images in record order (`jaxcnn.data.memory.decoded_file`;
    scenes' also as trainval = train + validation), which training and the ground-truth box
    crops read instead of decoding every JPEG again (docs/methods.md §3.7)."""
    size = builder.builder_config.image_size
    splits = {split: shards for split, shards in builder.decoded.items()}
    if {"train", "validation"} <= set(splits) and builder.builder_config.part == "scenes":
        splits["trainval"] = splits["train"] + splits["validation"]
    for split, shards in splits.items():
        images = np.concatenate([images for images, _ in shards])
        labels = np.concatenate([labels for _, labels in shards]).astype(np.int32)
        path = memory.decoded_file(builder.data_dir, split, len(images), size)
        memory.save_decoded(path, images, labels)


def _store_means(builder: Toyworld) -> None:
    """Stores the training-set means the generation summed on the way (`preprocess` files,
    read back by `pipeline.get_mean`): every split, and scenes' trainval. Seeded places
    splits are computed on first use."""
    sums = dict(builder.pixel_sums)
    if {"train", "validation"} <= set(sums) and builder.builder_config.part == "scenes":
        (a, n), (b, m) = sums["train"], sums["validation"]
        sums["trainval"] = (a + b, n + m)
    size = builder.builder_config.image_size
    for split, (total, count) in sums.items():
        path = preprocess.mean_path(builder.data_dir, split, size)
        preprocess.save_mean(preprocess.mean_from_sum(total, count), path)


def _canonicalise_records(path: epath.Path) -> None:
    """Rewrites an array_record file with deterministically serialised tf.Examples.

    TFDS serialises the examples' feature maps in an order that depends on a per-process
    hash seed, so two preparations would hold the same records in different bytes. Parsing
    and re-serialising with `deterministic=True` (keys sorted) makes the files identical for
    the same seed. Written to a temporary file and renamed.
    """
    reader = array_record_module.ArrayRecordReader(os.fspath(path))
    records = reader.read_all()
    reader.close()
    tmp = path.with_name(path.name + ".tmp")
    writer = array_record_module.ArrayRecordWriter(os.fspath(tmp), "group_size:1")
    for record in records:
        example = tf_example_pb2.Example.FromString(record)
        writer.write(example.SerializeToString(deterministic=True))
    writer.close()
    tmp.replace(path)
