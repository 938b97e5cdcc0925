"""boxes: bilinear resize and R-CNN warping against crops computed by hand; GT-box source."""

import pickle

import numpy as np
import pytest

from jaxcnn.data import boxes, memory, pipeline, sources


def _ramp(h, w):
    # image[y, x] = (x, y, 0): bilinear interpolation of a linear ramp is exact
    y, x = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([x, y, np.zeros_like(x)], axis=-1).astype(np.uint8)


def test_bilinear_resize_by_hand():
    row = np.array([[0.0, 10.0]])[..., None]  # 1 x 2 x 1
    # out x = (j + 0.5) * 2 / 4 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped 0, .25, .75, 1
    out = boxes.bilinear_resize(row, 1, 4)
    np.testing.assert_allclose(out[0, :, 0], [0.0, 2.5, 7.5, 10.0])
    image = np.random.default_rng(0).integers(0, 255, (5, 7, 3))
    np.testing.assert_allclose(boxes.bilinear_resize(image, 5, 7), image)  # identity
    with pytest.raises(ValueError, match="cannot resize"):
        boxes.bilinear_resize(image, 0, 3)


def test_voc_to_normalised_and_back_by_hand():
    # VOC2007 000001.xml's dog: xmin 48, ymin 240, xmax 195, ymax 371 in a 353 x 500 (W x H)
    # image. Stored as TFDS's voc builder stores it: 240/500, 48/353, 371/500, 195/353.
    box = boxes.voc_to_normalised([48, 240, 195, 371], height=500, width=353)
    assert box.dtype == np.float32
    np.testing.assert_array_equal(
        box, np.array([240 / 500, 48 / 353, 371 / 500, 195 / 353], np.float32)
    )
    np.testing.assert_array_equal(
        boxes.normalised_to_voc(box, height=500, width=353), [48, 240, 195, 371]
    )
    # Full image (1, 1, W, H) -> (1/H, 1/W, 1, 1); a one-pixel box has ymin == ymax.
    full_and_dot = boxes.voc_to_normalised([[1, 1, 353, 500], [7, 9, 7, 9]], height=500, width=353)
    np.testing.assert_array_equal(
        full_and_dot, np.array([[1 / 500, 1 / 353, 1, 1], [9 / 500, 7 / 353] * 2], np.float32)
    )
    np.testing.assert_array_equal(
        boxes.normalised_to_voc(full_and_dot, height=500, width=353),
        [[1, 1, 353, 500], [7, 9, 7, 9]],
    )
    # Every integer box of a VOC-sized image survives the float32 round trip exactly.
    rng = np.random.default_rng(0)
    xy = np.sort(rng.integers(1, 501, (1000, 2, 2)), axis=1).transpose(0, 2, 1).reshape(-1, 4)
    xy = np.minimum(xy, [375, 500, 375, 500])
    back = boxes.normalised_to_voc(
        boxes.voc_to_normalised(xy, height=500, width=375), height=500, width=375
    )
    np.testing.assert_array_equal(back, xy)
    # Clipped coordinates (0 after clipping, or beyond 1) map to the pixels that exist.
    np.testing.assert_array_equal(
        boxes.normalised_to_voc([0.0, 0.0, 1.2, 1.0], height=10, width=20), [1, 1, 20, 10]
    )


def test_warp_without_padding_is_the_exact_crop():
    image = _ramp(20, 20)
    mean = np.full((10, 10, 3), 2.0, np.float32)
    # VOC box x 5..14, y 6..15 (1-based inclusive) = 0-based rows 5..14, cols 4..13
    box = boxes.voc_to_normalised([5, 6, 14, 15], height=20, width=20)
    out = boxes.warp_box(image, box, mean, out_size=10, pad=0)
    np.testing.assert_allclose(out, image[5:15, 4:14] - 2.0)
    # The old rule (round(xmin W) + 1) read this box one pixel to the right and down.
    assert not np.allclose(out, image[6:16, 5:15] - 2.0)


def test_warp_with_context_padding_at_the_border_by_hand():
    # 40 x 40 ramp, box = pixels 0..9 (1-based 1..10) in both axes, O = 20, p = 5:
    # scale = 20 / 10 = 2; half = 5; centre = 1 + 5 = 6; expanded = round(6 -+ 10) = -4, 16;
    # unclipped = 21; cut off on top/left = 1 - (-4) = 5 -> pad = round(5 * 20/21) = 5;
    # clipped window = pixels 1..16 (0-based 0..15) -> round(16 * 20/21) = 15 output pixels.
    image = _ramp(40, 40)
    mean = np.random.default_rng(1).normal(size=(20, 20, 3)).astype(np.float32)
    box = boxes.voc_to_normalised([1, 1, 10, 10], height=40, width=40)
    out = boxes.warp_box(image, box, mean, out_size=20, pad=5)
    expected = np.zeros((20, 20, 3), np.float32)
    expected[5:, 5:] = boxes.bilinear_resize(image[0:16, 0:16], 15, 15) - mean[5:, 5:]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # The ramp makes the resize checkable directly: output column j samples x = (j + .5)*16/15 - .5
    xs = np.clip((np.arange(15) + 0.5) * 16 / 15 - 0.5, 0, 15)
    np.testing.assert_allclose(out[5, 5:, 0] + mean[5, 5:, 0], xs, atol=1e-5)
    assert np.all(out[:5] == 0) and np.all(out[:, :5] == 0)  # padding = mean colour


