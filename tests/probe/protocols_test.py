"""Tests for jaxcnn.probe.protocols: protocols against scikit-learn run independently on the same
folds."""

import dataclasses
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import average_precision_score, balanced_accuracy_score
from sklearn.model_selection import KFold
from sklearn.svm import LinearSVC

from jaxcnn import metrics
from jaxcnn.probe import protocols, svm

COSTS = (0.01, 1.0, 100.0)
# The protocols' own solver tolerance is loose (its effect on mAP is measured by
# benchmarks/probes.py); exact agreement with scikit-learn is checked at tight tolerance.
TIGHT = svm.SolverOptions()
SMALL = dataclasses.replace(protocols.VOC07_VISSL, costs=COSTS, solver=TIGHT)
RCNN = dataclasses.replace(protocols.RCNN, solver=TIGHT)


def _svc(cost, protocol):
    return LinearSVC(
        C=cost,
        class_weight={1: protocol.positive_weight, -1: 1},
        intercept_scaling=protocol.intercept_scaling,
        dual=False,
        tol=1e-8,
        max_iter=100000,
    )


def _fit(clf, x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(x.astype(np.float64), y)


def _sklearn_cv_table(x, y_pm, protocol):
    """Mean held-out step AP per cost, scikit-learn KFold + LinearSVC (independent of jaxcnn)."""
    table = []
    for cost in protocol.costs:
        aps = []
        for tr, ho in KFold(protocol.num_folds).split(x):
            clf = _fit(_svc(cost, protocol), x[tr], y_pm[tr])
            aps.append(average_precision_score(y_pm[ho] == 1, clf.decision_function(x[ho])))
        table.append(np.mean(aps))
    return np.array(table)


def _data(n, d, k, seed, difficult=0.1):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d))
    labels = np.where(rng.random((n, k)) < 0.3, 1, -1).astype(np.int8)
    if k > 1:  # every image shows at least one class
        labels[:, 0] = np.where(labels.sum(1) == -k, 1, labels[:, 0])
    x = np.maximum(0.4 * ((labels > 0) @ centers) + rng.normal(size=(n, d)), 0).astype(np.float32)
    labels[(labels == 1) & (rng.random((n, k)) < difficult)] = 0
    return x, labels


