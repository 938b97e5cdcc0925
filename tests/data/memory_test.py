"""Tests for jaxcnn.data.memory: crops equal to preprocess.crop_subtract at some valid window,
whole epochs, determinism, exact resumption across an epoch end, shards, final-array records,
the store's reuse and eviction, and the errors."""

import itertools
import os

import numpy as np
import pytest

from jaxcnn.data import memory, preprocess

S, CROP, N = 6, 4, 10


def _images():
    rng = np.random.default_rng(0)  # random pixels: a crop names its image and window uniquely
    return rng.integers(0, 256, (N, S, S, 3)).astype(np.uint8), rng


def _store(data, labels, key="k", budget=2**30):
    def make():
        return memory.RecordStore(
            lambda i: (data[i], labels[i]), len(data), data.shape[1:], data.dtype
        )

    return memory.store(key, make, budget_bytes=budget)


@pytest.fixture(autouse=True)
def _fresh():
    memory.clear()
    yield
    memory.clear()


def _windows(image, mean):
    """Every (y, x, mirror) crop of `image`, by the reference crop_subtract."""
    for y, x, m in itertools.product(range(S - CROP + 1), range(S - CROP + 1), (False, True)):
        yield (y, x, m), preprocess.crop_subtract(image, mean, crop=CROP, y=y, x=x, mirror=m)


def test_each_example_is_a_window_of_its_image_minus_the_mean():
    images, rng = _images()
    labels = np.arange(N) % 3
    mean = rng.uniform(0, 255, (S, S, 3)).astype(np.float32)
    it = memory.MemoryBatches(
        _store(images, labels), batch_size=5, seed=1, mean_SxSx3=mean, crop=CROP
    )
    seen, windows = [], set()
    for _ in range(4):  # two epochs
        batch = next(it)
        assert batch["image"].shape == (5, CROP, CROP, 3) and batch["image"].dtype == np.float32
        assert batch["label"].dtype == np.int32
        for example, label in zip(batch["image"], batch["label"], strict=True):
            hits = [
                (i, w) for i in range(N) for w, ref in _windows(images[i], mean)
                if np.array_equal(ref, example)
            ]  # fmt: skip
            assert len(hits) == 1, "exactly one (image, window, mirror) gives this example"
            ((i, window),) = hits
            assert label == labels[i]
            seen.append(i)
            windows.add(window)
    assert sorted(seen[:10]) == list(range(N)) and sorted(seen[10:]) == list(range(N))
    assert len(windows) > 4 and {w[2] for w in windows} == {False, True}  # random, both mirrors


def test_deterministic_and_resumes_exactly_across_epochs():
    images, rng = _images()
    mean = np.zeros((S, S, 3), np.float32)
    make = lambda seed: memory.MemoryBatches(  # noqa: E731
        _store(images, np.arange(N)), batch_size=3, seed=seed, mean_SxSx3=mean, crop=CROP
    )
    a, b, c = make(7), make(7), make(8)
    run_a = [next(a) for _ in range(7)]  # 3 batches an epoch (10 // 3): crosses two epoch ends
    run_b = [next(b) for _ in range(7)]
    for x, y in zip(run_a, run_b, strict=True):
        np.testing.assert_array_equal(x["image"], y["image"])
    assert not all(np.array_equal(x["image"], next(c)["image"]) for x in run_a)
    again = make(7)
    for _ in range(2):
        next(again)
    state = again.get_state()
    resumed = make(7)
    resumed.set_state(state)
    for want in run_a[2:]:
        got = next(resumed)
        np.testing.assert_array_equal(got["image"], want["image"])
        np.testing.assert_array_equal(got["label"], want["label"])
    with pytest.raises(ValueError, match="streaming"):
        resumed.set_state({"iterations_done": 3})  # grain's state
    with pytest.raises(ValueError, match="seed"):
        make(8).set_state(state)
    other = memory.MemoryBatches(
        _store(images, np.arange(N)), batch_size=3, seed=7, mean_SxSx3=mean, crop=CROP,
        shard_index=1, shard_count=2,
    )  # fmt: skip
    with pytest.raises(ValueError, match="process 0 of 1"):
        other.set_state(state)


def test_shards_split_each_epoch_and_drop_the_same_remainder():
    data = np.arange(N, dtype=np.float32).reshape(N, 1, 1, 1) * np.ones((1, 2, 2, 3), np.float32)
    store = _store(data, np.arange(N))
    shards = [
        memory.MemoryBatches(store, batch_size=2, seed=0, shard_index=p, shard_count=2)
        for p in range(2)
    ]
    assert all(s.batches_per_epoch == 2 for s in shards)  # 10 // (2 * 2)
    labels = [np.concatenate([next(s)["label"] for _ in range(2)]) for s in shards]
    assert not set(labels[0]) & set(labels[1]) and len(set(labels[0]) | set(labels[1])) == 8
    for s in shards:
        batch = next(s)  # the next epoch
        # final arrays are returned as they are or mirrored, never cropped
        np.testing.assert_array_equal(batch["image"][:, 0, 0, 0], batch["label"].astype(float))


