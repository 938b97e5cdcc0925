"""sources: the real-dataset loaders on tfds.testing.mock_data, the seeded SUN split, scan.

mock_data's fake records hold decoded numpy images (encoding them would need TensorFlow),
so these runs use decode='tfds'; the PIL path over encoded bytes is exercised by toyworld
(real array_record files) and by records_test.
"""

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.testing import mocking

from jaxcnn.data import sources


def test_imagenet_mock_records():
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        source = sources.open_split("imagenet2012", "validation", decode="tfds")
        assert len(source) == 6 and source.num_classes == 1000 and source.kind == "classification"
        assert source.class_names[0] == "n01440764"
        for i in range(len(source)):
            record = source[i]
            image = record["image"]
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
            assert 0 <= record["label"] < 1000 and isinstance(record["id"], str)


def test_sun397_mock_seeded_split_is_a_deterministic_partition():
    with tfds.testing.mock_data(num_examples=40, policy=tfds.testing.MockPolicy.USE_CODE):
        splits = {
            (s, seed): sources.open_split("sun397", s, seed=seed, decode="tfds")
            for s in sources.SEEDED_SPLITS
            for seed in (0, 1)
        }
        for seed in (0, 1):
            parts = [splits[s, seed].indices for s in sources.SEEDED_SPLITS]
            np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(40))
            # the split is seeded_split of the pooled labels
            labels = np.zeros(40, np.int64)
            for s in sources.SEEDED_SPLITS:
                for j, pool_index in enumerate(splits[s, seed].indices):
                    labels[pool_index] = splits[s, seed][j]["label"]
            expected = sources.seeded_split(labels, seed=seed)
            for s in sources.SEEDED_SPLITS:
                np.testing.assert_array_equal(splits[s, seed].indices, expected[s])
        again = sources.open_split("sun397", "test", seed=1, decode="tfds")
        np.testing.assert_array_equal(again.indices, splits["test", 1].indices)
        # (40 mock images over 397 classes are nearly all singletons, which all go to train;
        # proportions and seed dependence are checked on chosen labels below)
        record = splits["train", 1][0]
        assert record["image"].shape[2] == 3 and 0 <= record["label"] < 397


def test_seeded_split_proportions_per_class():
    labels = np.repeat(np.arange(7), [100, 50, 20, 10, 5, 3, 1])
    split = sources.seeded_split(labels, seed=3)
    for c, n in enumerate([100, 50, 20, 10, 5, 3, 1]):
        sizes = [np.sum(labels[split[s]] == c) for s in sources.SEEDED_SPLITS]
        n_train, n_val = int(np.floor(0.5 * n + 0.5)), int(np.floor(0.1 * n + 0.5))
        assert sizes == [n_train, n_val, n - n_train - n_val]
    again = sources.seeded_split(labels, seed=3)
    other = sources.seeded_split(labels, seed=4)
    for s in sources.SEEDED_SPLITS:
        np.testing.assert_array_equal(split[s], again[s])
    assert not np.array_equal(split["train"], other["train"])
    with pytest.raises(ValueError, match="1-D integers"):
        sources.seeded_split(labels.astype(float), seed=0)
    with pytest.raises(ValueError, match="fractions"):
        sources.seeded_split(labels, seed=0, fractions=(0.5, 0.5, 0.5))


def test_voc_default_mock_objects_are_rejected_by_name():
    # mock_data gives each object field its own random length: validated, never swallowed.
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        source = sources.open_split("voc2007", "test", decode="tfds")
        with pytest.raises(ValueError, match=r"voc2007/test\[0\].*unequal lengths"):
            source[0]
        report = sources.scan(source)
        assert report.good.size == 0 and len(report.bad) == 3
        assert "voc2007/test[2]" in report.bad[2][1]
        assert "3 rejected" in report.summary()


def _consistent_voc_mock(self, split, decoders=None, **kwargs):
    """mock_data's generator with equal object lengths and ordered box corners."""
    del decoders, kwargs
    generator = mocking.RandomFakeGenerator(
        self.info.features, num_examples=4, constant_dynamic_shape=True
    )

    class Fake:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            example = generator[i]
            bbox = np.asarray(example["objects"]["bbox"], np.float32)
            lo, hi = np.minimum(bbox[:, :2], bbox[:, 2:]), np.maximum(bbox[:, :2], bbox[:, 2:])
            example["objects"]["bbox"] = np.concatenate([lo, hi], axis=1)
            return example

    return Fake()


def test_voc_mock_labels_boxes_and_difficult_flags():
    with tfds.testing.mock_data(as_data_source_fn=_consistent_voc_mock):
        source = sources.open_split("voc2007", "trainval", decode="tfds")
        assert source.num_classes == 20 and source.class_names[0] == "aeroplane"
        for i in range(len(source)):
            raw, record = source.raw(i), source[i]
            objects = record["objects"]
            assert objects["bbox"].shape == (10, 4)
            np.testing.assert_array_equal(objects["label"], raw["objects"]["label"])
            np.testing.assert_array_equal(objects["difficult"], raw["objects"]["is_difficult"])
            np.testing.assert_array_equal(objects["truncated"], raw["objects"]["is_truncated"])
            clear = set(objects["label"][~objects["difficult"]].tolist())
            hard = set(objects["label"][objects["difficult"]].tolist()) - clear
            assert set(np.nonzero(record["labels"] == 1)[0].tolist()) == clear
            assert set(np.nonzero(record["labels"] == -1)[0].tolist()) == hard


def test_toyworld_sources_and_errors(tiny_dir, tmp_path):
    scenes = sources.open_split("toyworld/scenes_tiny", "trainval", data_dir=tiny_dir)
    assert len(scenes) == 40 and scenes.kind == "detection" and scenes.num_classes == 20
    assert sources.scan(scenes).summary() == "40 records: 40 usable, 0 rejected; repairs: none"
    sub = scenes.subset([3, 1])
    assert sub[0]["id"] == scenes[3]["id"] and len(sub) == 2
    with pytest.raises(IndexError, match=r"scenes_tiny/trainval\[2\]"):
        sub.raw(2)
    with pytest.raises(ValueError, match="has splits"):
        sources.open_split("toyworld/scenes_tiny", "val", data_dir=tiny_dir)
    with pytest.raises(ValueError, match="unknown dataset"):
        sources.open_split("coco", "train")
    with pytest.raises(FileNotFoundError, match="prepare_data.py"):
        sources.open_split("toyworld/source", "train", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="decode"):
        sources.open_split("toyworld/source_tiny", "train", data_dir=tiny_dir, decode="cv2")
    # a real dataset that was never prepared: named with its command, not TFDS's KeyError
    with pytest.raises(FileNotFoundError, match=r"voc/2007 is not prepared .*--dataset=voc2007"):
        sources.open_split("voc2007", "test", data_dir=str(tmp_path))


def test_jaxcnn_never_imports_tensorflow():
    # TFDS is used without TensorFlow: no module of the package imports it (only
    # tensorflow_datasets, whose reading path is TensorFlow-free).
    import pathlib
    import re

    import jaxcnn

    pattern = re.compile(r"^\s*(import tensorflow\b(?!_)|from tensorflow\b(?!_))", re.MULTILINE)
    root = pathlib.Path(jaxcnn.__file__).parent
    offenders = [p for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
