"""Tests for jaxcnn.selectivity.grandmother against scikit-learn, numpy loops and hand cases."""

import functools

import jax
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from jaxcnn.selectivity import grandmother as G


def _boxes(seed=0, n=40, f=6, c=4, decimals=None, relu=True):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    labels[:c] = np.arange(c)
    scores = rng.normal(size=(n, f))
    scores = np.maximum(scores, 0) if relu else scores  # ReLU: ties at 0
    scores[:, 0] += 2.0 * (labels == 1)  # a filter that prefers class 1
    if decimals is not None:
        scores = np.round(scores, decimals)  # many ties
    return scores.astype(np.float32), labels


def _voc07_no_ties(s, pos):
    """VOC 2007 devkit 11-point AP for distinct scores."""
    order = np.argsort(-s)
    tp = np.cumsum(pos[order])
    fp = np.cumsum(~pos[order])
    rec, prec = tp / pos.sum(), tp / (tp + fp)
    return np.mean([prec[rec >= t].max() if np.any(rec >= t) else 0 for t in np.arange(11) / 10])


def test_filter_ap_step_matches_sklearn_with_ties():
    scores, labels = _boxes(decimals=1)
    fn = jax.jit(functools.partial(G.filter_ap, num_classes=4, method="step"))
    ap = np.asarray(fn(scores, labels))
    want = [
        [average_precision_score(labels == c, scores[:, f]) for f in range(6)] for c in range(4)
    ]
    np.testing.assert_allclose(ap, want, rtol=1e-5)
    assert np.argmax(ap[1]) == 0  # the planted class-1 filter


def test_filter_ap_voc07_matches_numpy_devkit():
    scores, labels = _boxes(seed=1, relu=False)  # distinct scores
    ap = jax.jit(functools.partial(G.filter_ap, num_classes=4))(scores, labels)
    want = [[_voc07_no_ties(scores[:, f], labels == c) for f in range(6)] for c in range(4)]
    np.testing.assert_allclose(ap, want, rtol=1e-5)


def test_top_filters_and_pr_curves():
    ap = np.array([[0.2, np.nan, 0.9, 0.2], [0.1, 0.3, 0.3, 0.0]], np.float32)
    np.testing.assert_array_equal(G.top_filters(ap, 3), [[2, 0, 3], [1, 2, 0]])
    # Hand case: 4 boxes, filter 1 ranks box 3 (class 1), box 0 (class 0), box 2, box 1.
    scores = np.array([[0.0, 3.0], [1.0, 1.0], [0.5, 2.0], [0.2, 4.0]], np.float32)
    labels = np.array([0, 1, 0, 1])
    ap = G.filter_ap(scores, labels, 2, method="step")
    filters, precision, recall = G.top_filter_pr_curves(scores, labels, 2, ap, top=1)
    # Class 1 by filter 0: boxes 1 (+), 2 (-), 3 (+), 0 (-): AP = (1 + 2/3)/2; filter 1:
    # boxes 3 (+), 0 (-), 2 (-), 1 (+): AP = (1 + 1/2)/2. Filter 0 is the top one.
    np.testing.assert_allclose(ap[1], [5 / 6, 3 / 4], rtol=1e-6)
    assert filters[1, 0] == 0
    np.testing.assert_allclose(precision[1, 0], [1, 1 / 2, 2 / 3, 1 / 2], rtol=1e-6)
    np.testing.assert_allclose(recall[1, 0], [0.5, 0.5, 1, 1], rtol=1e-6)


def test_precision_curves_match_literal_loop():
    scores, labels = _boxes(seed=2, decimals=1)
    fn = jax.jit(functools.partial(G.precision_curves, num_classes=4, num_thresholds=9))
    tau, prec = fn(scores, labels)
    for f in range(6):
        taus = np.linspace(scores[:, f].min(), scores[:, f].max(), 9)
        np.testing.assert_allclose(tau[:, f], taus, rtol=1e-6)
        for t, th in enumerate(np.asarray(tau)[:, f]):
            keep = scores[:, f] >= th
            want = [np.mean(labels[keep] == c) for c in range(4)]
            np.testing.assert_allclose(prec[t, :, f], want, rtol=1e-6)
    area = G.precision_area(prec)
    np.testing.assert_allclose(area, np.trapezoid(prec, np.linspace(0, 1, 9), axis=0), rtol=1e-6)


