"""preprocess: Caffe crops and mirroring against hand-computed windows, the mean's storage.

These are host-side numpy transforms (the pipeline feeds numpy to the devices), so they are
checked against index arithmetic worked by hand rather than through jax.jit.
"""

import os

import numpy as np
import pytest

from jaxcnn.data import preprocess


def _image(size):
    # pixel (y, x, c) = 20 y + 3 x + c (below 256 for sizes up to 6)
    y, x, c = np.meshgrid(np.arange(size), np.arange(size), np.arange(3), indexing="ij")
    return (y * 20 + x * 3 + c).astype(np.uint8)


def test_crop_subtract_window_and_mirror_by_hand():
    image = _image(6)
    mean = np.full((6, 6, 3), 1.0, np.float32)
    mean[2, 1] = 5.0  # the mean at the window's top-left pixel (y=2, x=1)
    out = preprocess.crop_subtract(image, mean, crop=3, y=2, x=1, mirror=False)
    # out[0, 0] = image[2, 1] - mean[2, 1] = (40 + 3 + c) - 5
    np.testing.assert_array_equal(out[0, 0], [38, 39, 40])
    # out[2, 2] = image[4, 3] - 1 = 80 + 9 + c - 1
    np.testing.assert_array_equal(out[2, 2], [88, 89, 90])
    mirrored = preprocess.crop_subtract(image, mean, crop=3, y=2, x=1, mirror=True)
    # Caffe subtracts the mean at the unmirrored position, then flips: column 2 <- column 0
    np.testing.assert_array_equal(mirrored[0, 2], [38, 39, 40])
    np.testing.assert_array_equal(mirrored, out[:, ::-1])
    assert out.dtype == np.float32


def test_center_crop_offsets():
    # Caffe: offset (S - crop) // 2 -> 4 for 72 -> 64 and 14 for 256 -> 227.
    for size, crop, off in [(72, 64, 4), (256, 227, 14), (7, 4, 1)]:
        image = np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)
        mean = np.zeros((size, size, 3), np.float32)
        out = preprocess.center_crop(image, mean, crop=crop)
        np.testing.assert_array_equal(out, image[off : off + crop, off : off + crop])


def test_random_crop_covers_all_offsets_and_mirrors_half():
    image = _image(6)
    mean = np.zeros((6, 6, 3), np.float32)
    rng = np.random.default_rng(0)
    seen, mirrors = set(), 0
    for _ in range(400):
        out = preprocess.random_crop(image, mean, crop=4, rng=rng)
        mirrored = out[0, 0, 0] > out[0, -1, 0]  # x increases pixel values
        corner = out[0, -1] if mirrored else out[0, 0]
        y, rest = divmod(int(corner[0]), 20)
        seen.add((y, rest // 3))
        mirrors += int(mirrored)
    assert seen == {(y, x) for y in range(3) for x in range(3)}  # offsets 0..S-crop inclusive
    assert 150 < mirrors < 250


def test_resize_image():
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, 10:] = 200
    out = preprocess.resize_image(image, 8)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert out[:, 0].max() == 0 and out[:, -1].min() == 200
    same = np.zeros((8, 8, 3), np.uint8)
    assert preprocess.resize_image(same, 8) is same


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: preprocess.resize_image(np.zeros((4, 4)), 2), "uint8"),
        (
            lambda: preprocess.center_crop(np.zeros((4, 5, 3)), np.zeros((4, 5, 3)), crop=2),
            "square",
        ),
        (lambda: preprocess.center_crop(np.zeros((4, 4, 3)), np.zeros((5, 5, 3)), crop=2), "mean"),
        (lambda: preprocess.center_crop(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), crop=5), "crop"),
        (
            lambda: preprocess.crop_subtract(
                np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), crop=2, y=3, x=0, mirror=False
            ),
            "leaves",
        ),
        (lambda: preprocess.mean_from_sum(np.zeros((2, 2, 3)), 0), "zero images"),
    ],
)
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_mean_roundtrip_and_kinds(tmp_path):
    total = np.arange(2 * 2 * 3, dtype=np.float64).reshape(2, 2, 3) * 4
    mean = preprocess.mean_from_sum(total, 4)
    np.testing.assert_allclose(mean.image, total / 4)
    np.testing.assert_allclose(mean.channel, (total / 4).mean(axis=(0, 1)))
    path = preprocess.mean_path(str(tmp_path), "train(seed=3)", 2)
    assert path.name == "jaxcnn-mean-train_seed=3_-2.npz"
    preprocess.save_mean(mean, path)
    loaded = preprocess.load_mean(path)
    np.testing.assert_array_equal(loaded.image, mean.image)
    assert loaded.count == 4
    np.testing.assert_allclose(loaded.array("channel")[1, 0], mean.channel)
    with pytest.raises(ValueError, match="kind"):
        loaded.array("pixel")
    with pytest.raises(FileNotFoundError, match="no stored mean"):
        preprocess.load_mean(tmp_path / "missing.npz")
    os.truncate(path, os.path.getsize(path) // 2)  # a truncated mean: named, not BadZipFile
    with pytest.raises(ValueError, match=f"the stored mean {path} is damaged .* delete it"):
        preprocess.load_mean(path)
