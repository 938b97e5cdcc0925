"""Top-k activations against a numpy argsort with ties, one-shot and streamed."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.visualize import topk


def _reference(acts, k, distinct):
    """Per channel: sort candidates by (-value, image, row-major position) with np.lexsort."""
    acts = np.asarray(acts, np.float64)
    maps = acts[:, None, :] if acts.ndim == 2 else acts.reshape(acts.shape[0], -1, acts.shape[-1])
    width = 1 if acts.ndim == 2 else acts.shape[2]
    n, p, f = maps.shape
    out_v, out_i, out_yx = [], [], []
    for c in range(f):
        img, pos = np.meshgrid(np.arange(n), np.arange(p), indexing="ij")
        val = maps[..., c]
        if distinct:  # each image's first maximum
            pos = np.argmax(val, axis=1)[:, None]
            val = np.take_along_axis(val, pos, axis=1)
            img = np.arange(n)[:, None]
        val, img, pos = val.ravel(), img.ravel(), pos.ravel()
        order = np.lexsort((pos, img, -val))[:k]
        out_v.append(val[order])
        out_i.append(img[order])
        out_yx.append(np.stack([pos[order] // width, pos[order] % width], axis=1))
    return np.array(out_v), np.array(out_i), np.array(out_yx)


def _tied_acts(shape, seed):
    """Small integers: many exact ties across images, positions and within maps."""
    return np.random.default_rng(seed).integers(0, 4, size=shape).astype(np.float32)


@pytest.mark.parametrize("distinct", [True, False])
@pytest.mark.parametrize("shape,k", [((7, 3, 4, 5), 4), ((9, 6), 9), ((5, 2, 2, 3), 5)])
def test_equals_numpy_argsort_with_ties(shape, k, distinct):
    acts = _tied_acts(shape, seed=sum(shape))
    got = topk.top_activations(acts, k=k, distinct_images=distinct)
    want = _reference(acts, k, distinct)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("distinct", [True, False])
def test_stream_equals_one_shot(distinct):
    acts = _tied_acts((11, 3, 3, 4), seed=3)
    batches = []
    for start in range(0, 11, 4):  # batches of 4, the last padded with a garbage row
        real = acts[start : start + 4]
        pad = 4 - real.shape[0]
        batches.append({
            "image": np.concatenate([real, np.full((pad, 3, 3, 4), 99.0, np.float32)]),
            "mask": np.arange(4) < real.shape[0],
            "index": np.concatenate([np.arange(start, start + real.shape[0]), -np.ones(pad)]),
        })  # fmt: skip
    identity = lambda params, x: x  # noqa: E731  ("images" are the activations here)
    got = topk.stream_top_activations(
        identity, None, batches, num_features=4, k=5, distinct_images=distinct
    )
    want = topk.top_activations(acts, k=5, distinct_images=distinct)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_stream_running_count_and_too_few_candidates():
    acts = _tied_acts((6, 5), seed=1)
    batches = [{"image": acts[:4]}, {"image": acts[4:]}]
    got = topk.stream_top_activations(lambda p, x: x, None, batches, num_features=5, k=3)
    for g, w in zip(got, _reference(acts, 3, True), strict=True):
        np.testing.assert_array_equal(g, w)
    with pytest.raises(ValueError, match="fewer than k=7"):
        topk.stream_top_activations(lambda p, x: x, None, batches, num_features=5, k=7)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="k must be in"):
        topk.top_activations(jnp.zeros((3, 2, 2, 1)), k=4)
    with pytest.raises(ValueError, match=r"\[N, H, W, F\]"):
        topk.top_activations(jnp.zeros((3, 2, 1)), k=1)
