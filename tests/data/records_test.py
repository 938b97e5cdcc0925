"""records: each bad-input case of the module table gives its documented outcome."""

import io

import numpy as np
import pytest
from PIL import Image

from jaxcnn.data import records

WHERE = "voc2007/test[7] (000123.jpg)"


def _encode(array, mode=None, fmt="JPEG"):
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format=fmt)
    return buf.getvalue()


def _objects(bbox, label, difficult=None, truncated=None):
    k = len(label)
    return {
        "bbox": np.asarray(bbox, np.float32).reshape(-1, 4),
        "label": np.asarray(label),
        "is_difficult": np.zeros(k, bool) if difficult is None else np.asarray(difficult),
        "is_truncated": np.zeros(k, bool) if truncated is None else np.asarray(truncated),
    }


def test_rgb_jpeg_passes_unchanged():
    image = np.full((10, 12, 3), (200, 30, 30), np.uint8)
    out, fixes = records.decode_image(_encode(image), where=WHERE)
    assert out.shape == (10, 12, 3) and fixes == []
    np.testing.assert_allclose(out.astype(int), image.astype(int), atol=6)  # JPEG loss


def test_grayscale_jpeg_is_converted():
    gray = np.full((9, 9), 77, np.uint8)
    out, fixes = records.decode_image(_encode(gray, mode="L"), where=WHERE)
    assert out.shape == (9, 9, 3) and fixes == ["converted L"]
    np.testing.assert_allclose(out.astype(int), 77, atol=2)


def test_cmyk_jpeg_is_converted():
    # CMYK (0, 255, 255, 0) is red: PIL's CMYK->RGB gives R = 255 - C, G = 255 - M, B = 255 - Y
    # (with K = 0).
    cmyk = np.zeros((8, 8, 4), np.uint8)
    cmyk[..., 1:3] = 255
    out, fixes = records.decode_image(_encode(cmyk, mode="CMYK"), where=WHERE)
    assert out.shape == (8, 8, 3) and fixes == ["converted CMYK"]
    np.testing.assert_allclose(out[0, 0].astype(int), (255, 0, 0), atol=8)


def test_rgba_png_is_converted():
    rgba = np.zeros((6, 7, 4), np.uint8)
    rgba[..., 2] = 250
    rgba[..., 3] = 255
    out, fixes = records.decode_image(_encode(rgba, mode="RGBA", fmt="PNG"), where=WHERE)
    assert fixes == ["converted RGBA"]
    np.testing.assert_array_equal(out[0, 0], (0, 0, 250))


def test_decoded_gray_array_is_replicated_and_four_channels_rejected():
    out, fixes = records.decode_image(np.full((5, 6), 3, np.uint8), where=WHERE)
    assert out.shape == (5, 6, 3) and fixes == ["gray to RGB"]
    out, fixes = records.decode_image(np.full((5, 6, 1), 3, np.uint8), where=WHERE)
    assert out.shape == (5, 6, 3) and fixes == ["gray to RGB"]
    with pytest.raises(records.BadExampleError, match=r"voc2007/test\[7\].*shape \(5, 6, 4\)"):
        records.decode_image(np.zeros((5, 6, 4), np.uint8), where=WHERE)
    with pytest.raises(records.BadExampleError, match="dtype float32"):
        records.decode_image(np.zeros((5, 6, 3), np.float32), where=WHERE)


def test_tiny_and_undecodable_images_rejected_with_their_name():
    with pytest.raises(records.BadExampleError, match=r"000123.jpg.*3x8 pixels"):
        records.decode_image(np.zeros((3, 8, 3), np.uint8), where=WHERE)
    with pytest.raises(records.BadExampleError, match=r"voc2007/test\[7\].*cannot be decoded"):
        records.decode_image(b"not an image", where=WHERE)
    out, _ = records.decode_image(np.zeros((3, 8, 3), np.uint8), where=WHERE, min_side=2)
    assert out.shape == (3, 8, 3)


def test_boxes_crossing_the_border_are_clipped_and_reported():
    objects, fixes = records.validate_objects(
        _objects([[-0.1, 0.2, 0.5, 1.3], [0.1, 0.1, 0.2, 0.2]], [3, 4]), where=WHERE, num_classes=20
    )
    np.testing.assert_allclose(objects["bbox"], [[0.0, 0.2, 0.5, 1.0], [0.1, 0.1, 0.2, 0.2]])
    assert fixes == ["clipped 1 boxes"]


@pytest.mark.parametrize(
    "objects, message",
    [
        (
            {**_objects([[0, 0, 1, 1]] * 3, [1, 2, 3]), "is_difficult": np.zeros(2, bool)},
            r"unequal lengths \{'bbox': 3, 'label': 3, 'difficult': 2, 'truncated': 3\}",
        ),
        (_objects([[0.5, 0, 0.4, 1]], [1]), "ymin > ymax"),
        (_objects([[0, 0.6, 1, 0.5]], [1]), "xmin > xmax"),
        (_objects([[0, 0, np.nan, 1]], [1]), "non-finite"),
        (_objects([[0, 0, 1, 1]], [20]), r"labels \[20\] outside \[0, 20\)"),
    ],
)
def test_invalid_objects_rejected_with_their_name(objects, message):
    with pytest.raises(records.BadExampleError, match=message) as info:
        records.validate_objects(objects, where=WHERE, num_classes=20)
    assert str(info.value).startswith(WHERE)


def test_image_labels_voc_convention():
    objects, _ = records.validate_objects(
        _objects([[0, 0, 1, 1]] * 4, [2, 5, 5, 7], difficult=[False, True, False, True]),
        where=WHERE,
        num_classes=10,
    )
    # class 2: clear -> 1; class 5: clear + difficult -> 1; class 7: difficult only -> -1
    np.testing.assert_array_equal(
        records.image_labels(objects, 10), [0, 0, 1, 0, 0, 1, 0, -1, 0, 0]
    )


def test_image_without_objects_is_kept():
    raw = {
        "image": np.zeros((8, 8, 3), np.uint8),
        "objects": _objects(np.zeros((0, 4)), []),
        "image/filename": b"empty.jpg",
    }
    record = records.normalise_detection(raw, where=WHERE, id_key="image/filename", num_classes=20)
    assert record["objects"]["bbox"].shape == (0, 4) and record["id"] == "empty.jpg"
    np.testing.assert_array_equal(record["labels"], np.zeros(20))


def test_classification_label_range():
    raw = {"image": np.zeros((8, 8, 3), np.uint8), "label": 12, "file_name": "a.jpg"}
    record = records.normalise_classification(raw, where=WHERE, id_key="file_name", num_classes=13)
    assert record["label"] == 12 and record["id"] == "a.jpg" and record["fixes"] == ()
    with pytest.raises(records.BadExampleError, match=r"label 12 outside \[0, 12\)"):
        records.normalise_classification(raw, where=WHERE, id_key="file_name", num_classes=12)
