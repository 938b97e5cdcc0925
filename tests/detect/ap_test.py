"""detection_ap: hand-worked devkit cases and the literal VOCevaldet loop, through jax.jit."""

import jax
import numpy as np
import pytest

from jaxcnn.detect import ap, devkit

GT_IMAGE = np.array([1, 1, 2])
GT_BOXES = np.array([[1, 1, 10, 10], [21, 21, 30, 30], [1, 1, 10, 10]])
GT_DIFFICULT = np.array([False, True, False])


def _case():
    # d1 claims gt 0 (TP); d2 hits gt 0 again (duplicate, FP); d3 hits the difficult gt 1
    # (ignored); d4 is in image 3, which has no ground truth (FP); d5 claims gt 2 (TP).
    det_image = np.array([1, 1, 1, 3, 2])
    det_boxes = np.array([[1, 1, 10, 10]] * 3 + [[1, 1, 10, 10], [1, 1, 10, 10]])
    det_boxes[2] = [21, 21, 30, 30]
    det_scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    return det_image, det_boxes, det_scores


def test_hand_worked_duplicates_difficult_and_image_without_ground_truth():
    # npos = 2; cumTP 1,1,1,1,2; cumFP 0,1,1,2,2 -> recall .5,.5,.5,.5,1 and
    # precision 1, 1/2, 1/2, 1/3, 1/2.
    # VOC07: t = 0..0.5 (6 points) max precision 1; t = 0.6..1 (5 points) 0.5 -> 8.5 / 11.
    # VOC12: envelope 1 up to recall .5, then .5 up to 1 -> .5 * 1 + .5 * .5 = .75.
    args = (*_case(), GT_IMAGE, GT_BOXES, GT_DIFFICULT)
    assert ap.detection_ap(*args) == pytest.approx(8.5 / 11, abs=1e-6)
    assert ap.detection_ap(*args, method="voc12") == pytest.approx(0.75, abs=1e-6)
    _, rec, prec = ap.pr_curve(*args)
    np.testing.assert_allclose(rec, [0.5, 0.5, 0.5, 0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(prec, [1, 0.5, 0.5, 1 / 3, 0.5], rtol=1e-6)


def test_class_without_detections_and_without_positives():
    empty = (np.zeros(0, int), np.zeros((0, 4)), np.zeros(0))
    assert ap.detection_ap(*empty, GT_IMAGE, GT_BOXES, GT_DIFFICULT) == 0.0
    # Only difficult ground truth: no positives, AP undefined.
    only_difficult = (GT_IMAGE[1:2], GT_BOXES[1:2], GT_DIFFICULT[1:2])
    assert np.isnan(ap.detection_ap(*_case(), *only_difficult))


def test_leading_ignored_detection_and_score_ties_keep_input_order():
    # The difficult hit ranks first: precision is undefined there and ignored.
    gt = (np.array([0, 0]), np.array([[1, 1, 10, 10], [21, 21, 30, 30]]), np.array([False, True]))
    det = (np.array([0, 0]), np.array([[21, 21, 30, 30], [1, 1, 10, 10]]), np.array([0.9, 0.1]))
    assert ap.detection_ap(*det, *gt) == pytest.approx(1.0)
    # Tie between a false positive and a true positive: whichever comes first ranks first.
    # FP first: precision 0, 1/2 at recall 0, 1 -> every threshold sees 1/2 -> AP 0.5.
    tie = (np.array([5, 0]), np.array([[1, 1, 10, 10]] * 2), np.array([0.5, 0.5]))
    assert ap.detection_ap(*tie, *gt) == pytest.approx(0.5)
    swapped = tuple(a[::-1] for a in tie)
    assert ap.detection_ap(*swapped, *gt) == pytest.approx(1.0)


def test_highest_iou_box_is_taken_even_when_claimed():
    # gt A = cols 1..10, gt B = cols 3..12. d1 claims A; d2 = cols 2..11 has IoU 90/110 with
    # both: the first maximal box (A) is taken although it is claimed -> duplicate FP.
    gt = (np.array([0, 0]), np.array([[1, 1, 10, 10], [3, 1, 12, 10]]), np.array([False, False]))
    det = (np.array([0, 0]), np.array([[1, 1, 10, 10], [2, 1, 11, 10]]), np.array([0.9, 0.8]))
    _, rec, prec = ap.pr_curve(*det, *gt)
    np.testing.assert_allclose(rec, [0.5, 0.5])
    np.testing.assert_allclose(prec, [1.0, 0.5])
    # VOC07: recall reaches .5 only: 6 thresholds at precision 1 -> 6 / 11.
    assert ap.detection_ap(*det, *gt) == pytest.approx(6 / 11)


def test_input_checks():
    with pytest.raises(ValueError, match="must agree"):
        ap.detection_ap([0], np.ones((2, 4)), [1.0, 2.0], [0], np.ones((1, 4)), [False])
    with pytest.raises(ValueError, match="method"):
        ap.detection_ap(*_case(), GT_IMAGE, GT_BOXES, GT_DIFFICULT, method="coco")


def _random_class(rng):
    n_img = 12
    g = rng.integers(0, 4, n_img)
    gt_image = np.repeat(np.arange(n_img), g)
    x1, y1 = rng.integers(1, 30, g.sum()), rng.integers(1, 30, g.sum())
    w, h = rng.integers(3, 20, g.sum()), rng.integers(3, 20, g.sum())
    gt_boxes = np.stack([x1, y1, x1 + w, y1 + h], 1)
    gt_difficult = rng.random(g.sum()) < 0.2
    n = 80
    det_image = rng.integers(0, n_img + 2, n)
    src = rng.integers(0, len(gt_boxes), n)
    det_boxes = np.clip(gt_boxes[src] + rng.integers(-3, 4, (n, 4)), 1, None)
    det_boxes[:, 2:] = np.maximum(det_boxes[:, 2:], det_boxes[:, :2])
    det_image[: n // 2] = gt_image[src[: n // 2]]  # half near a real box of their image
    det_scores = np.round(rng.random(n), 1)  # ties
    return det_image, det_boxes, det_scores, gt_image, gt_boxes, gt_difficult


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("method", ["voc07", "voc12"])
def test_matches_literal_devkit_loop(seed, method):
    args = _random_class(np.random.default_rng(seed))
    got, rec, prec = ap.pr_curve(*args, method=method)
    want, wrec, wprec = devkit.voc_ap_literal(*args, method=method)
    assert got == pytest.approx(want, abs=1e-6)
    np.testing.assert_allclose(rec, wrec, rtol=1e-6)
    np.testing.assert_allclose(prec, wprec, rtol=1e-6)


def test_kernels_under_jit():
    det_image, det_boxes, det_scores = _case()
    rows, gt_b, gt_d, gt_v = ap._pack_ground_truth(GT_IMAGE, GT_BOXES, GT_DIFFICULT, det_image)
    match = jax.jit(lambda *a: ap.match_detections(*a, iou_threshold=0.5))
    order, tp, fp = match(
        rows,
        det_boxes.astype(np.float32),
        det_scores.astype(np.float32),
        np.ones(5, bool),
        gt_b,
        gt_d,
        gt_v,
    )
    np.testing.assert_array_equal(np.asarray(order), np.arange(5))
    np.testing.assert_array_equal(np.asarray(tp), [1, 0, 0, 0, 1])
    np.testing.assert_array_equal(np.asarray(fp), [0, 1, 0, 1, 0])
    # with 2 positives: recall 0.5, 0.5, 0.5, 0.5, 1 at precision 1, 1/2, 1/2, 1/3, 1/2; voc07 by
    # hand: t = 0..0.5 -> 1 (6 points), t = 0.6..1 -> 0.5 (5 points).
    got = jax.jit(lambda t, f: ap.average_precision(t, f, 2, method="voc07"))(tp, fp)
    assert float(got) == pytest.approx((6 + 5 * 0.5) / 11, abs=1e-6)


@pytest.mark.parametrize("npos", range(1, 61))
def test_voc07_reaches_every_level_it_reaches_exactly(npos):
    """All detections true positives: every level up to recall 1 is reached at precision 1, so
    AP = 1 exactly, also where the device's cumTP / npos and k / 10 round differently (npos
    10, 20, 50: recall 0.7 and 0.9; npos / npos)."""
    voc07 = jax.jit(lambda t, f: ap.average_precision(t, f, npos))
    assert float(voc07(np.ones(npos, np.float32), np.zeros(npos, np.float32))) == 1.0
    if npos % 10 == 0:  # the first 7 / 10 true, the rest false: levels 0..0.7 reached -> 8 / 11
        tp = (np.arange(npos) < 7 * npos // 10).astype(np.float32)
        assert float(voc07(tp, 1 - tp)) == pytest.approx(8 / 11, abs=1e-6)