def test_final_arrays_are_only_mirrored():
    rng = np.random.default_rng(3)
    data = rng.normal(size=(N, 3, 3, 3)).astype(np.float32)
    it = memory.MemoryBatches(_store(data, np.arange(N)), batch_size=N, seed=0)
    batch = next(it)
    mirrored = 0
    for example, i in zip(batch["image"], batch["label"], strict=True):
        same = np.array_equal(example, data[i])
        flipped = np.array_equal(example, data[i][:, ::-1])
        assert same or flipped
        mirrored += flipped
    assert 0 < mirrored < N


def test_store_is_shared_by_key_and_evicts_the_oldest():
    calls = []
    data = np.zeros((4, 2, 2, 3), np.uint8)  # 48 bytes

    def fetch(i):
        calls.append(i)
        return data[i], 0

    def make():
        return memory.RecordStore(fetch, 4, (2, 2, 3), np.uint8)

    first = memory.store("a", make, budget_bytes=100)
    assert calls == [0, 1, 2, 3]  # read in order, once
    assert memory.store("a", make, budget_bytes=100) is first
    assert calls == [0, 1, 2, 3]
    memory.store("b", make, budget_bytes=100)  # 96 bytes: both kept
    memory.store("c", make, budget_bytes=100)  # 144: "a" goes
    assert memory.store("a", make, budget_bytes=100) is not first


def test_errors():
    images, _ = _images()
    store = _store(images, np.arange(N))
    with pytest.raises(ValueError, match="both"):
        memory.MemoryBatches(store, batch_size=2, seed=0, crop=CROP)
    with pytest.raises(ValueError, match="no batch"):
        memory.MemoryBatches(store, batch_size=11, seed=0, mean_SxSx3=np.zeros((S, S, 3)), crop=2)
    with pytest.raises(ValueError, match="do not fit"):
        memory.MemoryBatches(
            store, batch_size=2, seed=0, mean_SxSx3=np.zeros((S, S, 3)), crop=S + 1
        )
    with pytest.raises(ValueError, match="shape"):
        memory.RecordStore(lambda i: (np.zeros((2, 2, 3)), 0), 2, (3, 3, 3), np.uint8)


def test_eval_pass_centre_crops_each_record_once_over_shards():
    images, rng = _images()
    mean = rng.uniform(0, 255, (S, S, 3)).astype(np.float32)
    store = _store(images, np.arange(N) % 4)
    shards = [
        list(memory.eval_batches(store, batch_size=3, mean_SxSx3=mean, crop=CROP,
                                 shard_index=p, shard_count=2))
        for p in range(2)
    ]  # fmt: skip
    assert len(shards[0]) == len(shards[1]) == 2  # 10 records padded to 12 = 2 x 2 x 3
    seen = []
    for batches in shards:
        for batch in batches:
            assert batch["image"].shape == (3, CROP, CROP, 3)
            for image, label, real, i in zip(
                batch["image"], batch["label"], batch["mask"], batch["index"], strict=True
            ):
                if not real:
                    assert i == -1
                    continue
                want = preprocess.center_crop(images[i], mean, crop=CROP)
                np.testing.assert_array_equal(image, want)
                assert label == i % 4
                seen.append(int(i))
    assert sorted(seen) == list(range(N))


def test_decoded_file_round_trip_and_a_mismatch_is_not_used(tmp_path):
    images, _ = _images()
    labels = np.arange(N) % 3
    path = memory.decoded_file(tmp_path, "train", N, S)
    memory.save_decoded(path, images, labels)
    assert os.listdir(tmp_path) == [os.path.basename(path)]  # no temporary file left
    loaded = memory.load_decoded(path, lambda i: (images[i], labels[i]))
    np.testing.assert_array_equal(loaded.data, images)
    np.testing.assert_array_equal(loaded.labels, labels)
    assert loaded.size == N and loaded.nbytes == images.nbytes
    other = images.copy()
    other[N - 1, 0, 0, 0] ^= 1  # the last record is among those checked
    assert memory.load_decoded(path, lambda i: (other[i], labels[i])) is None
    with open(path, "r+b") as f:  # a truncated file is not used either
        f.truncate(os.path.getsize(path) // 2)
    assert memory.load_decoded(path, lambda i: (images[i], labels[i])) is None
