"""Writing a planned dataset as TFDS array_record files, in worker processes, resumably.

A `Job` lists each split's examples (a key, the input files to read, dataset-specific info)
and the module-level `encode` function that turns one example's bytes into TFDS's example
dict. `prepare` writes it where TFDS's registered builder for `tfds_name` reads it
(`<data_dir>/<name>/<config>/<version>/`), serialised by TFDS's own feature encoder and
tf.Example serializer (no TensorFlow), so `tfds.builder(...)` and `sources.open_split` open it
unchanged:

- Order: each split is sorted by md5(split name + key), the order TFDS's writer gives
  (its shuffler sorts by that hash), so index i means the same example as in a dataset TFDS
  prepared from the same files (and sun397's seeded splits agree).
- Shards of `shard_size` examples, one task each, run by a 'spawn' pool of `num_workers`
  processes (in-process for 1). A shard is written to a temporary name, renamed, and then
  marked done by a small JSON file; only marked shards count on a resume, so an interrupted
  run never leaves a half-written shard that is read as complete. `dataset_info.json` is
  written last: until then the readers say the dataset is not prepared.
- `plan.json` (the options and a fingerprint of every split's keys) is compared on resume, and
  `jaxcnn-prepare.json` (options, inputs, summary) on every later run: a different option
  (e.g. ImageNet's --resize) is refused with `PrepareMismatchError` instead of being mixed in.
- The bytes do not depend on `num_workers`.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from typing import NamedTuple

import tensorflow_datasets as tfds
from array_record.python import array_record_module
from tensorflow_datasets.core import example_serializer, naming

from jaxcnn.data import sources
from jaxcnn.data.archives import images, inputs
from jaxcnn.data.archives import summary as summary_lib
from jaxcnn.data.archives.summary import Progress, Summary

WORK_DIR = "jaxcnn-prepare"


class PrepareMismatchError(ValueError):
    """The directory holds (part of) this dataset prepared with other options or inputs."""


class SkipExample(ValueError):
    """Raised by `encode`: this example cannot be stored; `reason` is counted, it is named."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail or reason


class Example(NamedTuple):
    """One example to write (a small tuple: ImageNet plans 1.28 million of them)."""

    key: str  # TFDS's example key: the order, and the example's name in messages
    inputs: tuple[inputs.Location, ...]  # read and passed to `encode` as bytes
    info: tuple = ()  # dataset-specific (label, ...)


@dataclasses.dataclass(frozen=True)
class Job:
    """One dataset to write. `encode(example, data, options) -> (TFDS example, notes)`;
    `encode=None` means each example's single input is an already serialised record."""

    dataset: str  # jaxcnn's name, e.g. 'voc2007'
    tfds_name: str  # e.g. 'voc/2007'
    splits: dict[str, list[Example]]
    encode: Callable | None
    options: dict  # JSON-able; recorded and compared
    inputs: tuple[str, ...] = ()  # the archives / directories read, for the record
    notes: dict = dataclasses.field(default_factory=dict)  # planning notes -> counts
    skipped: dict = dataclasses.field(default_factory=dict)  # reason -> names, before writing
    shard_size: int = 1024
    tfds_options: dict | None = None  # the options that give what TFDS's builder gives

    def __post_init__(self):
        if self.tfds_options is None:
            object.__setattr__(self, "tfds_options", self.options)


def tfds_order(split: str, examples: list[Example]) -> list[Example]:
    """The examples in the order TFDS's writer stores them: by md5(split + key)."""
    salt = hashlib.md5(split.encode("utf-8"))

    def digest(example):
        h = salt.copy()
        h.update(example.key.encode("utf-8"))
        return h.digest()

    ordered = sorted(examples, key=digest)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.key == b.key:
            raise ValueError(f"split {split} lists example {a.key!r} twice")
    return ordered


def builder_for(tfds_name: str, data_dir) -> tfds.core.DatasetBuilder:
    return tfds.builder(tfds_name, data_dir=data_dir, file_format="array_record")


@functools.lru_cache(maxsize=4)
def _features(tfds_name: str, data_dir: str):
    features = builder_for(tfds_name, data_dir).info.features
    return features, example_serializer.ExampleSerializer(features.get_serialized_info())


@dataclasses.dataclass(frozen=True)
class _Shard:
    job_name: str
    tfds_name: str
    data_dir: str
    directory: str
    split: str
    index: int
    num_shards: int
    examples: list
    encode: Callable | None
    options: dict

    @property
    def filename(self) -> str:
        name = self.tfds_name.split("/")[0]
        return f"{name}-{self.split}.array_record-{self.index:05d}-of-{self.num_shards:05d}"

    @property
    def marker(self) -> str:
        return os.path.join(self.directory, WORK_DIR, f"{self.filename}.json")


