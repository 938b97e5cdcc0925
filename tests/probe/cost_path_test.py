"""Tests for jaxcnn.probe.cost_path: folds, the blocked Gram matrix and the cross-validated cost
path."""

import warnings

import jax
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold
from sklearn.svm import LinearSVC

from jaxcnn.probe import cost_path, svm

TIGHT = svm.SolverOptions(ftol=1e-5, gtol=1e-6)
COSTS = (0.1, 1.0, 10.0)


def test_fold_indices_match_sklearn_kfold():
    train, tmask, held, hmask = cost_path.fold_indices(11, 3)
    for f, (tr, ho) in enumerate(KFold(3).split(np.zeros(11))):
        np.testing.assert_array_equal(train[f][tmask[f]], tr)
        np.testing.assert_array_equal(held[f][hmask[f]], ho)
    assert train.shape == (3, 8) and not tmask[1:].all()  # padded to the widest fold
    with pytest.raises(ValueError, match="num_folds"):
        cost_path.fold_indices(5, 1)


def test_holdout_indices():
    train, tmask, held, hmask = cost_path.holdout_indices(4, 2)
    np.testing.assert_array_equal(train, [[0, 1, 2, 3]])
    np.testing.assert_array_equal(held, [[4, 5]])
    assert tmask.all() and hmask.all()


@pytest.mark.parametrize("bounds", [(0, 7), (0, 3, 7), (0, 2, 5, 7)])
def test_blocked_gram(bounds):
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    got = cost_path._gram(x, 2.0, bounds=bounds)
    np.testing.assert_allclose(got, x @ x.T + 4.0, rtol=1e-5, atol=1e-5)


def _problem(n, d, seed):
    rng = np.random.default_rng(seed)
    x = np.abs(rng.normal(size=(n, d))).astype(np.float32)
    y = np.stack(
        [
            np.where(x[:, 0] - x[:, 1] + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0),
            np.where(x[:, 2] + 0.5 * rng.normal(size=n) > 0.8, 1.0, -1.0),
        ],
        1,
    ).astype(np.float32)
    return x, y


@pytest.mark.parametrize("d", [8, 40])  # primal form (n > 2(d+1)) and Gram form
def test_cv_scores_and_final_fit_match_sklearn(d):
    x, y = _problem(60, d, seed=d)
    base_cost = np.where(y > 0, 2.0, 1.0).astype(np.float32)
    fitter = cost_path.CostPathFitter(
        x, y, base_cost, costs=COSTS, intercept_scaling=1.0, options=TIGHT
    )
    assert (fitter.gram is not None) == (d == 40)
    folds = cost_path.fold_indices(60, 3)
    scores = np.asarray(fitter.cv_scores(folds))
    assert scores.shape == (3, len(COSTS), 20, 2)
    for f, (tr, ho) in enumerate(KFold(3).split(x)):
        for li, cost in enumerate(COSTS):
            for k in range(2):
                clf = LinearSVC(
                    C=cost, class_weight={1: 2.0, -1: 1.0}, dual=False, tol=1e-10, max_iter=100000
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    want = clf.fit(x[tr].astype(np.float64), y[tr, k]).decision_function(x[ho])
                got = scores[f, li, : len(ho), k]
                assert np.max(np.abs(got - want)) < 1e-3 * np.max(np.abs(want)), (f, cost, k)
    if d == 8:  # narrow primal problems are padded with zero features, whose weights stay 0
        assert fitter.x.shape == (60, cost_path.MIN_PRIMAL_WIDTH)
        assert not np.asarray(fitter.solutions)[:, :, d:-1].any()
    choice = np.array([2, 0])
    w, b = fitter.fit(choice)  # warm-started from the fold solutions
    assert w.shape == (d, 2)
    w_ref, b_ref = jax.jit(svm.fit_linear_svm, static_argnames="options")(
        x, y, C=np.array([COSTS[2], COSTS[0]]), positive_weight=2.0, options=TIGHT
    )
    decision = lambda w, b: x @ np.asarray(w) + np.asarray(b)
    np.testing.assert_allclose(decision(w, b), decision(w_ref, b_ref), atol=1e-3)


def test_zero_weight_rows_do_not_train():
    x, y = _problem(50, 30, seed=1)
    base_cost = np.ones_like(y)
    base_cost[40:] = 0.0  # e.g. validation rows appended for selection
    fitter = cost_path.CostPathFitter(
        x, y, base_cost, costs=COSTS, intercept_scaling=1.0, options=TIGHT
    )
    fitter.cv_scores(cost_path.holdout_indices(40, 10))
    w, b = fitter.fit(np.array([1, 1]))
    w_ref, b_ref = svm.fit_linear_svm(x[:40], y[:40], C=1.0, options=TIGHT)
    decision = lambda w, b: x @ np.asarray(w) + np.asarray(b)
    np.testing.assert_allclose(decision(w, b), decision(w_ref, b_ref), atol=1e-3)
