"""toyworld_world: class tables, seeded shards, scene annotations."""

import collections
import itertools

import numpy as np

from jaxcnn.data import boxes, toyworld_world


def test_other_seed_gives_other_images():
    task = toyworld_world.ShardTask("source", 0, 0, "train", 0, np.arange(4), 72, 90, "x")
    same, pixel_sum, decoded = toyworld_world.generate_shard(task)
    again, _, _ = toyworld_world.generate_shard(task)
    other, _, _ = toyworld_world.generate_shard(task._replace(seed=1))
    assert decoded.shape == (4, 72, 72, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(pixel_sum, decoded.sum(axis=0, dtype=np.float64))
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


def test_scene_annotations_follow_the_rules():
    rng = np.random.default_rng(5)
    images, objects = toyworld_world.sample_scenes(rng, 24, 72)
    assert images.shape == (24, 72, 72, 3) and images.dtype == np.uint8
    for objs in objects:
        k = objs["label"].size
        assert 1 <= k <= 4 and objs["bbox"].shape == (k, 4)
        # back to VOC's 1-based inclusive pixels (the box convention)
        x1, y1, x2, y2 = boxes.normalised_to_voc(objs["bbox"], height=72, width=72).T
        short = np.minimum(x2 - x1 + 1, y2 - y1 + 1)
        assert np.all(objs["is_difficult"][short < 0.1 * 72])  # small boxes are difficult
        touching = (x1 == 1) | (y1 == 1) | (x2 == 72) | (y2 == 72)
        assert np.all(objs["is_truncated"][touching])  # boxes on the border are truncated


def test_places_labels_pick_layouts_and_kinds():
    assert toyworld_world.PLACES_CLASSES.shape == (40, 3)
    # each (kind pair) appears with all five layouts
    pairs = collections.Counter(map(tuple, toyworld_world.PLACES_CLASSES[:, :2]))
    assert set(pairs.values()) == {5}
    images = toyworld_world.sample_places(np.random.default_rng(0), np.arange(40), 72)
    assert images.shape == (40, 72, 72, 3)
