"""nms: hand-worked cases and a literal loop (R-CNN's nms.m), through jax.jit and vmap."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.detect import devkit
from jaxcnn.detect import suppress as nms


def test_hand_worked_cases():
    b = np.array([[1, 1, 10, 10], [2, 2, 11, 11], [20, 20, 30, 30]])
    # IoU(0, 1) = 81 / 119 = 0.68 > 0.3: box 1 is suppressed; box 2 is disjoint.
    np.testing.assert_array_equal(nms.nms(b, [0.9, 0.8, 0.7], iou_threshold=0.3), [0, 2])
    # Kept indices come in descending score order, not input order.
    np.testing.assert_array_equal(nms.nms(b, [0.1, 0.8, 0.7], iou_threshold=0.3), [1, 2])
    # At IoU exactly the threshold a box survives (suppression needs IoU > threshold):
    # [1,1,10,10] vs [1,1,10,5]: 50 / 100 = 0.5.
    half = np.array([[1, 1, 10, 10], [1, 1, 10, 5]])
    np.testing.assert_array_equal(nms.nms(half, [1.0, 0.5], iou_threshold=0.5), [0, 1])
    np.testing.assert_array_equal(nms.nms(half, [1.0, 0.5], iou_threshold=0.49), [0])
    # Chain: 0 suppresses 1 (IoU 0.68); 1 would suppress 2 (IoU 0.68) but is gone, and
    # IoU(0, 2) = 64 / 136 = 0.47 <= 0.5, so 2 is kept.
    chain = np.array([[1, 1, 10, 10], [2, 2, 11, 11], [3, 3, 12, 12]])
    np.testing.assert_array_equal(nms.nms(chain, [3.0, 2.0, 1.0], iou_threshold=0.5), [0, 2])
    # Equal scores: input order decides who suppresses whom.
    np.testing.assert_array_equal(nms.nms(b[:2], [0.5, 0.5], iou_threshold=0.3), [0])
    np.testing.assert_array_equal(nms.nms(b[1::-1], [0.5, 0.5], iou_threshold=0.3), [0])
    assert nms.nms(np.zeros((0, 4)), [], iou_threshold=0.3).shape == (0,)


def test_input_checks():
    with pytest.raises(ValueError, match="scores"):
        nms.nms(np.ones((2, 4)), [1.0], iou_threshold=0.3)
    with pytest.raises(ValueError, match="finite"):
        nms.nms(np.ones((1, 4)), [np.nan], iou_threshold=0.3)


def _random_boxes(rng, n):
    x1, y1 = rng.integers(1, 40, n), rng.integers(1, 40, n)
    return np.stack([x1, y1, x1 + rng.integers(0, 25, n), y1 + rng.integers(0, 25, n)], 1)


@pytest.mark.parametrize("seed", range(4))
def test_matches_literal_loop(seed):
    rng = np.random.default_rng(seed)
    n = 60
    b = _random_boxes(rng, n)
    s = np.round(rng.random(n), 1)  # many ties
    for t in (0.3, 0.5):
        np.testing.assert_array_equal(
            nms.nms(b, s, iou_threshold=t), devkit.nms_literal(b, s, iou_threshold=t)
        )


def test_kernel_under_jit_and_vmap_with_padding():
    rng = np.random.default_rng(7)
    k, n = 3, 40
    b = np.stack([_random_boxes(rng, n) for _ in range(k)]).astype(np.float32)
    s = rng.random((k, n)).astype(np.float32)
    valid = np.arange(n)[None, :] < np.array([[40], [25], [0]])
    kernel = jax.jit(jax.vmap(functools.partial(nms.nms_mask, iou_threshold=0.3)))
    keep = np.asarray(kernel(jnp.asarray(b), jnp.asarray(s), jnp.asarray(valid)))
    for c in range(k):
        m = int(valid[c].sum())
        want = np.zeros(n, bool)
        want[devkit.nms_literal(b[c, :m], s[c, :m], iou_threshold=0.3)] = True
        np.testing.assert_array_equal(keep[c], want)


def test_public_contract_names():
    import jaxcnn.detect as detect

    assert detect.nms is nms.nms
    assert callable(detect.detection_ap) and callable(detect.load_rcnn_proposals)


def test_numpy_port_agrees_with_the_literal_loop():
    rng = np.random.default_rng(11)
    b, s = _random_boxes(rng, 50), np.round(rng.random(50), 1)
    np.testing.assert_array_equal(
        devkit.nms_numpy(b, s, iou_threshold=0.3), devkit.nms_literal(b, s, iou_threshold=0.3)
    )
