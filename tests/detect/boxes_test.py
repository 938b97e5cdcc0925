"""detect.boxes: +1-pixel IoU by hand, the normalised <-> pixel mapping, pixel-box warping."""

import jax
import numpy as np
import pytest

from jaxcnn.detect import boxes


def test_iou_by_hand_with_the_plus_one_convention():
    a = np.array([[1, 1, 10, 10], [1, 1, 1, 1]], np.float32)  # 10x10 = 100 px; one pixel
    b = np.array([[2, 2, 11, 11], [11, 1, 20, 10], [10, 10, 10, 10]], np.float32)
    # a0-b0: 9x9 = 81 / (100 + 100 - 81) = 81/119; a0-b1 touch nowhere (x 11 > 10): 0;
    # a0-b2: the pixel (10, 10) is inside a0: 1 / 100; a1-b*: a1 = pixel (1,1): 0, 0, 0.
    want = np.array([[81 / 119, 0.0, 1 / 100], [0.0, 0.0, 0.0]])
    got = jax.jit(boxes.iou_matrix)(a, b)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
    np.testing.assert_allclose(boxes.iou_matrix_np(a, b), want, rtol=1e-12)
    np.testing.assert_allclose(boxes.area(a), [100, 1])


def test_check_boxes_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        boxes.check_boxes(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="x2 < x1"):
        boxes.check_boxes([[5, 1, 4, 3]])
    with pytest.raises(ValueError, match="non-finite"):
        boxes.check_boxes([[1, 1, np.nan, 3]])


def test_normalised_round_trip_and_toyworld_boxes():
    # Stored boxes are VOC's 1-based pixels / size (docs/methods.md §3.5): rows 6..15 and
    # columns 5..14 (1-based) of a 20 x 20 image are stored as (6, 5, 15, 14) / 20.
    norm = np.array([[6, 5, 15, 14]]) / 20
    np.testing.assert_array_equal(boxes.from_normalised(norm, 20, 20), [[5, 6, 14, 15]])
    rng = np.random.default_rng(0)
    x1, y1 = rng.integers(1, 30, 50), rng.integers(1, 20, 50)
    px = np.stack([x1, y1, x1 + rng.integers(0, 10, 50), y1 + rng.integers(0, 10, 50)], 1)
    back = boxes.from_normalised(boxes.to_normalised(px, 37, 41), 37, 41)
    np.testing.assert_array_equal(back, px)


def test_warp_pixel_box_without_padding_is_the_exact_crop():
    # Pins the mapping to jaxcnn.data.boxes.warp_box: columns x1..x2, rows y1..y2 (1-based).
    image = np.random.default_rng(1).integers(0, 255, (20, 30, 3)).astype(np.uint8)
    mean = np.full((8, 8, 3), 3.0, np.float32)
    out = boxes.warp_pixel_box(image, np.array([5, 7, 12, 14]), mean, out_size=8, pad=0)
    np.testing.assert_allclose(out, image[6:14, 4:12].astype(np.float32) - 3.0)


def test_clip():
    got = boxes.clip(np.array([[-3, 0, 50, 12]]), 10, 40)
    np.testing.assert_array_equal(got, [[1, 1, 40, 10]])