def test_warp_inside_image_with_padding_by_hand():
    # 40 x 40, box pixels 10..29 (1-based 11..30), O = 20, p = 5: scale 2, half 10,
    # centre 21, expanded round(21 -+ 20) = 1, 41 -> clipped to 1..40: unclipped 41,
    # no cut on the top/left, window 40 px -> round(40 * 20/41) = 20 output pixels.
    image = _ramp(40, 40)
    mean = np.zeros((20, 20, 3), np.float32)
    box = boxes.voc_to_normalised([11, 11, 30, 30], height=40, width=40)
    out = boxes.warp_box(image, box, mean, out_size=20, pad=5)
    np.testing.assert_allclose(out, boxes.bilinear_resize(image, 20, 20), atol=1e-5)


def test_context_pad_scaling_and_errors():
    assert boxes.context_pad(227) == 16
    assert boxes.context_pad(64) == pytest.approx(4.511, abs=1e-3)
    mean = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(ValueError, match="mean shape"):
        boxes.warp_box(_ramp(10, 10), np.array([0, 0, 1, 1.0]), mean, out_size=9, pad=0)
    with pytest.raises(ValueError, match="pad"):
        boxes.warp_box(_ramp(10, 10), np.array([0, 0, 1, 1.0]), mean, out_size=8, pad=4)
    np.testing.assert_array_equal(
        boxes.center_mean(np.arange(72 * 72 * 3.0).reshape(72, 72, 3), 64)[0, 0], [876, 877, 878]
    )


def test_gt_box_source_on_tiny_scenes(tiny_dir):
    scenes = sources.open_split("toyworld/scenes_tiny", "test", data_dir=tiny_dir)
    mean = pipeline.get_mean(
        sources.open_split("toyworld/scenes_tiny", "trainval", data_dir=tiny_dir), resize=72
    )
    gt = boxes.GtBoxSource(scenes, out_size=64, mean_OxOx3=boxes.center_mean(mean.image, 64))
    total = sum(scenes[i]["objects"]["label"].size for i in range(len(scenes)))
    assert len(gt) == total == gt.report["boxes"]
    record = gt[3]
    i, k = int(record["image_index"]), int(record["object_index"])
    source_record = scenes[i]
    assert record["label"] == source_record["objects"]["label"][k]
    assert record["difficult"] == source_record["objects"]["difficult"][k]
    expected = boxes.warp_box(
        source_record["image"], source_record["objects"]["bbox"][k],
        boxes.center_mean(mean.image, 64), out_size=64, pad=boxes.context_pad(64),
    )  # fmt: skip
    np.testing.assert_array_equal(record["image"], expected)
    batches = list(pipeline.eval_loader(gt, batch_size=16, shard_index=0, shard_count=1))
    assert sum(int(b["mask"].sum()) for b in batches) == len(gt)
    assert batches[0]["image"].shape == (16, 64, 64, 3)


def test_gt_box_index_is_read_once_per_split_view(tiny_dir, monkeypatch):
    scenes = sources.open_split("toyworld/scenes_tiny", "test", data_dir=tiny_dir)
    mean = np.zeros((16, 16, 3), np.float32)
    monkeypatch.setattr(boxes, "_INDEXES", {})
    monkeypatch.setattr(boxes, "_split_images", lambda source: None)  # index reads only
    raw_reads = []
    real_raw = sources.Source.raw
    monkeypatch.setattr(
        sources.Source, "raw", lambda self, i: raw_reads.append(i) or real_raw(self, i)
    )
    first = boxes.GtBoxSource(scenes, out_size=16, mean_OxOx3=mean)
    assert raw_reads == list(range(len(scenes)))
    again = boxes.GtBoxSource(
        sources.open_split("toyworld/scenes_tiny", "test", data_dir=tiny_dir),
        out_size=8,
        mean_OxOx3=mean[:8, :8],
    )
    assert raw_reads == list(range(len(scenes)))  # the same records: not read again
    np.testing.assert_array_equal(again.index, first.index)
    np.testing.assert_array_equal(again.labels, first.labels)
    assert again.report == first.report and again.report is not first.report
    with pytest.raises(ValueError, match="read-only"):
        first.labels[0] = 1  # shared between the two
    head = boxes.GtBoxSource(scenes.subset(range(3)), out_size=16, mean_OxOx3=mean)
    assert raw_reads == list(range(len(scenes))) + [0, 1, 2]  # other records: read
    assert len(head) == int(np.sum(first.index[:, 0] < 3))
    boxes.GtBoxSource(scenes, out_size=16, mean_OxOx3=mean, skip_bad=True)
    assert len(raw_reads) == 2 * len(scenes) + 3  # skip_bad is part of the key


