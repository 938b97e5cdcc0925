"""Selective search (OpenCV, R-CNN fast mode) on a drawn image; the per-image cache resumes."""

import json
import os

import numpy as np
import pytest

pytest.importorskip("cv2")

from jaxcnn.detect import boxes, proposal_cache  # noqa: E402
from jaxcnn.detect import search as ss  # noqa: E402

SQUARES = np.array([[5, 8, 20, 25], [30, 30, 44, 41]])  # [x1, y1, x2, y2], 1-based


def _image():
    rng = np.random.default_rng(0)
    img = np.full((48, 50, 3), 90, np.uint8) + rng.integers(0, 6, (48, 50, 3)).astype(np.uint8)
    img[7:25, 4:20] = (220, 30, 30)  # rows y1-1..y2-1, cols x1-1..x2-1
    img[29:41, 29:44] = (30, 200, 60)
    return img


def test_boxes_are_valid_and_cover_the_objects():
    cfg = ss.SearchConfig(im_width=0)
    got = ss.selective_search(_image(), cfg)
    boxes.check_boxes(got)
    assert got.dtype == np.int64 and len(got) == len(np.unique(got, axis=0))
    assert got[:, 0].min() >= 1 and got[:, 2].max() <= 50 and got[:, 3].max() <= 48
    side = 20 * 50 / 500  # minimum side scaled to the image width
    assert np.all(got[:, 2] - got[:, 0] + 1 >= np.floor(side))
    best = boxes.iou_matrix_np(SQUARES, got).max(axis=1)
    assert np.all(best >= 0.9), best
    assert len(ss.selective_search(_image(), ss.SearchConfig(im_width=0, max_boxes=3))) == 3
    # R-CNN's own setting: work at width 500 and map back.
    wide = ss.selective_search(_image(), ss.SearchConfig())
    assert boxes.iou_matrix_np(SQUARES, wide).max(axis=1).min() >= 0.8


class _Source:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"image": np.roll(_image(), 3 * i, axis=1)}

    def __repr__(self):
        return f"_Source({self.n})"


def test_cache_manifest_and_resume(tmp_path):
    cfg = ss.SearchConfig(im_width=0, max_boxes=20)
    lines = []
    out = proposal_cache.compute_proposals(
        _Source(3), str(tmp_path), cfg, workers=1, chunk=2, progress=lines.append
    )
    assert len(out) == 3 and lines[-1].startswith("proposals 3/3 images")
    manifest = json.load(open(tmp_path / "manifest.json"))
    assert manifest["complete"] and manifest["config"]["max_boxes"] == 20
    os.remove(tmp_path / "boxes" / "0000001.npy")
    lines.clear()
    again = proposal_cache.compute_proposals(
        _Source(3), str(tmp_path), cfg, workers=1, progress=lines.append
    )
    assert lines == [lines[0]] and lines[0].startswith("proposals 3/3")  # one image redone
    for a, b in zip(out, again, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="other settings"):
        proposal_cache.compute_proposals(_Source(3), str(tmp_path), ss.SearchConfig(), workers=1)