def test_scale_features():
    rng = np.random.default_rng(0)
    tr, te = rng.random((6, 4)).astype(np.float32), rng.random((3, 4)).astype(np.float32)
    tr[0] = 0.0  # a dead row stays zero
    l2_tr, l2_te = protocols.scale_features(tr, te, protocol=protocols.VOC07_VISSL)
    np.testing.assert_allclose(np.linalg.norm(l2_tr[1:], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(l2_tr[0], 0.0)
    s_tr, s_te = protocols.scale_features(tr, te, protocol=protocols.RCNN)
    factor = 20.0 / np.linalg.norm(tr, axis=1).mean()  # training statistics only
    np.testing.assert_allclose(s_tr, tr * factor, rtol=1e-5)
    np.testing.assert_allclose(s_te, te * factor, rtol=1e-5)


@pytest.mark.parametrize("d", [20, 70])  # primal form (n > 2(d+1)) and Gram form
def test_vissl_protocol_matches_sklearn(d):
    x, labels = _data(120, d, 2, seed=d)
    xt, lt = _data(80, d, 2, seed=d + 1)
    res = protocols.multilabel_probe(x, labels, xt, lt, protocol=SMALL)
    xs, xts = (np.asarray(a) for a in protocols.scale_features(x, xt, protocol=SMALL))
    assert res.ap_method == "voc12" and res.cv_ap_KxL.shape == (2, len(COSTS))
    for k in range(2):
        y = np.where(labels[:, k] == 1, 1, -1)  # difficult -> negative in training
        table = _sklearn_cv_table(xs, y, SMALL)
        np.testing.assert_allclose(res.cv_ap_KxL[k], table, atol=5e-3)
        cost = COSTS[int(np.argmax(table))]
        assert res.cost_K[k] == cost
        scores = _fit(_svc(cost, SMALL), xs, y).decision_function(xts).astype(np.float32)
        ap = metrics.average_precision(scores, lt[:, k] == 1, method="voc12", where=lt[:, k] != 0)
        assert res.ap_K[k] == pytest.approx(float(ap), abs=2e-3)
    assert res.mean_ap == pytest.approx(np.mean(res.ap_K))


def test_cost_is_chosen_without_the_test_split():
    """The test labels of class 0 are the ranking of the SVM at the cost that cross-validation
    likes least, so that cost is test-optimal (AP 1); a probe that looked at the test split
    when choosing would pick it instead of the CV choice. (Shapes as in the test above, so the
    compiled functions are reused.)"""
    x, labels = _data(120, 70, 2, seed=7, difficult=0.0)
    xt, lt = _data(80, 70, 2, seed=8)
    xs, xts = (np.asarray(a) for a in protocols.scale_features(x, xt, protocol=SMALL))
    y = labels[:, 0].astype(int)
    cv_table = _sklearn_cv_table(xs, y, SMALL)
    worst = int(np.argmin(cv_table))
    oracle = _fit(_svc(COSTS[worst], SMALL), xs, y).decision_function(xts)
    lt[:, 0] = np.where(oracle > np.quantile(oracle, 0.7), 1, -1)
    test_ap = []
    for cost in COSTS:
        scores = _fit(_svc(cost, SMALL), xs, y).decision_function(xts)
        test_ap.append(average_precision_score(lt[:, 0] == 1, scores))
    assert int(np.argmax(test_ap)) == worst and test_ap[worst] == pytest.approx(1.0)
    assert int(np.argmax(cv_table)) != worst  # the construction separates the two choices
    res = protocols.multilabel_probe(x, labels, xt, lt, protocol=SMALL)
    assert res.cost_K[0] == COSTS[int(np.argmax(cv_table))]


def test_rcnn_protocol_matches_sklearn():
    x, labels = _data(120, 20, 2, seed=3)
    xt, lt = _data(80, 20, 2, seed=4)
    res = protocols.multilabel_probe(x, labels, xt, lt, protocol=RCNN)
    assert res.cv_ap_KxL is None and res.ap_method == "voc07"
    np.testing.assert_array_equal(res.cost_K, [1e-3, 1e-3])
    xs, xts = (np.asarray(a) for a in protocols.scale_features(x, xt, protocol=RCNN))
    for k in range(2):
        clf = _fit(_svc(1e-3, RCNN), xs, np.where(labels[:, k] == 1, 1, -1))
        want = clf.decision_function(xts)
        np.testing.assert_allclose(res.test_scores_NxK[:, k], want, atol=2e-3 * np.abs(want).max())


@pytest.mark.parametrize("with_val", [True, False])
def test_multiclass_one_vs_rest(with_val):
    rng = np.random.default_rng(5)
    k, d = 4, 12
    centers = 1.5 * rng.normal(size=(k, d))
    make = lambda n: (lambda y: (np.maximum(centers[y] + rng.normal(size=(n, d)), 0), y))(
        rng.integers(0, k, n)
    )
    (x, y), (xv, yv), (xt, yt) = make(90), make(45), make(60)
    x, xv, xt = (a.astype(np.float32) for a in (x, xv, xt))
    protocol = dataclasses.replace(protocols.SUN_OVR, costs=COSTS, solver=TIGHT)
    kw = dict(val_x=xv, val_y=yv) if with_val else {}
    res = protocols.multiclass_probe(x, y, xt, yt, num_classes=k, protocol=protocol, **kw)
    xs, xts = (np.asarray(a) for a in protocols.scale_features(x, xt, protocol=protocol))

    def ovr_predict(cost, xa, ya, xb):
        scores = [
            _fit(_svc(cost, protocol), xa, np.where(ya == c, 1, -1)).decision_function(xb)
            for c in range(k)
        ]
        return np.argmax(np.stack(scores, 1), 1)

    if with_val:
        xvs = np.asarray(protocols.scale_features(x, xv, protocol=protocol)[1])
        sel = [balanced_accuracy_score(yv, ovr_predict(c, xs, y, xvs)) for c in COSTS]
        assert res.selected_on == "validation"
    else:
        sel = [
            np.mean(
                [
                    balanced_accuracy_score(y[ho], ovr_predict(c, xs[tr], y[tr], xs[ho]))
                    for tr, ho in KFold(3).split(xs)
                ]
            )
            for c in COSTS
        ]
    np.testing.assert_allclose(res.selection_accuracy_L, sel, atol=1e-6)
    assert res.cost == COSTS[int(np.argmax(sel))]
    want = balanced_accuracy_score(yt, ovr_predict(res.cost, xs, y, xts))
    assert res.accuracy == pytest.approx(want, abs=1e-6)


def test_bad_inputs():
    x, labels = _data(30, 5, 2, seed=0)
    with pytest.raises(ValueError, match="example 3"):
        bad = labels.copy()
        bad[3, 1] = 2
        protocols.multilabel_probe(x, bad, x, labels, protocol=SMALL)
    with pytest.raises(ValueError, match="shapes disagree"):
        protocols.multilabel_probe(x, labels, x[:, :4], labels, protocol=SMALL)
    with pytest.raises(ValueError, match="float"):
        protocols.multilabel_probe(x.astype(int), labels, x, labels, protocol=SMALL)
    with pytest.raises(ValueError, match="outside"):
        protocols.multiclass_probe(x, np.full(30, 5), x, np.zeros(30, int), num_classes=3)
    with pytest.raises(ValueError, match="exactly one cost"):
        dataclasses.replace(protocols.RCNN, costs=(1.0, 2.0))
    with pytest.raises(ValueError, match="ascending"):
        dataclasses.replace(protocols.VOC07_VISSL, costs=(1.0, 0.1))
