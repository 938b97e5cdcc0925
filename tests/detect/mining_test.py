"""mining: the hard-negative cache rules on a tiny problem; the batched solver against
fit_linear_svm (itself tested against LinearSVC)."""

import types

import numpy as np
import pytest

from jaxcnn.detect import mining
from jaxcnn.probe import svm

CFG = mining.MiningConfig()


def test_select_hard_and_evict_thresholds():
    z = np.array([[-1.0001], [-1.00009], [0.5], [2.0], [3.0]])
    overlap = np.array([[0.0], [0.0], [0.3], [0.29], [0.0]])
    cached = np.array([[False], [False], [False], [False], [True]])
    enter = mining.select_hard(z, overlap, cached, first_time=False, cfg=CFG)
    # -1.0001 is not > -1.0001; overlap 0.3 is not a negative; a cached box does not re-enter.
    np.testing.assert_array_equal(enter[:, 0], [False, True, False, True, False])
    first = mining.select_hard(z, overlap, cached, first_time=True, cfg=CFG)
    np.testing.assert_array_equal(first[:, 0], [True, True, False, True, False])
    zc = np.array([[-1.2, -1.2001], [-1.2001, -5.0]])
    member = np.ones((2, 2), bool)
    easy = mining.easy_negatives(zc, member, np.array([True, False]), cfg=CFG)
    # Only the retrained class evicts, and only below -1.2.
    np.testing.assert_array_equal(easy, [[False, False], [True, False]])


def _entry(gt_label, overlap):
    overlap = np.asarray(overlap, np.float32)[:, None]
    is_gt = np.arange(len(overlap)) < len(gt_label)
    labels = np.concatenate([gt_label, -np.ones(len(overlap) - len(gt_label), int)])
    return types.SimpleNamespace(overlap=overlap, is_gt=is_gt, gt_label=labels)


def _tiny_run(limit):
    # One class, one feature; the fake solver always returns w = 1, b = 0, so a box's score
    # is its feature and the cache rules can be followed by hand.
    feats = [
        np.array([5.0, -1.1, -1.3, 0.2]),
        np.array([-1.00005, -1.0002, -1.5, 3.0]),
        np.array([-0.9, 0.0]),
    ]
    entries = [_entry([0], [1.0, 0.0, 0.1, 0.6]), _entry([], [0, 0, 0, 0]), _entry([], [0, 0])]
    calls = []

    def solve(x, y, cost, w, b):
        calls.append(sorted(x[(cost[:, 0] > 0) & (y[:, 0] < 0), 0].tolist()))
        return np.ones_like(w), np.zeros_like(b)

    cfg = mining.MiningConfig(retrain_limit=limit)
    det = mining.train_detectors(
        lambda i: feats[i][:, None], entries, scale=1.0, cfg=cfg, solve=solve
    )
    return calls, det


def test_cache_rules_by_hand():
    calls, det = _tiny_run(limit=2)
    # Image 0 (first): both negatives (overlap < 0.3) enter; trained; -1.3 < -1.2 is evicted.
    # Image 1: -1.00005 and 3.0 enter (> -1.0001), -1.0002 and -1.5 do not; 2 added, not > 2.
    # Image 2 (last): -0.9 and 0.0 enter; retrained on the 5 cached negatives; none evicted.
    assert calls == [pytest.approx([-1.3, -1.1]), pytest.approx([-1.1, -1.00005, -0.9, 0, 3])]
    assert [h["negatives"] for h in det.history] == [2, 5]
    calls, _ = _tiny_run(limit=1)  # 2 > 1 new negatives at image 1: retrained there too
    assert len(calls) == 3 and calls[1] == pytest.approx([-1.1, -1.00005, 3.0])


def test_feature_scale():
    x = np.array([[3.0, 4.0], [0.0, 10.0]])  # norms 5 and 10, mean 7.5
    assert mining.feature_scale(x) == pytest.approx(20 / 7.5)
    with pytest.raises(ValueError, match="zero"):
        mining.feature_scale(np.zeros((3, 2)))


def test_jax_solver_solves_due_columns_like_fit_linear_svm():
    rng = np.random.default_rng(0)
    n, d, k = 120, 6, 3
    x = rng.normal(size=(n, d)).astype(np.float32)
    labels = rng.integers(0, k, n)
    pos_x, pos_y = x[:30] + 1.0, labels[:30]
    cache = mining.Cache.empty(d, k)
    cache.add(0, x[30:], rng.random((n - 30, k)) < 0.7)
    # Classes 0 and 2 due, padded to 4 columns (the last two weigh nothing).
    xs, y, cost = mining._design(pos_x, pos_y, cache, [0, 2], 4, CFG)
    assert not cost[:, 2:].any()
    w, b = mining.jax_solver(CFG)(
        xs, y, cost, np.zeros((d, 4), np.float32), np.zeros(4, np.float32)
    )
    assert np.all(w[:, 2:] == 0) and np.all(b[2:] == 0)  # weight-0 problems stay at 0
    for j, c in enumerate((0, 2)):
        rows = cost[:, j] > 0
        # The rows class c uses: its positives and its cached negatives.
        assert rows.sum() == (pos_y == c).sum() + cache.member[:, c].sum()
        w_ref, b_ref = svm.fit_linear_svm(
            xs[rows], y[rows, j], C=CFG.C, positive_weight=2.0, intercept_scaling=10.0
        )
        got, want = xs[rows] @ w[:, j] + b[j], xs[rows] @ np.asarray(w_ref) + float(b_ref)
        np.testing.assert_allclose(got, want, atol=1e-3 * np.abs(want).max())