def _encode_one(shard: _Shard, example: Example, reader: inputs.Reader) -> tuple[bytes, list]:
    data = [reader.read(loc) for loc in example.inputs]
    if shard.encode is None:
        return data[0], []
    features, serializer = _features(shard.tfds_name, shard.data_dir)
    try:
        tfds_example, notes = shard.encode(example, data, shard.options)
    except images.UndecodableImage as e:
        raise SkipExample("undecodable image", f"{example.key} ({e})") from e
    encoded = features.encode_example(tfds_example)
    return serializer.get_tf_example(encoded).SerializeToString(deterministic=True), notes


def _write_shard(shard: _Shard) -> dict:
    """Writes one shard (temporary name, rename, then the done marker); returns the marker."""
    notes, skipped = collections.Counter(), collections.defaultdict(list)
    path = os.path.join(shard.directory, shard.filename)
    tmp = f"{path}.tmp-{os.getpid()}"
    writer = array_record_module.ArrayRecordWriter(tmp, "group_size:1")
    count = 0
    try:
        with inputs.Reader() as reader:
            for example in shard.examples:
                try:
                    record, example_notes = _encode_one(shard, example, reader)
                except SkipExample as e:
                    skipped[e.reason].append(e.detail)
                    continue
                writer.write(record)
                notes.update(example_notes)
                count += 1
    finally:
        writer.close()
    os.replace(tmp, path)
    marker = {
        "file": shard.filename,
        "count": count,
        "processed": len(shard.examples),
        "size": os.path.getsize(path),
        "notes": dict(notes),
        "skipped": dict(skipped),
    }
    summary_lib.write_json(shard.marker, marker)
    return marker


def _done(shard: _Shard) -> dict | None:
    """The marker of a shard finished by an earlier run (file present, size as recorded)."""
    if not os.path.exists(shard.marker):
        return None
    marker = summary_lib.read_json(shard.marker)
    path = os.path.join(shard.directory, shard.filename)
    if not os.path.exists(path) or os.path.getsize(path) != marker["size"]:
        return None
    return marker


