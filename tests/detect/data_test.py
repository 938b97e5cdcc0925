"""detect.data: R-CNN proposal files matched to a split's images by id; the cache key."""

import numpy as np
import pytest
import scipy.io

from jaxcnn.detect import data, roidb


def _cell(items):
    out = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        out[0, i] = item
    return out


def test_rcnn_proposals_are_matched_by_image_id(tmp_path):
    path = tmp_path / "voc_2007_test.mat"
    boxes = [np.array([[1.0, 2, 3, 4]]), np.array([[5.0, 6, 7, 8], [1, 1, 9, 9]])]
    scipy.io.savemat(path, {"images": _cell(["000004", "000001"]), "boxes": _cell(boxes)})
    spec = data.DataSpec(rcnn_proposals=str(tmp_path / "voc_2007_{split}.mat"))
    none = np.zeros((0, 4), int)
    gts = [
        roidb.GroundTruth(name, 10, 10, none, none[:, 0], none[:, 0].astype(bool))
        for name in ("000001.jpg", "000004.jpg")
    ]
    got = data._rcnn_boxes(spec, "test", gts)
    np.testing.assert_array_equal(got[0], [[6, 5, 8, 7], [1, 1, 9, 9]])  # [y1 x1 y2 x2] -> xyxy
    np.testing.assert_array_equal(got[1], [[2, 1, 4, 3]])
    gts.append(roidb.GroundTruth("000009.jpg", 10, 10, none, none[:, 0], none[:, 0] > 0))
    with pytest.raises(ValueError, match="no R-CNN proposals"):
        data._rcnn_boxes(spec, "test", gts)


def test_cache_key_depends_on_what_decides_the_boxes():
    a = data.DataSpec()
    assert a.key("test") == data.DataSpec(proposal_workers=7).key("test")
    assert a.key("test") != a.key("trainval")
    assert a.key("test") != data.DataSpec(crop=32).key("test")