def test_gt_box_crops_from_the_decoded_split_equal_those_from_the_records(
    tiny_dir, tmp_path, monkeypatch
):
    scenes = sources.open_split("toyworld/scenes_tiny", "test", data_dir=tiny_dir)
    mean = np.random.default_rng(0).uniform(0, 255, (32, 32, 3)).astype(np.float32)
    pad = boxes.context_pad(32)
    monkeypatch.setattr(boxes, "_IMAGES", {})

    def expected(view, j):  # the crop warped from the JPEG record, by hand
        i, k = view.index[j]
        record = view.source[int(i)]
        return boxes.warp_box(
            record["image"], record["objects"]["bbox"][k], mean, out_size=32, pad=pad
        )

    views = [scenes, scenes.subset([3, 0, 2])]  # a view: its indices map into the file
    gts = [boxes.GtBoxSource(view, out_size=32, mean_OxOx3=mean) for view in views]
    assert all(gt._images is not None for gt in gts) and gts[0]._images is gts[1]._images
    raw_reads = []
    real_raw = sources.Source.raw
    monkeypatch.setattr(
        sources.Source, "raw", lambda self, i: raw_reads.append(i) or real_raw(self, i)
    )
    crops = [[gt[j]["image"] for j in range(len(gt))] for gt in gts]
    assert raw_reads == []  # cut from the decoded images: no record read
    monkeypatch.setattr(sources.Source, "raw", real_raw)
    for gt, view_crops in zip(gts, crops, strict=True):
        for j, crop in enumerate(view_crops):
            np.testing.assert_array_equal(crop, expected(gt, j))
    shipped = pickle.dumps(gts[0])  # to grain workers: without the images, read back there
    assert len(shipped) < gts[0]._images.nbytes / 4
    np.testing.assert_array_equal(pickle.loads(shipped)[1]["image"], crops[0][1])

    # A decoded file that differs from its records is not used: crops come from the records.
    path = memory.decoded_file(scenes.dataset_dir, "test", len(scenes), 72)
    with np.load(path) as z:
        images, labels = z["images"], z["labels"]
    damaged = str(tmp_path / "damaged.npz")
    memory.save_decoded(damaged, 255 - images, labels)
    monkeypatch.setattr(memory, "decoded_file", lambda *args: damaged)
    monkeypatch.setattr(boxes, "_IMAGES", {})
    gt = boxes.GtBoxSource(scenes, out_size=32, mean_OxOx3=mean)
    assert gt._images is None
    np.testing.assert_array_equal(gt[0]["image"], expected(gt, 0))


def test_gt_box_source_decodes_each_image_once_in_order(tiny_dir):
    scenes = sources.open_split("toyworld/scenes_tiny", "test", data_dir=tiny_dir)
    mean = np.zeros((32, 32, 3), np.float32)
    reads = []

    class Counting:  # the source, counting decodes
        kind, num_classes = scenes.kind, scenes.num_classes
        __len__, raw, where = scenes.__len__, scenes.raw, scenes.where

        def __getitem__(self, i):
            reads.append(i)
            return scenes[i]

    gt = boxes.GtBoxSource(Counting(), out_size=32, mean_OxOx3=mean)
    order = list(range(len(gt))) + [len(gt) - 1, 0]  # in order, then a repeat, then back
    got = [gt[j] for j in order]
    images = [i for i in range(len(scenes)) if scenes[i]["objects"]["label"].size]
    assert len(gt) > len(images)  # some image has several boxes
    assert reads == images + [images[0]]
    for j, record in zip(order, got, strict=True):
        i, k = (int(v) for v in gt.index[j])
        expected = boxes.warp_box(
            scenes[i]["image"], scenes[i]["objects"]["bbox"][k], mean, out_size=32, pad=gt.pad
        )
        np.testing.assert_array_equal(record["image"], expected)


class _FakeDetection:
    """A detection source double: one image without objects, a one-pixel-high box, one bad."""

    kind, num_classes = "detection", 20

    def __init__(self):
        ok = {"bbox": [[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.2, 0.6]], "label": [1, 2]}
        ok.update(is_difficult=[False, True], is_truncated=[False, False])
        empty = {"bbox": np.zeros((0, 4)), "label": [], "is_difficult": [], "is_truncated": []}
        bad = {"bbox": [[0, 0, 1, 1]], "label": [1, 2], "is_difficult": [0], "is_truncated": [0]}
        self.objects = [ok, empty, bad]

    def __len__(self):
        return 3

    def where(self, i):
        return f"fake/test[{i}]"

    def raw(self, i):
        return {"objects": self.objects[i]}


def test_gt_box_source_counts_what_it_skips():
    mean = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(ValueError, match=r"fake/test\[2\]: object fields have unequal lengths"):
        boxes.GtBoxSource(_FakeDetection(), out_size=8, mean_OxOx3=mean)
    gt = boxes.GtBoxSource(_FakeDetection(), out_size=8, mean_OxOx3=mean, skip_bad=True)
    assert len(gt) == 2  # [0.2, 0.2, 0.2, 0.6] is one pixel high in the box convention
    assert gt.report == {"boxes": 2, "images without objects": 1, "rejected images": 1}
    assert "fake/test[2]" in gt.rejected[0]
