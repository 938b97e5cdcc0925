"""pipeline: deterministic, resumable training batches; ordered, padded evaluation passes."""

import json

import numpy as np
import pytest

from jaxcnn.data import pipeline, preprocess, sources


@pytest.fixture(scope="module")
def train_source(tiny_dir):
    return sources.open_split("toyworld/source_tiny", "train", data_dir=tiny_dir)


@pytest.fixture(scope="module")
def mean(train_source):
    return pipeline.get_mean(train_source, resize=72).array()


def _loader(source, mean, seed=0, **kwargs):
    return pipeline.train_loader(
        source, batch_size=8, mean_SxSx3=mean, crop=64, seed=seed, shard_index=0, shard_count=1,
        **kwargs,
    )  # fmt: skip


def _take(iterator, n):
    return [next(iterator) for _ in range(n)]


def test_train_batches_shapes_and_determinism(train_source, mean):
    first = _take(iter(_loader(train_source, mean)), 2)
    again = _take(iter(_loader(train_source, mean)), 2)
    other = _take(iter(_loader(train_source, mean, seed=1)), 2)
    batch = first[0]
    assert batch["image"].shape == (8, 64, 64, 3) and batch["image"].dtype == np.float32
    assert batch["label"].shape == (8,) and batch["label"].dtype == np.int32
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    assert not np.array_equal(first[0]["label"], other[0]["label"])
    # each image is a 64-crop of a stored image minus the same window of the mean
    assert np.abs(batch["image"]).max() <= 255


def test_state_save_restore_gives_the_same_next_batch(train_source, mean):
    loader = _loader(train_source, mean)
    iterator = pipeline.StatefulIterator(loader)
    _take(iterator, 3)
    state = json.loads(json.dumps(iterator.get_state()))  # JSON round trip
    expected = next(iterator)
    restored = pipeline.StatefulIterator(_loader(train_source, mean))
    restored.set_state(state)
    got = next(restored)
    np.testing.assert_array_equal(got["image"], expected["image"])
    np.testing.assert_array_equal(got["label"], expected["label"])


def test_one_epoch_visits_each_record_at_most_once(train_source, mean):
    loader = _loader(train_source, mean, num_epochs=1)
    labels = np.concatenate([b["label"] for b in loader])
    assert labels.size == (len(train_source) // 8) * 8  # the partial batch is dropped
    counts = np.bincount(labels, minlength=100)
    assert counts.max() <= 3  # 3 images per class in the tiny split


def test_eval_pass_is_ordered_padded_and_complete(train_source, mean):
    transform = pipeline.EvalTransform(mean, crop=64)
    batches = list(
        pipeline.eval_loader(
            train_source, batch_size=64, transform=transform, shard_index=0, shard_count=1
        )
    )
    assert [len(b["mask"]) for b in batches] == [64] * 5  # 300 records -> 5 batches of 64
    index = np.concatenate([b["index"] for b in batches])
    mask = np.concatenate([b["mask"] for b in batches])
    np.testing.assert_array_equal(index[mask], np.arange(300))
    assert not mask[300:].any() and np.all(index[300:] == -1)
    record = train_source[299]
    expected = preprocess.center_crop(record["image"], mean, crop=64)
    np.testing.assert_array_equal(batches[-1]["image"][299 - 256], expected)
    assert batches[-1]["label"][299 - 256] == record["label"]


def test_eval_shards_split_the_work(train_source, mean):
    transform = pipeline.EvalTransform(mean, crop=64)
    seen = []
    for shard in range(2):
        loader = pipeline.eval_loader(
            train_source, batch_size=32, transform=transform, shard_index=shard, shard_count=2
        )
        batches = list(loader)
        assert len(batches) == 5  # 300 -> padded to 320 = 2 hosts x 5 batches x 32
        seen.append(np.concatenate([b["index"][b["mask"]] for b in batches]))
    assert not set(seen[0]) & set(seen[1])
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(300))


def test_detection_sources_give_multi_hot_labels(tiny_dir):
    scenes = sources.open_split("toyworld/scenes_tiny", "trainval", data_dir=tiny_dir)
    mean = pipeline.get_mean(scenes, resize=72).array("channel")
    batch = next(iter(pipeline.train_loader(
        scenes, batch_size=4, mean_SxSx3=mean, crop=64, seed=0, shard_index=0, shard_count=1
    )))  # fmt: skip
    assert batch["label"].shape == (4, 20) and set(np.unique(batch["label"])) <= {-1, 0, 1}


def test_multiprocess_workers_resume_exactly(train_source, mean):
    loader = _loader(train_source, mean, worker_count=1)
    iterator = pipeline.StatefulIterator(loader)
    _take(iterator, 2)
    state = iterator.get_state()
    expected = next(iterator)
    restored = pipeline.StatefulIterator(_loader(train_source, mean, worker_count=1))
    restored.set_state(state)
    got = next(restored)
    np.testing.assert_array_equal(got["image"], expected["image"])


def test_bad_arguments(train_source, mean):
    with pytest.raises(ValueError, match="batch_size"):
        pipeline.train_loader(
            train_source,
            batch_size=301,
            mean_SxSx3=mean,
            crop=64,
            seed=0,
            shard_index=0,
            shard_count=1,
        )
    with pytest.raises(ValueError, match="shard_index"):
        pipeline.eval_loader(train_source, batch_size=8, shard_index=2, shard_count=2)


def test_default_shard_is_the_jax_process():
    # single-process JAX: process 0 of 1 reads everything
    shard = pipeline._shard_options(None, None, drop_remainder=True)
    assert (shard.shard_index, shard.shard_count, shard.drop_remainder) == (0, 1, True)
