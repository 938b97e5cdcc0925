"""Tests for jaxcnn.train.data on the tiny toyworld: batch contract, exact iterator resumption,
one padded evaluation pass, ground-truth boxes, and the errors."""

import dataclasses

import numpy as np
import pytest

from jaxcnn.data import sources
from jaxcnn.train import data as train_data


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from jaxcnn.data import prepare

    path = tmp_path_factory.mktemp("tfds")
    prepare.prepare_toyworld(size="tiny", data_dir=str(path), num_workers=1)
    return str(path)


def _cfg(data_dir, **kw):
    return train_data.DataConfig(
        **{"dataset": "toyworld/source_tiny", "data_dir": data_dir, "crop": 64, "resize": 72, **kw}
    )


@pytest.mark.parametrize("memory_mib", [0, 2048])  # streamed through grain, held in memory
def test_train_batches_and_exact_resume(data_dir, memory_mib):
    cfg = _cfg(data_dir, memory_mib=memory_mib)
    assert train_data.num_classes(cfg) == 100
    it = train_data.train_iterator(cfg, batch_size=8, seed=3)
    first = next(it)
    assert first["image"].shape == (8, 64, 64, 3) and first["image"].dtype == np.float32
    assert first["label"].dtype == np.int32 and set(first) == {"image", "label"}
    assert abs(float(first["image"].mean())) < 40  # mean-subtracted 0..255 pixels
    state = it.get_state()
    expected = [next(it) for _ in range(2)]
    again = train_data.train_iterator(cfg, batch_size=8, seed=3)
    again.set_state(state)
    for want in expected:
        got = next(again)
        np.testing.assert_array_equal(got["image"], want["image"])
        np.testing.assert_array_equal(got["label"], want["label"])


@pytest.mark.parametrize("memory_mib", [0, 2048])
def test_eval_pass_sees_each_example_once(data_dir, memory_mib):
    batches = list(train_data.eval_batches(_cfg(data_dir, memory_mib=memory_mib), batch_size=32)())
    assert all(b["image"].shape == (32, 64, 64, 3) for b in batches)
    mask = np.concatenate([b["mask"] for b in batches])
    labels = np.concatenate([b["label"] for b in batches])[mask]
    assert mask.sum() == 100 and sorted(labels.tolist()) == list(range(100))  # 1 per class
    few = list(train_data.eval_batches(_cfg(data_dir, eval_examples=10), batch_size=8)())
    assert sum(int(b["mask"].sum()) for b in few) == 10


@pytest.mark.parametrize("dataset", ["toyworld/source_tiny", "toyworld/scenes_tiny"])
def test_eval_batches_from_memory_equal_the_streamed_ones(data_dir, dataset):
    cfg = _cfg(data_dir, dataset=dataset, gt_boxes="scenes" in dataset, eval_split="test")
    if "source" in dataset:
        cfg = dataclasses.replace(cfg, eval_split="validation")
    held = list(train_data.eval_batches(cfg, batch_size=16)())
    streamed = list(
        train_data.eval_batches(dataclasses.replace(cfg, memory_mib=0), batch_size=16)()
    )
    assert len(held) == len(streamed) > 1
    for a, b in zip(held, streamed, strict=True):
        for key in ("image", "label", "mask"):
            np.testing.assert_array_equal(a[key], b[key])


def test_ground_truth_boxes(data_dir):
    cfg = _cfg(data_dir, dataset="toyworld/scenes_tiny", gt_boxes=True, eval_split="test")
    assert train_data.num_classes(cfg) == 20
    batch = next(train_data.train_iterator(cfg, batch_size=8, seed=0))
    assert batch["image"].shape == (8, 64, 64, 3)
    assert batch["label"].min() >= 0 and batch["label"].max() < 20
    # held in memory and streamed: the same warped crops (each as it is or mirrored), same labels
    streamed = train_data.train_iterator(
        dataclasses.replace(cfg, memory_mib=0), batch_size=8, seed=0
    )
    boxes = train_data._source(cfg, "train", train_data._mean(cfg))
    for got in (batch, next(streamed)):
        for image, label in zip(got["image"], got["label"], strict=True):
            match = [
                j for j, crop in ((j, boxes[j]["image"]) for j in range(len(boxes)))
                if boxes.labels[j] == label
                and any(np.array_equal(image, c) for c in (crop, crop[:, ::-1]))
            ]  # fmt: skip
            assert match, "every example is a warped GT box of its label, possibly mirrored"
    count = sum(int(b["mask"].sum()) for b in train_data.eval_batches(cfg, batch_size=16)())
    assert count >= 40  # 40 test images, 1-4 objects each
    # eval_examples counts images: every box of the first 5 test images, as FeatureSet does.
    split = sources.open_split("toyworld/scenes_tiny", "test", data_dir=data_dir)
    want = sum(len(split.raw(i)["objects"]["label"]) for i in range(5))
    few = dataclasses.replace(cfg, eval_examples=5)
    assert sum(int(b["mask"].sum()) for b in train_data.eval_batches(few, batch_size=4)()) == want
    assert want > 5  # the first images hold several objects: boxes are not what is counted


def test_class_subset_keeps_and_relabels_those_classes(data_dir):
    cfg, classes = _cfg(data_dir), (57, 3, 20)
    raw = train_data.split_labels(train_data._open(cfg, "train"))  # labels of the whole split
    assert train_data.num_classes(cfg, classes=classes) == 3
    batch = next(train_data.train_iterator(cfg, batch_size=6, seed=0, classes=classes))
    assert set(batch["label"].tolist()) <= {0, 1, 2}
    subset = train_data.ClassSubset(train_data._open(cfg, "train"), classes)
    assert len(subset) == sum(int(np.sum(raw == c)) for c in classes)
    for i in range(len(subset)):  # new label = position of the old one in `classes`
        old = int(raw[subset.source.indices[i]])
        assert subset[i]["label"] == classes.index(old)
    batches = list(train_data.eval_batches(cfg, batch_size=4, classes=classes)())
    labels = np.concatenate([b["label"][b["mask"]] for b in batches])
    assert sorted(labels.tolist()) == [0, 1, 2]  # the tiny validation split: 1 per class
    with pytest.raises(ValueError, match="outside"):
        train_data.ClassSubset(train_data._open(cfg, "train"), (0, 100))
    scenes = _cfg(data_dir, dataset="toyworld/scenes_tiny", gt_boxes=True)
    with pytest.raises(ValueError, match="classification dataset"):
        train_data.train_iterator(scenes, batch_size=8, seed=0, classes=(1, 2))


def test_errors(data_dir):
    with pytest.raises(ValueError, match="set gt_boxes"):
        train_data.train_iterator(
            _cfg(data_dir, dataset="toyworld/scenes_tiny"), batch_size=8, seed=0
        )
    with pytest.raises(ValueError, match="has no boxes"):
        train_data.train_iterator(_cfg(data_dir, gt_boxes=True), batch_size=8, seed=0)
