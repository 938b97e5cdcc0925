"""Occlusion maps against a literal loop over occluder positions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.visualize import occlusion
from tests.visualize.conftest import forward


def _loop(module, params, image, *, label, size, stride, value, layer):
    """One forward per position, occluded in numpy; the feature map picked on the clean image."""
    _, taps = forward(module, params, jnp.asarray(image[None]))
    clean = np.asarray(taps[layer])[0]
    summed = clean if clean.ndim == 1 else clean.sum(axis=(0, 1))
    fmap = int(np.argmax(summed))
    rows = (image.shape[0] - size) // stride + 1
    cols = (image.shape[1] - size) // stride + 1
    out = {k: np.zeros((rows, cols)) for k in ("prob", "top_class", "activity")}
    for i in range(rows):
        for j in range(cols):
            x = occlusion.occluded_image(image, top=i * stride, left=j * stride, size=size,
                                         value=value)  # fmt: skip
            logits, taps = forward(module, params, jnp.asarray(x[None]))
            prob = np.asarray(jax.nn.softmax(logits[0]))
            act = np.asarray(taps[layer])[0]
            out["prob"][i, j] = prob[label]
            out["top_class"][i, j] = np.argmax(prob)
            out["activity"][i, j] = act[fmap] if act.ndim == 1 else act[..., fmap].sum()
    return out


@pytest.mark.parametrize(
    "size,stride,value,layer,chunk",
    [(5, 3, 0.0, "conv5", 4), (7, 4, 1.5, "conv2", 32), (4, 5, -1.0, "fc6", 3)],
)
def test_equals_literal_loop(tiny, size, stride, value, layer, chunk):
    module, params, images = tiny
    image = images[0]
    got = occlusion.occlusion_maps(module, params, image, label=2, size=size, stride=stride,
                                   value=value, layer=layer, chunk=chunk)  # fmt: skip
    want = _loop(module, params, image, label=2, size=size, stride=stride, value=value,
                 layer=layer)  # fmt: skip
    assert got["prob"].shape == ((19 - size) // stride + 1,) * 2
    np.testing.assert_allclose(got["prob"], want["prob"], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(got["top_class"], want["top_class"])
    np.testing.assert_allclose(got["activity"], want["activity"], rtol=1e-5, atol=1e-5)
    assert np.ptp(want["prob"]) > 0  # the occluder changes the output somewhere


def test_positions_fully_inside():
    assert occlusion.grid_shape(227, 227, 32, 8) == (25, 25)  # (227 - 32) // 8 + 1
    assert occlusion.grid_shape(19, 10, 10, 4) == (3, 1)
    with pytest.raises(ValueError, match="does not fit"):
        occlusion.grid_shape(19, 10, 11, 4)


def test_bad_arguments_raise(tiny):
    module, params, images = tiny
    with pytest.raises(ValueError, match="label"):
        occlusion.occlusion_maps(module, params, images[0], label=3, size=4, stride=4)
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        occlusion.occlusion_maps(module, params, images, label=0, size=4, stride=4)
    with pytest.raises(ValueError, match="layer"):
        occlusion.occlusion_maps(module, params, images[0], label=0, size=4, stride=4,
                                 layer="pool5")  # fmt: skip
