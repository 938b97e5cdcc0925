"""Tests for jaxcnn.metrics against scikit-learn, the VOC devkit formulas and hand-worked values."""

import functools

import jax
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, balanced_accuracy_score

from jaxcnn import metrics

jax.config.update("jax_numpy_rank_promotion", "raise")


def _ap(scores, positives, method, where=None):
    fn = jax.jit(functools.partial(metrics.average_precision, method=method))
    return np.asarray(fn(np.asarray(scores, np.float32), np.asarray(positives, bool), where=where))


def _devkit_voc07(scores, gt):
    """VOCevalcls.m (VOC2007 devkit), transcribed: sort, cumsum, 11-point max precision."""
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(gt[order] > 0)
    fp = np.cumsum(gt[order] < 0)
    rec = tp / np.sum(gt > 0)
    prec = tp / (fp + tp)
    ap = 0.0
    for t in np.arange(0, 11) / 10:
        p = prec[rec >= t]
        ap += (p.max() if p.size else 0.0) / 11
    return ap


def _devkit_voc12(scores, gt):
    """VOCevalcls.m (VOC2010+ devkit) VOCap: area under the monotone precision envelope."""
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(gt[order] > 0)
    fp = np.cumsum(gt[order] < 0)
    rec = tp / np.sum(gt > 0)
    prec = tp / (fp + tp)
    mrec = np.concatenate([[0], rec, [1]])
    mpre = np.concatenate([[0], prec, [0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return np.sum((mrec[i] - mrec[i - 1]) * mpre[i])


# Ranked labels [1, 0, 0, 1, 1], P = 3 (worked by hand):
#   points (recall, precision): (1/3, 1), (1/3, 1/2), (1/3, 1/3), (2/3, 1/2), (1, 3/5)
#   step  = (1 + 1/2 + 3/5) / 3 = 0.7
#   voc12 = (1 + 3/5 + 3/5) / 3 = 2.2 / 3      (envelope lifts 1/2 at recall 2/3 to 3/5)
#   voc07 = (4 · 1 + 7 · 3/5) / 11 = 8.2 / 11  (levels 0..0.3 reach recall 1/3, the rest 3/5)
HAND_SCORES = [0.9, 0.8, 0.7, 0.6, 0.5]
HAND_POS = [1, 0, 0, 1, 1]
HAND = {"step": 0.7, "voc12": 2.2 / 3, "voc07": 8.2 / 11}

# Tie: [0.9 pos, 0.5 pos, 0.5 neg, 0.1 neg]. With the tie as one threshold the points are
# (1/2, 1), (1, 2/3), (1, 1/2): step = voc12 = 1/2 + 1/2 · 2/3 = 5/6,
# voc07 = (6 · 1 + 5 · 2/3) / 11 = 28/33. Ranking the tied positive first would give 1.0.
TIE_SCORES = [0.9, 0.5, 0.5, 0.1]
TIE_POS = [1, 1, 0, 0]
TIE = {"step": 5 / 6, "voc12": 5 / 6, "voc07": 28 / 33}


@pytest.mark.parametrize("method", metrics.AP_METHODS)
def test_hand_worked_values(method):
    np.testing.assert_allclose(_ap(HAND_SCORES, HAND_POS, method), HAND[method], rtol=1e-6)


@pytest.mark.parametrize("method", metrics.AP_METHODS)
def test_ties_are_one_threshold(method):
    np.testing.assert_allclose(_ap(TIE_SCORES, TIE_POS, method), TIE[method], rtol=1e-6)
    # Order of tied items does not matter.
    swapped = _ap([0.9, 0.5, 0.5, 0.1], [1, 0, 1, 0], method)
    np.testing.assert_allclose(swapped, TIE[method], rtol=1e-6)


@pytest.mark.parametrize("method", metrics.AP_METHODS)
def test_where_equals_dropping_items(method):
    # Add two masked items, one on top of the ranking, one tied with a positive.
    scores = np.array(HAND_SCORES + [1.0, 0.6], np.float32)
    pos = np.array(HAND_POS + [0, 1], bool)
    where = np.array([True] * 5 + [False, False])
    np.testing.assert_allclose(_ap(scores, pos, method, where), HAND[method], rtol=1e-6)


def test_argsort_descending_orders_every_row_under_jit_and_vmap():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, size=(3, 5, 30)).astype(np.float32)  # many ties
    scores[0, 0, :3] = [-0.0, 0.0, np.inf]
    for fn in (jax.jit(metrics.argsort_descending), jax.jit(jax.vmap(metrics.argsort_descending))):
        order = np.asarray(fn(scores))
        assert order.dtype == np.int32 and order.shape == scores.shape
        np.testing.assert_array_equal(
            np.sort(order, axis=-1), np.broadcast_to(np.arange(30), order.shape)
        )
        ranked = np.take_along_axis(scores, order, axis=-1)
        np.testing.assert_array_equal(ranked, -np.sort(-scores, axis=-1))  # non-increasing


def test_step_matches_sklearn_with_ties_and_masks():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=(8, 40)).astype(np.float32)  # many ties
    pos = rng.random((8, 40)) < 0.3
    pos[:, 0] = True
    where = rng.random((8, 40)) < 0.8
    where[:, 0] = True
    got = _ap(scores, pos, "step", where)
    for i in range(8):
        want = average_precision_score(pos[i][where[i]], scores[i][where[i]])
        np.testing.assert_allclose(got[i], want, rtol=1e-5)


@pytest.mark.parametrize("method,ref", [("voc07", _devkit_voc07), ("voc12", _devkit_voc12)])
def test_matches_devkit_without_ties(method, ref):
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(5, 3, 60)).astype(np.float32)  # continuous: no ties
    gt = np.where(rng.random((5, 3, 60)) < 0.25, 1, -1)
    gt[..., 0] = 1
    got = _ap(scores, gt > 0, method)
    assert got.shape == (5, 3)
    for idx in np.ndindex(5, 3):
        np.testing.assert_allclose(got[idx], ref(scores[idx], gt[idx]), rtol=1e-5)


