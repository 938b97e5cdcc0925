"""Tests for jaxcnn.selectivity.sparsity against numpy counts and a hand-worked case."""

import jax
import numpy as np
import pytest

from jaxcnn.selectivity import sparsity as S


def test_nonzero_fraction_matches_numpy():
    rng = np.random.default_rng(0)
    acts = np.maximum(rng.normal(size=(9, 3, 3, 5)), 0).astype(np.float32)
    got = jax.jit(S.nonzero_fraction)(acts)
    want = [np.count_nonzero(a) / a.size for a in acts]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_summary_and_layers_hand_case():
    # Image 0: 1 of 4 non-zero (25 %), image 1: 3 of 4 (75 %): mean 50, std (ddof 0) 25.
    conv = np.array([[[0, 1.0], [0, 0]], [[2.0, 0], [1.0, 3.0]]], np.float32)
    fc = np.array([[0.0, 0.0], [0.0, 5.0]], np.float32)  # 0 % and 50 %: mean 25, std 25
    table = S.layer_sparsity({"conv5": conv, "fc6": fc})
    assert table["conv5"] == pytest.approx((50.0, 25.0))
    assert table["fc6"] == pytest.approx((25.0, 25.0))


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        S.nonzero_fraction(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="floating"):
        S.nonzero_fraction(np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="fractions"):
        S.sparsity_summary(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="mapping"):
        S.layer_sparsity({})