def test_filters_needed_hand_cases():
    ks = (1, 2, 5, 10)
    ap = np.array(
        [
            [0.1, 0.3, 0.5, 0.6],  # 50 %: 0.3 -> k = 2; 90 %: 0.54 -> k = 10
            [0.7, 0.2, 0.5, 0.6],  # not monotone: k = 1 already exceeds both
            [0.25, 0.45, 0.5, 0.5],  # exactly at 50 % and 90 %: ">=" counts
            [np.nan] * 4,  # class without positives
        ]
    )
    np.testing.assert_array_equal(G.filters_needed(ap, ks), [[2, 1, 1, -1], [10, 1, 2, -1]])
    with pytest.raises(ValueError, match="ascending"):
        G.filters_needed(ap, (1, 5, 2, 10))
    with pytest.raises(ValueError, match="ks"):
        G.filters_needed(ap, (1, 2))
    with pytest.raises(ValueError, match="fractions"):
        G.filters_needed(ap, ks, fractions=(1.5,))


def test_top_set_overlap_hand_case():
    # F = 6, k = 2: S_0 = {0, 1}, S_1 = {1, 2}, S_2 = {4, 5} (importance ties go to index).
    imp = np.array([[5, 4, 1, 0, 0, 0], [0, 3, 3, 1, 0, 0], [0, 0, 0, 0, 2, 2]], np.float32)
    got = jax.jit(functools.partial(G.top_set_overlap, k=2))(imp)
    np.testing.assert_allclose(got, [[1, 0.5, 0], [0.5, 1, 0], [0, 0, 1]])
    assert G.overlap_chance(50, 256) == pytest.approx(0.195, abs=5e-4)  # the paper's chance
    with pytest.raises(ValueError, match="k <= "):
        G.overlap_chance(7, 6)
    with pytest.raises(ValueError, match="1 <= k <= F"):
        G.top_set_overlap(imp, k=7)


@pytest.mark.parametrize(
    "scores, labels, match",
    [
        (np.zeros(4, np.float32), np.zeros(4, int), "shape"),
        (np.zeros((4, 2), int), np.zeros(4, int), "floating"),
        (np.zeros((4, 2), np.float32), np.zeros(3, int), "labels"),
        (np.zeros((4, 2), np.float32), np.zeros(4, np.float32), "labels"),
    ],
)
def test_bad_input(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        G.filter_ap(scores, labels, 2)
    with pytest.raises(ValueError, match=match):
        G.precision_curves(scores, labels, 2)


def test_greedy_subsets_match_sklearn_linear_svc():
    # Per class: LinearSVC on all filters ranks them by |w|; LinearSVC on each top-k subset,
    # scored by scikit-learn's AP on the test boxes. Same objective as jaxcnn.probe.svm.
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(5)
    centres = rng.normal(size=(3, 8)) * 1.2

    def split(n):
        y = np.arange(n) % 3
        return np.maximum(centres[y] + rng.normal(size=(n, 8)), 0).astype(np.float32), y

    (xtr, ytr), (xte, yte) = split(60), split(45)
    out = G.greedy_subsets(xtr, ytr, xte, yte, 3, C=0.5, ks=(1, 2, 3, 5, 40), ap_method="step")
    assert out["ks"] == (1, 2, 3, 5, 8)  # capped at F, F always last
    svc = lambda: LinearSVC(C=0.5, loss="squared_hinge", tol=1e-10, max_iter=100_000)
    for c in range(3):
        full = svc().fit(xtr, np.where(ytr == c, 1, -1))
        np.testing.assert_allclose(out["importance"][c], np.abs(full.coef_[0]), atol=2e-3)
        ranking = np.argsort(-np.abs(full.coef_[0]), stable=True)
        np.testing.assert_array_equal(out["ranking"][c], ranking)
        for j, k in enumerate(out["ks"]):
            keep = ranking[:k]
            model = svc().fit(xtr[:, keep], np.where(ytr == c, 1, -1))
            want = average_precision_score(yte == c, model.decision_function(xte[:, keep]))
            np.testing.assert_allclose(out["ap"][c, j], want, atol=1e-4)
    needed = G.filters_needed(out["ap"], out["ks"])
    assert needed.shape == (2, 3) and np.all(needed >= 1)