def test_devkit_difficult_matches_where():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=50).astype(np.float32)
    gt = rng.choice([-1, 0, 1], size=50, p=[0.6, 0.15, 0.25])
    gt[0] = 1
    for method, ref in (("voc07", _devkit_voc07), ("voc12", _devkit_voc12)):
        got = _ap(scores, gt > 0, method, where=gt != 0)
        np.testing.assert_allclose(got, ref(scores, gt), rtol=1e-5)


@pytest.mark.parametrize("method", metrics.AP_METHODS)
def test_no_positive_is_nan(method):
    got = _ap([[0.3, 0.2, 0.1], [0.3, 0.2, 0.1]], [[0, 0, 0], [1, 0, 1]], method)
    assert np.isnan(got[0]) and np.isfinite(got[1])
    masked = _ap([0.3, 0.2], [True, False], method, where=np.array([False, True]))
    assert np.isnan(masked)


def test_perfect_and_worst_rankings():
    assert _ap([3.0, 2.0, 1.0], [1, 1, 0], "voc07") == pytest.approx(1.0)
    # Single positive ranked last of 4: precision 1/4 at recall 1 for every level.
    for method in metrics.AP_METHODS:
        assert _ap([4.0, 3.0, 2.0, 1.0], [0, 0, 0, 1], method) == pytest.approx(0.25)


def test_precision_recall_curve_ties_and_shape():
    prec, rec, thr = jax.jit(metrics.precision_recall_curve)(
        np.array(TIE_SCORES, np.float32), np.array(TIE_POS, bool)
    )
    np.testing.assert_allclose(prec, [1, 2 / 3, 2 / 3, 1 / 2], rtol=1e-6)
    np.testing.assert_allclose(rec, [0.5, 1, 1, 1], rtol=1e-6)
    np.testing.assert_array_equal(thr, np.array([0.9, 0.5, 0.5, 0.1], np.float32))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="method"):
        metrics.average_precision(np.zeros(3, np.float32), np.zeros(3, bool), method="voc10")
    with pytest.raises(ValueError, match="shape"):
        metrics.average_precision(np.zeros(3, np.float32), np.zeros(4, bool))
    with pytest.raises(ValueError, match="boolean"):
        metrics.average_precision(np.zeros(3, np.float32), np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="floating"):
        metrics.average_precision(np.zeros(3, np.int32), np.zeros(3, bool))
    with pytest.raises(ValueError, match="where"):
        metrics.average_precision(np.zeros(3, np.float32), np.zeros(3, bool), where=np.ones(2))
    with pytest.raises(ValueError, match="integer"):
        metrics.mean_per_class_accuracy(np.zeros(3), np.zeros(3, int), 2)


def test_mean_per_class_accuracy():
    # Hand-worked: class 0: 2/3 correct, class 1: 1/1, class 2: absent -> (2/3 + 1) / 2.
    pred = np.array([0, 0, 1, 1], np.int32)
    labels = np.array([0, 0, 0, 1], np.int32)
    fn = jax.jit(metrics.mean_per_class_accuracy, static_argnums=2)
    assert float(fn(pred, labels, 3)) == pytest.approx((2 / 3 + 1) / 2)
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 7, size=(4, 100)).astype(np.int32)
    pred = np.where(rng.random((4, 100)) < 0.6, labels, rng.integers(0, 7, (4, 100)))
    got = fn(pred.astype(np.int32), labels, 7)
    want = [balanced_accuracy_score(labels[i], pred[i]) for i in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    where = np.array([True, True, False, True])
    got = metrics.mean_per_class_accuracy(
        np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]), 3, where=where
    )
    assert float(got) == pytest.approx(1.0)
