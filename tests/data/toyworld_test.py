"""toyworld: byte-identical preparation, sizes and class balance, boxes, stored means."""

import filecmp
import os

import numpy as np
import pytest

from jaxcnn.data import memory, pipeline, sources, toyworld


def _record_files(directory):
    return sorted(f for f in os.listdir(directory) if ".array_record-" in f)


def test_same_seed_gives_identical_bytes(tiny_dir, tmp_path):
    # A second preparation (separate process state, same seed) writes byte-identical files.
    builder = toyworld.prepare("scenes", size="tiny", seed=0, data_dir=str(tmp_path), num_workers=1)
    ours = os.path.join(tiny_dir, "toyworld", "scenes_tiny", str(toyworld.Toyworld.VERSION))
    files = _record_files(builder.data_dir)
    assert files == _record_files(ours) and len(files) == 3
    for f in files:
        assert filecmp.cmp(os.path.join(builder.data_dir, f), os.path.join(ours, f), shallow=False)


def test_tiny_sizes_balance_and_images(tiny_dir):
    train = sources.open_split("toyworld/source_tiny", "train", data_dir=tiny_dir)
    assert len(train) == 300
    counts = np.bincount([train[i]["label"] for i in range(len(train))], minlength=100)
    np.testing.assert_array_equal(counts, np.full(100, 3))  # exactly balanced
    image = train[0]["image"]
    assert image.shape == (72, 72, 3) and image.dtype == np.uint8
    labels = sources.pool_labels(
        sources.open_split("toyworld/places_tiny", "train", data_dir=tiny_dir).subset(range(0))
    )
    assert labels.size == 0
    test = sources.open_split("toyworld/places_tiny", "test", data_dir=tiny_dir)
    train_p = sources.open_split("toyworld/places_tiny", "train", data_dir=tiny_dir)
    val = sources.open_split("toyworld/places_tiny", "val", data_dir=tiny_dir)
    assert (len(train_p), len(val), len(test)) == (200, 40, 160)  # 10 per class: 5 / 1 / 4


def test_scene_boxes_valid(tiny_dir):
    scenes = sources.open_split("toyworld/scenes_tiny", "test", data_dir=tiny_dir)
    num_objects = []
    for i in range(len(scenes)):
        record = scenes[i]
        objects = record["objects"]
        bbox = objects["bbox"]
        num_objects.append(bbox.shape[0])
        assert np.all((bbox >= 0) & (bbox <= 1))
        assert np.all(bbox[:, 2] > bbox[:, 0]) and np.all(bbox[:, 3] > bbox[:, 1])
        # boxes lie on the pixel grid (tight boxes of drawn pixels)
        np.testing.assert_allclose(bbox * 72, np.round(bbox * 72), atol=1e-4)
        clear = set(objects["label"][~objects["difficult"]].tolist())
        expected = np.zeros(20, np.int8)
        expected[list(set(objects["label"].tolist()) - clear)] = -1
        expected[list(clear)] = 1
        np.testing.assert_array_equal(record["labels"], expected)
    assert 1 <= min(num_objects) and max(num_objects) <= 4


def test_config_names_and_errors():
    assert toyworld.config_name("source") == "source"
    assert toyworld.config_name("places", "tiny", 3) == "places_tiny_seed3"
    with pytest.raises(ValueError, match="unknown toyworld part"):
        toyworld.config_name("forest")


def test_stored_mean_equals_a_pass_over_the_split(tiny_dir):
    # The mean summed during generation equals a fresh pass over the stored records.
    for name, split in [("toyworld/source_tiny", "train"), ("toyworld/scenes_tiny", "trainval")]:
        source = sources.open_split(name, split, data_dir=tiny_dir)
        stored = pipeline.get_mean(source, resize=72, compute_if_missing=False)
        fresh = pipeline.dataset_mean(source, resize=72)
        assert stored.count == fresh.count == len(source)
        np.testing.assert_allclose(stored.image, fresh.image, rtol=0, atol=1e-9)
        np.testing.assert_allclose(stored.channel, fresh.image.mean(axis=(0, 1)), atol=1e-9)


def test_stored_decoded_images_equal_the_records_in_order(tiny_dir):
    # Every split is stored decoded, in record order (jaxcnn.data.memory); scenes also as
    # trainval (train + validation), with label -1 (a scene has no single label).
    cases = [
        ("toyworld/source_tiny", "train"),
        ("toyworld/source_tiny", "validation"),
        ("toyworld/scenes_tiny", "trainval"),
        ("toyworld/scenes_tiny", "test"),
    ]
    for name, split in cases:
        source = sources.open_split(name, split, data_dir=tiny_dir)
        path = memory.decoded_file(source.dataset_dir, split, len(source), 72)
        with np.load(path) as z:
            images, labels = z["images"], z["labels"]
        assert images.shape == (len(source), 72, 72, 3) and images.dtype == np.uint8
        for i in range(len(source)):
            np.testing.assert_array_equal(images[i], source[i]["image"])
            assert labels[i] == (-1 if source.kind == "detection" else source[i]["label"])
