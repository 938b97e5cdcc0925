"""roidb: overlaps and window labels by hand."""

import numpy as np

from jaxcnn.detect import roidb


def _gt():
    return roidb.GroundTruth(
        image_id="x",
        height=40,
        width=40,
        boxes=np.array([[1, 1, 10, 10], [21, 1, 30, 10]]),
        labels=np.array([2, 0]),
        difficult=np.array([False, True]),
    )


def test_entry_and_window_labels_by_hand():
    props = np.array([[1, 1, 10, 11], [5, 1, 14, 10], [16, 1, 25, 10], [21, 1, 30, 10]])
    e = roidb.make_entry(_gt(), props, num_classes=3)
    # Rows: gt A (class 2), gt B (class 0, difficult), then the four proposals.
    # P1 vs A: 100 / 110; P2 vs A: 6 x 10 = 60 / 140; P3 vs B: 5 x 10 = 50 / 150; P4 = B.
    np.testing.assert_array_equal(e.is_gt, [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(e.gt_label, [2, 0, -1, -1, -1, -1])
    np.testing.assert_allclose(e.overlap[:, 2], [1, 0, 100 / 110, 60 / 140, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(e.overlap[:, 0], [0, 1, 0, 0, 50 / 150, 1], rtol=1e-6)
    np.testing.assert_allclose(e.overlap[:, 1], 0)
    # Foreground at >= 0.5 (difficult boxes count), label = class of the max-IoU box + 1.
    np.testing.assert_array_equal(roidb.window_labels(e), [3, 1, 3, 0, 0, 1])
    # At the threshold exactly: 60/140 < 0.5 stays background; a 0.4 threshold makes it fg.
    np.testing.assert_array_equal(roidb.window_labels(e, fg_threshold=0.4), [3, 1, 3, 3, 0, 1])


def test_image_without_ground_truth_is_all_background():
    gt = roidb.GroundTruth("y", 20, 20, np.zeros((0, 4), int), np.zeros(0, int), np.zeros(0, bool))
    e = roidb.make_entry(gt, np.array([[1, 1, 5, 5]]), num_classes=2)
    np.testing.assert_array_equal(roidb.window_labels(e), [0])
    assert e.overlap.shape == (1, 2) and not e.overlap.any()
