"""Tests for jaxcnn.selectivity.cka: invariances and a brute-force U-statistic reference."""

import itertools

import jax
import numpy as np
import pytest

from jaxcnn.selectivity import cka as K


def u_statistic_hsic(x, y):
    """HSIC_1 as the U-statistic of Song et al. (2012), averaged over all ordered 4-tuples of
    distinct examples (i, j, q, r) of k_ij l_ij + k_ij l_qr - 2 k_ij l_iq; O(n^4), float64."""
    gk, gl = x @ x.T, y @ y.T
    vals = [
        gk[i, j] * gl[i, j] + gk[i, j] * gl[q, r] - 2 * gk[i, j] * gl[i, q]
        for i, j, q, r in itertools.permutations(range(x.shape[0]), 4)
    ]
    return np.mean(vals)


def _reps(seed=0, b=3, n=7):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(b, n, 2, 3))  # conv-like [B, n, p, F]; flattened inside
    y = np.concatenate(
        [x.reshape(b, n, 6)[..., :4] @ rng.normal(size=(4, 5)), rng.normal(size=(b, n, 2))], axis=-1
    )
    return x.astype(np.float32), y.astype(np.float32)


def test_hsic_unbiased_matches_u_statistic():
    x, y = _reps()
    x0, y0 = x[0].reshape(7, -1).astype(np.float64), y[0].astype(np.float64)
    got = jax.jit(K.hsic_unbiased)((x0 @ x0.T).astype(np.float32), (y0 @ y0.T).astype(np.float32))
    np.testing.assert_allclose(got, u_statistic_hsic(x0, y0), rtol=1e-4)


def test_minibatch_cka_matches_reference_formula():
    x, y = _reps()
    xs = [a.reshape(7, -1).astype(np.float64) for a in x]
    ys = [a.astype(np.float64) for a in y]
    num = sum(u_statistic_hsic(a, b) for a, b in zip(xs, ys, strict=True))
    den = np.sqrt(sum(u_statistic_hsic(a, a) for a in xs) * sum(u_statistic_hsic(b, b) for b in ys))
    got = jax.jit(K.cka_minibatch)(x, y)
    np.testing.assert_allclose(got, num / den, rtol=1e-4)
    assert 0.2 < float(got) < 1.0  # related but not identical representations


def test_cka_identity_orthogonal_and_scale_invariance():
    x, y = _reps(seed=1, b=2, n=16)
    cka = jax.jit(K.cka_minibatch)
    np.testing.assert_allclose(cka(x, x), 1.0, atol=1e-5)
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(7, 7)))
    base = cka(x, y)
    np.testing.assert_allclose(cka(x, (y @ q).astype(np.float32)), base, rtol=1e-4)
    np.testing.assert_allclose(cka(x, 7.5 * y), base, rtol=1e-4)
    np.testing.assert_allclose(cka(x, y + 3.0), base, rtol=1e-4)  # translation (centring)


def test_cka_matrix():
    x, y = _reps(seed=3)
    layers, names, m = K.cka_matrix(
        {"conv5": x, "fc6": y}, {"a": {"conv5": x, "fc6": y}, "b": {"conv5": 2 * x, "fc6": x}}
    )
    assert layers == ["conv5", "fc6"] and names == ["a", "b"] and m.shape == (2, 2)
    np.testing.assert_allclose(m[:, 0], 1.0, atol=1e-5)
    np.testing.assert_allclose(m[0, 1], 1.0, atol=1e-5)
    np.testing.assert_allclose(m[1, 1], K.cka_minibatch(y, x), rtol=1e-6)
    with pytest.raises(ValueError, match="lacks"):
        K.cka_matrix({"conv5": x}, {"a": {"fc6": y}})


def test_bad_input():
    with pytest.raises(ValueError, match="n >= 4"):
        K.hsic_unbiased(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="square"):
        K.hsic_unbiased(np.zeros((4, 5)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="equal B, n"):
        K.cka_minibatch(np.zeros((2, 5, 3)), np.zeros((2, 6, 3)))
    with pytest.raises(ValueError, match="float"):
        K.hsic_terms(np.zeros((5, 3), int), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="same examples"):
        K.hsic_terms(np.zeros((5, 3)), np.zeros((6, 3)))
    with pytest.raises(ValueError, match=r"\[..., 3\]"):
        K.cka_from_terms(np.zeros(2))
