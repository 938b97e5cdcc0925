"""evaluate: top-k + NMS per class through jit against a loop; AP per class; result files."""

import json

import numpy as np
import pytest

from jaxcnn.detect import devkit, evaluate, results, roidb


def _image(rng, b):
    x1, y1 = rng.integers(1, 40, b), rng.integers(1, 40, b)
    boxes = np.stack([x1, y1, x1 + rng.integers(2, 20, b), y1 + rng.integers(2, 20, b)], 1)
    return rng.normal(size=(b, 3)).astype(np.float32), boxes.astype(np.float32)


def test_detect_matches_topk_then_literal_nms():
    rng = np.random.default_rng(0)
    images = [_image(rng, b) for b in (30, 5, 17)]
    dets = evaluate.detect(
        [s for s, _ in images], [b for _, b in images], top_k=10, iou_threshold=0.3, chunk=2
    )
    for c in range(3):
        for i, (s, b) in enumerate(images):
            top = np.argsort(-s[:, c], kind="stable")[:10]
            kept = top[devkit.nms_literal(b[top], s[top, c], iou_threshold=0.3)]
            at = dets.image[c] == i
            got = sorted(zip(dets.scores[c][at].tolist(), dets.boxes[c][at].tolist(), strict=True))
            want = sorted(zip(s[kept, c].tolist(), b[kept].tolist(), strict=True))
            assert got == want


def test_evaluate_and_result_files(tmp_path):
    gt = [
        roidb.GroundTruth(
            "a", 50, 50, np.array([[1, 1, 10, 10]]), np.array([0]), np.array([False])
        ),
        roidb.GroundTruth("b", 50, 50, np.array([[5, 5, 20, 20]]), np.array([1]), np.array([True])),
    ]
    dets = evaluate.Detections(
        image=[np.array([0, 1]), np.zeros(0, int)],
        boxes=[np.array([[1, 1, 10, 10], [1, 1, 10, 10]], np.float32), np.zeros((0, 4))],
        scores=[np.array([0.2, 0.9], np.float32), np.zeros(0)],
    )
    aps, curves = evaluate.evaluate(dets, gt)
    # Class 0: FP (image 1) then TP: precision 1/2 at recall 1 -> AP 0.5. Class 1: only a
    # difficult box -> no positives -> NaN.
    assert aps[0] == pytest.approx(0.5) and np.isnan(aps[1])
    table = results.ap_table(
        ["disc", "star"], aps, method="voc07", iou_threshold=0.5, meta={"layer": "fc7"}
    )
    assert table["mAP"] == pytest.approx(0.5)
    paths = results.write_tables(table, str(tmp_path / "ap"))
    assert json.load(open(paths[0]))["per_class"]["disc"] == pytest.approx(0.5)
    csv_text = open(paths[1]).read()
    assert "disc,50.0,voc07,0.5" in csv_text and "mAP,50.0" in csv_text
    assert "| disc | star | mAP |" in open(paths[2]).read()
    png = results.plot_pr_curves(curves, ["disc", "star"], aps, str(tmp_path / "pr.png"))
    img = np.zeros((50, 50, 3), np.uint8)
    top = results.plot_top_detections(
        [img, img], [[(0, 0.9, (1, 1, 10, 10))], []], ["disc"], str(tmp_path / "top.png")
    )
    assert all((tmp_path / p).stat().st_size > 1000 for p in (png, top))


def _gt(label, box, difficult=False):
    return roidb.GroundTruth("x", 50, 50, np.array([box]), np.array([label]), np.array([difficult]))


def test_resample_images_repeats_and_drops_images_with_their_detections():
    gt = [_gt(0, [1, 1, 10, 10]), _gt(1, [5, 5, 20, 20]), _gt(0, [2, 2, 30, 30])]
    dets = evaluate.Detections(
        image=[np.array([2, 0, 1, 0]), np.array([1])],
        boxes=[np.arange(16, dtype=np.float32).reshape(4, 4), np.ones((1, 4), np.float32)],
        scores=[np.array([0.1, 0.2, 0.3, 0.4], np.float32), np.array([0.5], np.float32)],
    )
    got, got_gt = evaluate.resample_images(dets, gt, [0, 0, 2])
    # class 0: old image 0 holds rows 1 and 3 (in that order), old image 2 row 0
    np.testing.assert_array_equal(got.image[0], [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(got.scores[0], np.float32([0.2, 0.4, 0.2, 0.4, 0.1]))
    np.testing.assert_array_equal(got.boxes[0], dets.boxes[0][[1, 3, 1, 3, 0]])
    assert got.image[1].size == 0 and got.boxes[1].shape == (0, 4)  # old image 1 not drawn
    assert [g.boxes[0, 2] for g in got_gt] == [10, 10, 30]


def test_bootstrap_map_is_the_map_of_each_drawn_test_set():
    rng = np.random.default_rng(1)
    gt = [_gt(int(c), [1, 1, 10, 10], bool(d)) for c, d in [(0, 0), (1, 0), (0, 1), (1, 0), (0, 0)]]
    n = 3 * len(gt)
    dets = evaluate.Detections(
        image=[rng.integers(0, len(gt), n) for _ in range(2)],
        boxes=[
            np.tile(np.float32([1, 1, 10, 10]), (n, 1)) + rng.integers(0, 3, (n, 4))
            for _ in range(2)
        ],
        scores=[rng.normal(size=n).astype(np.float32) for _ in range(2)],
    )
    maps = evaluate.bootstrap_map(dets, gt, resamples=4)
    for r, m in enumerate(maps):  # the same draw, built by hand
        pick = np.random.default_rng(r).integers(0, len(gt), len(gt))
        image, boxes, scores = [], [], []
        for c in range(2):
            rows = [(j, k) for j, i in enumerate(pick) for k in np.nonzero(dets.image[c] == i)[0]]
            image.append(np.array([j for j, _ in rows], np.int64))
            boxes.append(dets.boxes[c][[k for _, k in rows]].reshape(-1, 4))
            scores.append(dets.scores[c][[k for _, k in rows]])
        aps, _ = evaluate.evaluate(evaluate.Detections(image, boxes, scores), [gt[i] for i in pick])
        assert m == pytest.approx(np.nanmean(aps))
    assert len(set(maps)) > 1  # the draws differ