def _plan(job: Job, directory: str, data_dir: str) -> list[_Shard]:
    shards = []
    for split, examples in job.splits.items():
        ordered = tfds_order(split, examples)
        n = max(1, -(-len(ordered) // job.shard_size))
        for k in range(n):
            chunk = ordered[k * job.shard_size : (k + 1) * job.shard_size]
            shards.append(
                _Shard(job.dataset, job.tfds_name, data_dir, directory, split, k, n, chunk,
                       job.encode, job.options)
            )  # fmt: skip
    return shards


def _fingerprint(job: Job) -> dict:
    out = {"dataset": job.dataset, "tfds_name": job.tfds_name, "options": job.options}
    for split, examples in job.splits.items():
        keys = hashlib.sha256("\n".join(sorted(e.key for e in examples)).encode()).hexdigest()
        out[split] = {"examples": len(examples), "keys_sha256": keys}
    out["shard_size"] = job.shard_size
    return out


def check_options(directory, dataset: str, options: dict, tfds_options: dict) -> None:
    """Raises PrepareMismatchError if `directory` was prepared (or started) with other
    options. A directory TFDS prepared has no record: it matches only `tfds_options`."""
    directory = os.fspath(directory)
    for path in (
        os.path.join(directory, summary_lib.METADATA),
        os.path.join(directory, WORK_DIR, "plan.json"),
    ):
        if os.path.exists(path):
            recorded = summary_lib.read_json(path)["options"]
            break
    else:
        if not is_prepared(directory):
            return
        recorded = tfds_options  # prepared by TFDS itself
    if recorded != options:
        raise PrepareMismatchError(
            f"{dataset} in {directory} was prepared with options {recorded}, not "
            f"{options}; use another --data_dir, or delete that directory to redo it"
        )


def is_prepared(directory) -> bool:
    return os.path.exists(os.path.join(os.fspath(directory), "dataset_info.json"))


def dataset_directory(tfds_name: str, data_dir) -> str:
    """Where TFDS's builder for `tfds_name` reads its files under `data_dir`."""
    return builder_for(tfds_name, os.fspath(sources.data_dir_or_default(data_dir))).data_dir


def _check_plan(job: Job, directory: str) -> None:
    os.makedirs(os.path.join(directory, WORK_DIR), exist_ok=True)
    path = os.path.join(directory, WORK_DIR, "plan.json")
    plan = _fingerprint(job)
    if os.path.exists(path) and summary_lib.read_json(path) != plan:
        raise PrepareMismatchError(
            f"{directory} holds an interrupted preparation of {job.dataset} from other inputs "
            f"or options ({path}); delete {directory} to start again"
        )
    summary_lib.write_json(path, plan)


def _run(shards, num_workers, progress) -> None:
    total = sum(len(s.examples) for s in shards)
    todo = [s for s in shards if _done(s) is None]
    done = total - sum(len(s.examples) for s in todo)
    start, processed = time.time(), 0

    def report(marker):
        nonlocal done, processed
        done += marker["processed"]
        processed += marker["processed"]
        rate = processed / max(time.time() - start, 1e-9)
        if progress is not None:
            progress(Progress(done, total, rate, (total - done) / rate if rate > 0 else 0.0))

    if num_workers <= 1 or len(todo) <= 1:
        for shard in todo:
            report(_write_shard(shard))
        return
    with multiprocessing.get_context("spawn").Pool(min(num_workers, len(todo))) as pool:
        for marker in pool.imap_unordered(_write_shard, todo):
            report(marker)


def _finish(job: Job, builder, shards, seconds: float, resumed: int) -> Summary:
    """Split infos from the shard markers; info files, then the record, then
    dataset_info.json last (it marks the dataset as prepared)."""
    directory = builder.data_dir
    lengths, sizes = collections.defaultdict(list), collections.Counter()
    notes, skipped = collections.Counter(job.notes), collections.defaultdict(list)
    for reason, names in job.skipped.items():
        skipped[reason] += names
    for shard in shards:
        marker = _done(shard)
        lengths[shard.split].append(marker["count"])
        sizes[shard.split] += marker["size"]
        notes.update(marker["notes"])
        for reason, names in marker["skipped"].items():
            skipped[reason] += names
    splits = [
        tfds.core.SplitInfo(
            name=split, shard_lengths=lengths[split], num_bytes=sizes[split],
            filename_template=naming.ShardedFileTemplate(
                data_dir=directory, dataset_name=builder.name, split=split,
                filetype_suffix="array_record",
            ),
        )
        for split in job.splits
    ]  # fmt: skip
    builder.info.set_splits(tfds.core.SplitDict(splits))
    summary = Summary(
        job.dataset, directory, {s: sum(lengths[s]) for s in job.splits},
        {r: {"count": len(v), "examples": v[:summary_lib.MAX_NAMED]} for r, v in skipped.items()},
        dict(notes), sum(sizes.values()), seconds, len(shards), resumed, job.options,
    )  # fmt: skip
    staging = os.path.join(directory, WORK_DIR, "info")
    os.makedirs(staging, exist_ok=True)
    builder.info.write_to_directory(staging)
    for name in os.listdir(staging):
        if name != "dataset_info.json":
            os.replace(os.path.join(staging, name), os.path.join(directory, name))
    record = {"options": job.options, "inputs": list(job.inputs)}
    summary_lib.write_json(
        os.path.join(directory, summary_lib.METADATA),
        {**record, "summary": dataclasses.asdict(summary)},
    )
    os.replace(
        os.path.join(staging, "dataset_info.json"), os.path.join(directory, "dataset_info.json")
    )
    shutil.rmtree(os.path.join(directory, WORK_DIR))
    for name in os.listdir(directory):
        if ".array_record-" in name and ".tmp-" in name:  # left by an interrupted run
            os.remove(os.path.join(directory, name))
    return summary


def prepare(job: Job, *, data_dir=None, num_workers: int = 1, progress=None) -> Summary:
    """Writes `job` under `data_dir` (module doc); returns the summary. Resumes an
    interrupted run; a finished one is only checked (same options) and summarised.
    `progress(Progress)` is called after each shard."""
    start = time.time()
    root = os.fspath(sources.data_dir_or_default(data_dir))
    builder = builder_for(job.tfds_name, root)
    directory = builder.data_dir
    check_options(directory, job.dataset, job.options, job.tfds_options)
    if is_prepared(directory):
        return summary_lib.prepared_summary(directory, job.dataset, job.options)
    _check_plan(job, directory)
    shards = _plan(job, directory, root)
    resumed = sum(_done(s) is not None for s in shards)
    _run(shards, num_workers, progress)
    return _finish(job, builder, shards, time.time() - start, resumed)
