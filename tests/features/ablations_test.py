"""Tests for jaxcnn.features.ablations on small hand-checked arrays, through jax.jit and
jax.vmap."""

import jax
import numpy as np
import pytest

from jaxcnn.features import ablations

jax.config.update("jax_numpy_rank_promotion", "raise")

# One image, 2×2 positions, 2 channels. Channel 0 = [[1, -2], [3, 0]], channel 1 = [[0, 0],
# [0, 0]] (a silent map), written as x[n, h, w, f].
X = np.array([[[[1.0, 0.0], [-2.0, 0.0]], [[3.0, 0.0], [0.0, 0.0]]]], np.float32)


def test_binarize_conv_and_fc():
    got = jax.jit(ablations.binarize)(X)
    want = np.array([[[[1, 0], [0, 0]], [[1, 0], [0, 0]]]], np.float32)
    np.testing.assert_array_equal(got, want)
    fc = np.array([[0.5, -1.0, 0.0, 2.0]], np.float32)
    np.testing.assert_array_equal(jax.jit(ablations.binarize)(fc), [[1, 0, 0, 1]])
    assert got.dtype == X.dtype


def test_sp_max_and_sp_max_bin():
    np.testing.assert_array_equal(jax.jit(ablations.sp_max)(X), [[3.0, 0.0]])
    np.testing.assert_array_equal(jax.jit(ablations.sp_max_bin)(X), [[1.0, 0.0]])


def test_max_loc_bin_hand_checked_and_ties():
    # Channel 0's max 3 sits at (h=1, w=0); the silent channel 1 stays all zero.
    want = np.zeros_like(X)
    want[0, 1, 0, 0] = 1.0
    np.testing.assert_array_equal(jax.jit(ablations.max_loc_bin)(X), want)
    # Tie between (0, 1) and (1, 0): the first in row-major order, (0, 1), wins.
    tie = np.array([[[[0.0], [5.0]], [[5.0], [1.0]]]], np.float32)
    want = np.zeros_like(tie)
    want[0, 0, 1, 0] = 1.0
    np.testing.assert_array_equal(jax.jit(ablations.max_loc_bin)(tie), want)


def test_sp_shuffle_permutes_positions_per_image_with_channels_together():
    n, h, w, f = 6, 3, 3, 4
    # Every (image, position) gets a unique channel vector, so the permutation can be read off.
    x = np.arange(n * h * w * f, dtype=np.float32).reshape(n, h, w, f)
    key = jax.random.PRNGKey(0)
    out = np.asarray(jax.jit(ablations.sp_shuffle)(x, key))
    perms = []
    for i in range(n):
        src = x[i].reshape(h * w, f)
        dst = out[i].reshape(h * w, f)
        # Each output position holds one complete input column: channels moved together.
        perm = [int(np.flatnonzero((src == row).all(axis=1))[0]) for row in dst]
        np.testing.assert_array_equal(dst, src[perm])
        assert sorted(perm) == list(range(h * w))  # a permutation of the positions
        perms.append(tuple(perm))
    assert len(set(perms)) > 1  # different images, different permutations
    assert any(p != tuple(range(h * w)) for p in perms)
    # Deterministic in the key; another key gives another shuffle.
    np.testing.assert_array_equal(out, jax.jit(ablations.sp_shuffle)(x, key))
    assert not np.array_equal(out, jax.jit(ablations.sp_shuffle)(x, jax.random.PRNGKey(1)))


def test_vmap_over_a_leading_axis():
    stack = np.stack([X, 2 * X, -X])  # e.g. three snapshots
    np.testing.assert_array_equal(
        jax.vmap(ablations.sp_max)(stack), [[[3.0, 0.0]], [[6.0, 0.0]], [[2.0, 0.0]]]
    )
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    out = jax.jit(jax.vmap(ablations.sp_shuffle))(stack, keys)
    assert out.shape == stack.shape
    np.testing.assert_array_equal(np.sort(out.reshape(3, -1), 1), np.sort(stack.reshape(3, -1), 1))
    np.testing.assert_array_equal(
        jax.vmap(ablations.max_loc_bin)(stack), np.stack([ablations.max_loc_bin(a) for a in stack])
    )


def test_apply_ablation_registry():
    key = jax.random.PRNGKey(0)
    assert ablations.apply_ablation("none", X).shape == X.shape
    np.testing.assert_array_equal(ablations.apply_ablation("sp-max-bin", X), [[1.0, 0.0]])
    np.testing.assert_array_equal(
        ablations.apply_ablation("sp-shuffle", X, key=key), ablations.sp_shuffle(X, key)
    )
    fc = np.ones((2, 5), np.float32)
    np.testing.assert_array_equal(ablations.apply_ablation("binarize", fc), fc)


@pytest.mark.parametrize("name", ["sp-shuffle", "sp-max", "sp-max-bin", "max-loc-bin"])
def test_fc_features_accept_only_binarize(name):
    with pytest.raises(ValueError, match="accept only 'binarize'"):
        ablations.apply_ablation(name, np.ones((2, 5), np.float32), key=jax.random.PRNGKey(0))


def test_bad_names_and_missing_key():
    with pytest.raises(ValueError, match="unknown ablation"):
        ablations.apply_ablation("sp-mean", X)
    with pytest.raises(ValueError, match="PRNG key"):
        ablations.apply_ablation("sp-shuffle", X)
