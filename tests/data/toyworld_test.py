"""toyworld: determinism, class tables, balance, boxes, and the drawing primitives."""

import collections
import filecmp
import itertools
import os

import numpy as np
import pytest

from jaxcnn.data import pipeline, sources, toyworld, toyworld_draw, toyworld_world


def _record_files(directory):
    return sorted(f for f in os.listdir(directory) if ".array_record-" in f)


def test_same_seed_gives_identical_bytes(tiny_dir, tmp_path):
    # A second preparation (separate process state, same seed) writes byte-identical files.
    builder = toyworld.prepare("scenes", size="tiny", seed=0, data_dir=str(tmp_path), num_workers=1)
    ours = os.path.join(tiny_dir, "toyworld", "scenes_tiny", "1.0.0")
    files = _record_files(builder.data_dir)
    assert files == _record_files(ours) and len(files) == 3
    for f in files:
        assert filecmp.cmp(os.path.join(builder.data_dir, f), os.path.join(ours, f), shallow=False)


def test_other_seed_gives_other_images():
    task = toyworld_world.ShardTask("source", 0, 0, "train", 0, np.arange(4), 72, 90, "x")
    same, _ = toyworld_world.generate_shard(task)
    again, _ = toyworld_world.generate_shard(task)
    other, _ = toyworld_world.generate_shard(task._replace(seed=1))
    assert [e["image"] for _, e in same] == [e["image"] for _, e in again]
    assert all(a["image"] != b["image"] for (_, a), (_, b) in zip(same, other, strict=True))


def test_class_tables():
    source = {tuple(c) for c in toyworld_world.SOURCE_CLASSES}
    scenes = {tuple(c) for c in toyworld_world.SCENE_CLASSES}
    assert len(source) == 100 and len(scenes) == 20 and not source & scenes
    # every primitive of a scene class also occurs in some source class (transfer is possible)
    for axis in range(3):
        assert {c[axis] for c in scenes} <= {c[axis] for c in source}
    assert len(set(toyworld_world.PLACES_NAMES)) == toyworld_world.NUM_PLACES_CLASSES == 40
    # scene classes differ by 1, 2 or 3 of (shape, colour, texture): some pairs by one cue only
    diffs = collections.Counter(
        sum(x != y for x, y in zip(a, b, strict=True)) for a, b in itertools.combinations(scenes, 2)
    )
    assert diffs[1] > 0 and diffs[3] > 0


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


def test_disc_coverage_matches_geometry():
    # A disc of radius 6 at (10, 10): pixels whose centre is > 0.5 px inside are fully
    # covered, > 0.5 px outside are empty (the anti-aliased ramp is one pixel wide).
    image = np.zeros((1, 20, 20, 3), np.float32)
    cover = toyworld_draw.draw_objects(
        image, active_N=np.ones(1, bool), shape_N=np.array([0]), rgb_Nx3=np.full((1, 3), 100.0),
        texture_N=np.zeros(1, int), cy_N=np.array([10.0]), cx_N=np.array([10.0]),
        radius_N=np.array([6.0]), theta_N=np.zeros(1), period_N=np.ones(1), phase_N=np.zeros(1),
    )[0]  # fmt: skip
    centres = np.arange(20) + 0.5
    dist = np.hypot(centres[:, None] - 10, centres[None, :] - 10)
    assert np.all(cover[dist < 5.5] == 1.0) and np.all(cover[dist > 6.5] == 0.0)
    np.testing.assert_allclose(image[0, ..., 0], 100.0 * cover, rtol=1e-6)
    assert abs(cover.sum() - np.pi * 36) < 1.0  # area within a pixel of pi r^2


def test_background_ranges():
    images = toyworld_draw.backgrounds(np.random.default_rng(0), 4, 16)
    assert images.shape == (4, 16, 16, 3) and images.dtype == np.float32
    assert images.min() > -80 and images.max() < 330  # base 50..200 + ramp + noise, pre-clip
    assert toyworld_draw.to_uint8(images).dtype == np.uint8


def test_config_names_and_errors():
    assert toyworld.config_name("source") == "source"
    assert toyworld.config_name("places", "tiny", 3) == "places_tiny_seed3"
    with pytest.raises(ValueError, match="unknown toyworld part"):
        toyworld.config_name("forest")
    with pytest.raises(ValueError, match="unknown shape"):
        toyworld_draw._shape_coverage("blob", np.zeros(1), np.zeros(1), np.ones(1))


def test_stored_mean_equals_a_pass_over_the_split(tiny_dir):
    # The mean summed during generation equals a fresh pass over the stored records.
    for name, split in [("toyworld/source_tiny", "train"), ("toyworld/scenes_tiny", "trainval")]:
        source = sources.open_split(name, split, data_dir=tiny_dir)
        stored = pipeline.get_mean(source, resize=72, compute_if_missing=False)
        fresh = pipeline.dataset_mean(source, resize=72)
        assert stored.count == fresh.count == len(source)
        np.testing.assert_allclose(stored.image, fresh.image, rtol=0, atol=1e-9)
        np.testing.assert_allclose(stored.channel, fresh.image.mean(axis=(0, 1)), atol=1e-9)
