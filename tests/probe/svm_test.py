"""fit_linear_svm against scikit-learn's LinearSVC (liblinear) on small problems."""

import functools
import warnings

import jax
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from jaxcnn.probe import svm

jax.config.update("jax_numpy_rank_promotion", "raise")

_fit = jax.jit(svm.fit_linear_svm, static_argnames="options")


def _problem(n, d, seed):
    rng = np.random.default_rng(seed)
    x = np.abs(rng.normal(size=(n, d))).astype(np.float32)
    x[:, :3] += rng.normal(size=(n, 1)).astype(np.float32) > 0
    y = np.where(x[:, 0] - x[:, 1] + 0.7 * rng.normal(size=n) > 0, 1.0, -1.0).astype(np.float32)
    return x, y


def _sklearn_decision(x, y, *, C, positive_weight=1.0, intercept_scaling=1.0, sample_weight=None):
    clf = LinearSVC(
        C=C,
        loss="squared_hinge",
        penalty="l2",
        dual=False,  # liblinear's primal Newton solver converges tightly at small tol
        tol=1e-10,
        max_iter=100000,
        intercept_scaling=intercept_scaling,
        class_weight={1: positive_weight, -1: 1.0},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x.astype(np.float64), y, sample_weight=sample_weight)
    return clf.decision_function(x)


def _rel_err(got, want):
    return np.max(np.abs(got - want)) / np.max(np.abs(want))


# (n, d): Gram form (n ≤ 2(d+1)) and primal form (n > 2(d+1)).
@pytest.mark.parametrize("n,d", [(50, 80), (200, 12)])
@pytest.mark.parametrize("C", [0.01, 1.0, 10.0])
def test_matches_linearsvc(n, d, C):
    x, y = _problem(n, d, seed=n + d)
    for pw, s in ((1.0, 1.0), (2.0, 10.0)):
        w, b = _fit(x, y, C=C, positive_weight=pw, intercept_scaling=s)
        got = x @ np.asarray(w) + float(b)
        want = _sklearn_decision(x, y, C=C, positive_weight=pw, intercept_scaling=s)
        assert _rel_err(got, want) < 1e-3, (n, d, C, pw, s)


def test_many_problems_and_sample_weights():
    x, y1 = _problem(60, 30, seed=3)
    rng = np.random.default_rng(4)
    y = np.stack([y1, np.where(rng.random(60) < 0.3, 1.0, -1.0), -y1], 1).astype(np.float32)
    costs = np.array([0.1, 1.0, 5.0], np.float32)
    mask = (rng.random((60, 3)) < 0.8).astype(np.float32)  # e.g. CV folds / difficult items
    w, b = _fit(x, y, C=costs, positive_weight=2.0, sample_weight=mask)
    assert w.shape == (30, 3) and b.shape == (3,)
    for k in range(3):
        keep = mask[:, k] > 0
        want = _sklearn_decision(x[keep], y[keep, k], C=costs[k], positive_weight=2.0)
        got = x[keep] @ np.asarray(w[:, k]) + float(b[k])
        assert _rel_err(got, want) < 1e-3, k
    # Weights other than 0/1 scale the loss like scikit-learn's sample_weight.
    sw = rng.uniform(0.5, 2.0, size=60).astype(np.float32)
    w, b = _fit(x, y1, C=1.0, sample_weight=sw)
    want = _sklearn_decision(x, y1, C=1.0, sample_weight=sw)
    assert _rel_err(x @ np.asarray(w) + float(b), want) < 1e-3


def test_gram_and_primal_forms_agree():
    x, y = _problem(40, 25, seed=5)  # 40 ≤ 52: Gram form
    y_nk = np.stack([y, -y], 1)
    cost = np.ones((40, 2), np.float32)
    a, f_gram, info = jax.jit(svm.solve_gram)(x @ x.T + 1.0, y_nk, cost)
    v, f_primal, _ = jax.jit(functools.partial(svm.solve_primal, intercept_scaling=1.0))(
        x, y_nk, cost
    )
    assert bool(info.converged_K.all())
    np.testing.assert_allclose(f_gram, f_primal, atol=1e-3)
    np.testing.assert_allclose(a.T @ np.concatenate([x, np.ones((40, 1))], 1), v.T, atol=1e-3)


def test_bad_inputs_raise():
    x, y = _problem(10, 4, seed=0)
    with pytest.raises(ValueError, match="x must be"):
        svm.fit_linear_svm(x[0], y, C=1.0)
    with pytest.raises(ValueError, match="y must be"):
        svm.fit_linear_svm(x, y[:5], C=1.0)
    with pytest.raises(ValueError, match="-1 and \\+1"):
        svm.fit_linear_svm(x, (y > 0).astype(np.float32), C=1.0)
    with pytest.raises(ValueError, match="C must be"):
        svm.fit_linear_svm(x, y, C=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight"):
        svm.fit_linear_svm(x, y, C=1.0, sample_weight=np.ones(3))


@pytest.mark.parametrize("n,d", [(50, 80), (200, 12)])
def test_feature_mask_fits_each_problem_on_its_features_only(n, d):
    x, y = _problem(n, d, seed=7)
    rng = np.random.default_rng(1)
    mask = rng.random((d, 3)) < 0.5
    mask[0, 0], mask[:, 2] = False, True  # column 2: every feature; column 0 lacks feature 0
    ys = np.stack([y, -y, y], axis=1)
    w, b = _fit(x, ys, C=1.0, feature_mask=mask)
    w, b = np.asarray(w), np.asarray(b)
    assert np.all(w[~mask] == 0.0)
    for k in range(3):
        cols = np.flatnonzero(mask[:, k])
        want = _sklearn_decision(x[:, cols], ys[:, k], C=1.0)
        assert _rel_err(x @ w[:, k] + b[k], want) < 1e-3, k
    with pytest.raises(ValueError, match="feature_mask"):
        svm.fit_linear_svm(x, ys, C=1.0, feature_mask=mask[:, :2])
