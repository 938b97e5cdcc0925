"""images: originals kept byte for byte, sizes computed by hand, broken files named."""

import io

import numpy as np
import pytest
from PIL import Image

from jaxcnn.data.archives import images
from tests.data.archives.originals import jpeg


def _decode(data):
    with Image.open(io.BytesIO(data)) as pil:
        return pil.format, pil.mode, pil.size


def test_keep_jpeg_keeps_rgb_and_gray_and_reencodes_the_rest():
    rgb, gray = jpeg(40, 30, 0), jpeg(40, 30, 1, "L")
    assert images.keep_jpeg(rgb) == (rgb, [])
    assert images.keep_jpeg(gray) == (gray, ["grayscale JPEG (stored, converted to RGB when read)"])
    for original, note in [
        (jpeg(40, 30, 2, "CMYK"), "re-encoded JPEG CMYK as RGB JPEG"),
        (jpeg(40, 30, 3, fmt="PNG"), "re-encoded PNG RGB as RGB JPEG"),
    ]:
        data, notes = images.keep_jpeg(original)
        assert notes == [note] and _decode(data) == ("JPEG", "RGB", (40, 30))
    assert images.size_of(rgb) == (40, 30)


def test_sizes_by_hand():
    # 600 x 400 = 240,000 px > 120,000: both sides x sqrt(1/2) -> round(424.26) x round(282.84)
    data, notes = images.limit_pixels(jpeg(600, 400, 0), 120_000)
    assert _decode(data) == ("JPEG", "RGB", (424, 283)) and notes == []
    data, notes = images.limit_pixels(jpeg(20, 20, 1, "L", fmt="PNG"), 120_000)
    assert _decode(data)[1:] == ("RGB", (20, 20)) and notes == ["converted PNG L to RGB"]
    # shorter side 300 -> 256: 500 x 300 becomes round(500 * 256 / 300) = 427 x 256
    data, _ = images.shrink_shorter_side(jpeg(500, 300, 2), 256)
    assert _decode(data) == ("JPEG", "RGB", (427, 256))
    small = jpeg(200, 100, 3)
    assert images.shrink_shorter_side(small, 256) == (small, ["kept: shorter side <= 256"])
    pixels = np.asarray(Image.open(io.BytesIO(images.limit_pixels(jpeg(3, 2, 4), 10)[0])))
    assert pixels.shape == (2, 3, 3)
    assert images.limit_pixels(jpeg(3, 2, 4), 100)[1] == [
        "tiny image (a side < 4 px, stored, rejected when read)"
    ]


def test_broken_images_raise():
    with pytest.raises(images.UndecodableImage, match="not an image"):
        images.keep_jpeg(b"definitely not an image")
    whole = jpeg(200, 200, 0)
    truncated = whole[: len(whole) // 2]  # headers intact, entropy-coded data cut
    for fn in (images.keep_jpeg, lambda d: images.limit_pixels(d, 100)):
        with pytest.raises(images.UndecodableImage, match="cannot be decoded"):
            fn(truncated)
