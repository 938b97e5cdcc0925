"""writer: interrupted preparations resume, half-written shards are redone, workers agree."""

import dataclasses
import hashlib
import os

import pytest
import tensorflow_datasets as tfds
from etils import epath

from jaxcnn.data import sources
from jaxcnn.data.archives import PrepareMismatchError, plan, writer
from tests.data.archives import voc_test


def _files(directory):
    return {
        f: open(os.path.join(directory, f), "rb").read()
        for f in sorted(os.listdir(directory))
        if ".array_record-" in f
    }


class _Stop(Exception):
    """Raised by the tests to interrupt a preparation part-way."""


def test_interrupted_preparation_resumes_and_never_reads_a_partial_shard(tmp_path):
    voc_test._voc2007_tars(str(tmp_path))
    job = dataclasses.replace(plan("voc2007", manual_dir=str(tmp_path)), shard_size=1)
    fresh = writer.prepare(job, data_dir=str(tmp_path / "fresh"))
    assert fresh.shards == 5 and fresh.resumed_shards == 0

    data_dir = str(tmp_path / "data")
    seen = []

    def stop_after_two(progress):
        seen.append(progress)
        if len(seen) == 2:
            raise _Stop

    with pytest.raises(_Stop):
        writer.prepare(job, data_dir=data_dir, progress=stop_after_two)
    assert [p.done for p in seen] == [1, 2] and seen[0].total == 5 and seen[0].per_second > 0
    directory = writer.dataset_directory("voc/2007", data_dir)
    assert not writer.is_prepared(directory)
    with pytest.raises(FileNotFoundError, match="is not prepared"):  # named, with its command
        sources.open_split("voc2007", "test", data_dir=data_dir)
    markers = sorted(os.listdir(os.path.join(directory, writer.WORK_DIR)))
    done = [m[: -len(".json")] for m in markers if m.endswith(".json") and m != "plan.json"]
    assert len(done) == 2
    # a crash in the middle of a shard leaves a temporary file; a finished shard whose file
    # was damaged afterwards no longer matches its marker: both are written again
    next_shard = "voc-validation.array_record-00000-of-00001"
    assert next_shard not in done
    with open(os.path.join(directory, next_shard + ".tmp-999"), "wb") as f:
        f.write(b"half a shard")
    with open(os.path.join(directory, done[0]), "r+b") as f:
        f.truncate(10)
    summary = writer.prepare(job, data_dir=data_dir)
    assert summary.resumed_shards == 1 and summary.counts == fresh.counts
    assert _files(directory) == _files(fresh.directory)  # same bytes as an uninterrupted run
    assert not [f for f in os.listdir(directory) if ".tmp" in f or f == writer.WORK_DIR]
    assert len(sources.open_split("voc2007", "trainval", data_dir=data_dir)) == 3


def test_other_inputs_or_options_are_refused_on_resume(tmp_path):
    voc_test._voc2007_tars(str(tmp_path))
    job = dataclasses.replace(plan("voc2007", manual_dir=str(tmp_path)), shard_size=1)
    data_dir = str(tmp_path / "data")

    def stop(progress):
        raise _Stop

    with pytest.raises(_Stop):
        writer.prepare(job, data_dir=data_dir, progress=stop)
    fewer = dict(job.splits, test=job.splits["test"][:1])
    with pytest.raises(PrepareMismatchError, match="interrupted preparation of voc2007"):
        writer.prepare(dataclasses.replace(job, splits=fewer), data_dir=data_dir)
    with pytest.raises(PrepareMismatchError, match="prepared with options {}"):
        writer.prepare(dataclasses.replace(job, options={"x": 1}), data_dir=data_dir)


def test_workers_write_the_same_bytes_in_tfds_order(tmp_path):
    voc_test._voc2007_tars(str(tmp_path))
    job = dataclasses.replace(plan("voc2007", manual_dir=str(tmp_path)), shard_size=1)
    one = writer.prepare(job, data_dir=str(tmp_path / "one"), num_workers=1)
    two = writer.prepare(job, data_dir=str(tmp_path / "two"), num_workers=2)
    assert _files(one.directory) == _files(two.directory)
    ordered = writer.tfds_order("test", job.splits["test"])
    digests = [hashlib.md5(("test" + e.key).encode()).hexdigest() for e in ordered]
    assert digests == sorted(digests)
    with pytest.raises(ValueError, match="lists example '000004' twice"):
        writer.tfds_order("test", job.splits["test"] + job.splits["test"][:1])
    lines = "\n".join(one.lines())
    assert "examples: train 2, validation 1, test 2" in lines and "5 shards" in lines


class _Keyed(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """TFDS's own writer, shuffling by key as for voc / imagenet2012 / sun397."""

    VERSION = tfds.core.Version("1.0.0")

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        return epath.Path(__file__)  # TFDS's default needs importlib_resources (as toyworld)

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict({"k": tfds.features.Text()})
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(40):
            yield f"{i:06d}", {"k": f"{i:06d}"}


def test_tfds_order_is_the_order_tfds_writes(tmp_path):
    builder = _Keyed(data_dir=str(tmp_path), file_format="array_record")
    skip = tfds.download.ComputeStatsMode.SKIP
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(compute_stats=skip))
    source = builder.as_data_source("train")
    written = [source[i]["k"].decode() for i in range(len(source))]
    ours = writer.tfds_order("train", [writer.Example(f"{i:06d}", ()) for i in range(40)])
    assert written == [e.key for e in ours] and written != sorted(written)
