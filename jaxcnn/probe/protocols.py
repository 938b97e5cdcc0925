"""Linear-SVM probes on layer features: the VOC07 protocols and SUN-style multi-class
(docs/methods.md §4).

Two named multi-label protocols (``PROTOCOLS``):

* ``voc07_vissl`` — VISSL / Goyal et al. 2019: L2-normalised features; costs
  ``0.01 … 1000``; ``class_weight {1: 2, -1: 1}``; per class the cost with the best 3-fold
  cross-validated AP on the *training* split; final fit on all training data; "difficult"
  items are negatives in training (and in the CV folds) and excluded at test; test AP is the
  VOC 2012 envelope (``voc12``); the folds are scored with scikit-learn's step AP, as VISSL's
  ``cross_val_score(scoring="average_precision")`` does.
* ``rcnn`` — R-CNN: features scaled by one factor so their mean L2 norm on the training split
  is 20; ``C = 1e-3``; bias multiplier (``intercept_scaling``) 10; positive loss weight 2; no
  CV; AP by the VOC 2007 11-point devkit metric (the paper's).

Folds are ``num_folds`` contiguous blocks of the training order shared by all classes
(scikit-learn's unshuffled ``KFold``; VISSL's ``cross_val_score`` would stratify per class).
Sharing them lets one Gram matrix serve every class, cost and fold: the fold problems use
sub-blocks of ``G = X̃X̃ᵀ`` and the held-out decision values are ``G[held-out, train] @ a``.
Each fold walks the cost grid upwards, warm-starting each cost from the previous solution.
Ties in CV AP go to the smallest cost (``argmax``, as VISSL).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn import metrics
from jaxcnn.probe import cost_path
from jaxcnn.probe.svm import SolverOptions, fit_linear_svm

__all__ = [
    "PROTOCOLS",
    "RCNN",
    "SUN_OVR",
    "VOC07_C20",
    "VOC07_VISSL",
    "MulticlassResult",
    "ProbeProtocol",
    "ProbeResult",
    "fit_linear_svm",
    "multiclass_probe",
    "multilabel_probe",
    "scale_features",
]

VISSL_COSTS = (0.01, 0.1, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 50.0, 100.0, 1000.0)


@dataclasses.dataclass(frozen=True)
class ProbeProtocol:
    """How features are scaled and SVMs fitted and scored (see module docstring)."""

    name: str
    feature_scaling: str  # "l2": each row to unit norm; "mean_norm": mean train norm -> norm
    costs: tuple[float, ...]
    positive_weight: float
    intercept_scaling: float
    num_folds: int  # 0: no cross-validation (exactly one cost)
    ap_method: str  # test AP (voc07 / voc12 / step)
    norm: float = 1.0
    cv_ap_method: str = "step"  # VISSL scores folds with scikit-learn's average_precision
    # Looser than fit_linear_svm's defaults: the probe needs rankings, not 1e-4 decision
    # values. On the benchmark's VOC-sized data this changes the mAP by 0.03 points against a
    # 1e-3 solve and makes the protocol about 1.5x faster.
    solver: SolverOptions = SolverOptions(
        ftol=3e-3, gtol=1e-3, max_newton=40, max_cg=200, cg_rtol=0.1
    )

    def __post_init__(self):
        if self.feature_scaling not in ("l2", "mean_norm"):
            raise ValueError(f"feature_scaling must be 'l2' or 'mean_norm': {self}")
        if {self.ap_method, self.cv_ap_method} - set(metrics.AP_METHODS):
            raise ValueError(f"ap_method must be one of {metrics.AP_METHODS}: {self}")
        if self.num_folds == 0 and len(self.costs) != 1:
            raise ValueError(f"without cross-validation exactly one cost is needed: {self}")
        if self.num_folds == 1 or list(self.costs) != sorted(self.costs):
            raise ValueError(f"num_folds must be 0 or >= 2 and costs ascending: {self}")


VOC07_VISSL = ProbeProtocol(
    name="voc07_vissl",
    feature_scaling="l2",
    costs=VISSL_COSTS,
    positive_weight=2.0,
    intercept_scaling=1.0,
    num_folds=3,
    ap_method="voc12",
)
# VOC07_VISSL with the cost grid cut at 20, for the embedded default's study on a CPU: on its
# GT-box probes costs 50-1000 took two thirds of the cross-validation time and changed the mAP by
# at most 0.06 points (docs/methods.md §4.3).
VOC07_C20 = dataclasses.replace(
    VOC07_VISSL, name="voc07_c20", costs=tuple(c for c in VISSL_COSTS if c <= 20)
)
RCNN = ProbeProtocol(
    name="rcnn",
    feature_scaling="mean_norm",
    norm=20.0,
    costs=(1e-3,),
    positive_weight=2.0,
    intercept_scaling=10.0,
    num_folds=0,
    ap_method="voc07",
)
PROTOCOLS = {p.name: p for p in (VOC07_VISSL, VOC07_C20, RCNN)}


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """Per-class test AP, its mean, the chosen costs and the CV table (numpy arrays)."""

    protocol: str
    ap_method: str
    ap_K: np.ndarray
    mean_ap: float
    cost_K: np.ndarray
    costs: tuple[float, ...]
    cv_ap_KxL: np.ndarray | None  # mean held-out AP per class and cost; None without CV
    test_scores_NxK: np.ndarray


# The probes' glue outside the solvers is numpy: as jnp outside jit each operation compiled a
# program of its own for every new shape (about 10 s of the study's compile time), and as small
# jitted programs it compiled longer still.
def scale_features(train_NxD, test_NxD, *, protocol):
    """Apply the protocol's feature scaling (numpy float32 out); ``mean_norm`` uses training
    statistics only."""
    train_NxD = np.asarray(train_NxD, np.float32)
    test_NxD = np.asarray(test_NxD, np.float32)
    if protocol.feature_scaling == "l2":
        # All-zero rows (dead features) stay zero instead of dividing by 0.
        unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return unit(train_NxD), unit(test_NxD)
    mean_norm = np.mean(np.linalg.norm(train_NxD, axis=1))
    factor = np.float32(protocol.norm / max(mean_norm, 1e-12))
    return train_NxD * factor, test_NxD * factor


def _fitter(x_NxD, y_NxK, base_cost_NxK, protocol):
    return cost_path.CostPathFitter(
        x_NxD,
        y_NxK,
        base_cost_NxK,
        costs=protocol.costs,
        intercept_scaling=protocol.intercept_scaling,
        options=protocol.solver,
        gram_blocks=max(protocol.num_folds, 2),
    )


def _held_out_ap(scores_FxLxHxK, y_NxK, folds, method):
    """AP of held-out scores per fold, cost and class -> ``[F, L, K]`` (numpy glue: no compile;
    the AP's sort runs in numpy outside ``jit``, where no callback is needed)."""
    _, _, held_FxH, hmask_FxH = folds
    swap = lambda a: np.swapaxes(a, -1, -2)  # AP runs over the last axis: [..., K, H]
    scores = swap(np.asarray(scores_FxLxHxK))
    pos = swap(np.asarray(y_NxK)[held_FxH] > 0)[:, None]
    where = np.broadcast_to(hmask_FxH[:, None, None, :], scores.shape)
    return metrics.average_precision(
        scores, np.broadcast_to(pos, scores.shape), method=method, where=where
    )


def _cost_indices(costs, protocol, count) -> np.ndarray:
    costs = np.broadcast_to(np.asarray(costs, float), (count,))
    grid = np.asarray(protocol.costs, float)
    idx = np.argmin(np.abs(np.log(grid)[None, :] - np.log(costs)[:, None]), axis=1)
    if not np.allclose(grid[idx], costs, rtol=1e-6):
        raise ValueError(f"costs {sorted(set(costs))} are not all in {protocol.name}'s grid")
    return idx


def _check_labels(x, labels, what):
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what} features must be a float [N, D] array, got {x.dtype} {x.shape}")
    if labels.ndim != 2 or labels.shape[0] != x.shape[0]:
        raise ValueError(f"{what} labels must be [N, K] with N = {x.shape[0]}, got {labels.shape}")
    bad = ~np.isin(labels, (-1, 0, 1))
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise ValueError(f"{what} labels must be -1 / 0 (difficult) / 1; example {row} is not")


def multilabel_probe(
    train_x, train_labels, test_x, test_labels, *, protocol=VOC07_VISSL, cost_K=None
):
    """One-vs-rest SVM probe of multi-label features, e.g. PASCAL-CLS (docs/methods.md §4).

    Args:
      train_x, test_x: float ``[N, D]`` / ``[M, D]`` features (already flattened / ablated).
      train_labels, test_labels: int ``[N, K]`` / ``[M, K]`` in the VOC convention: 1 present,
        −1 absent, 0 difficult. Difficult items are negatives in training (and in CV folds)
        and are left out of the test AP.
      protocol: a ``ProbeProtocol`` (``PROTOCOLS``).
      cost_K: optional per-class costs (values of ``protocol.costs``) to use instead of
        cross-validation, e.g. those an earlier split chose (repeated splits, §4.6).

    Returns:
      ``ProbeResult``; ``mean_ap`` is the mean over classes with a test positive. The cost is
      chosen from the training split alone; the test split is touched only to score.
    """
    train_x, test_x = np.asarray(train_x), np.asarray(test_x)
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    _check_labels(train_x, train_labels, "train")
    _check_labels(test_x, test_labels, "test")
    if test_x.shape[1] != train_x.shape[1] or test_labels.shape[1] != train_labels.shape[1]:
        raise ValueError(
            f"train / test shapes disagree: {train_x.shape} {train_labels.shape}, "
            f"{test_x.shape} {test_labels.shape}"
        )
    x_tr, x_te = scale_features(train_x, test_x, protocol=protocol)
    y = np.where(train_labels == 1, 1.0, -1.0).astype(x_tr.dtype)
    base_cost = np.where(y > 0, protocol.positive_weight, 1.0).astype(x_tr.dtype)
    fitter = _fitter(x_tr, jnp.asarray(y), jnp.asarray(base_cost), protocol)
    choice_K, cv_ap = np.zeros(y.shape[1], int), None
    if cost_K is not None:
        choice_K = _cost_indices(cost_K, protocol, y.shape[1])
    elif protocol.num_folds:
        folds = cost_path.fold_indices(y.shape[0], protocol.num_folds)
        ap_FxLxK = _held_out_ap(fitter.cv_scores(folds), y, folds, protocol.cv_ap_method)
        cv_ap = np.nanmean(np.asarray(ap_FxLxK), axis=0).T  # [K, L]
        choice_K = np.argmax(np.nan_to_num(cv_ap, nan=-np.inf), axis=1)
    w, b = fitter.fit(choice_K)
    scores = _decision(x_te, w, b)
    ap_K = np.asarray(
        metrics.average_precision(
            scores.T, test_labels.T == 1, method=protocol.ap_method, where=test_labels.T != 0
        )
    )
    return ProbeResult(
        protocol=protocol.name,
        ap_method=protocol.ap_method,
        ap_K=ap_K,
        mean_ap=float(np.nanmean(ap_K)),
        cost_K=np.asarray(protocol.costs)[choice_K],
        costs=protocol.costs,
        cv_ap_KxL=cv_ap,
        test_scores_NxK=np.asarray(scores),
    )


def _decision(x_MxD, w_DxK, b_K) -> np.ndarray:
    return np.asarray(x_MxD) @ np.asarray(w_DxK) + np.asarray(b_K)[None, :]


SUN_OVR = ProbeProtocol(
    name="sun_ovr",
    feature_scaling="l2",
    costs=VISSL_COSTS,
    positive_weight=1.0,
    intercept_scaling=1.0,
    num_folds=3,
    ap_method="step",  # unused: the multi-class probe scores mean per-class accuracy
)


@dataclasses.dataclass(frozen=True)
class MulticlassResult:
    """Test mean per-class accuracy, the chosen cost and the selection table."""

    protocol: str
    accuracy: float
    cost: float
    costs: tuple[float, ...]
    selection_accuracy_L: np.ndarray  # validation (or mean CV) accuracy per cost
    selected_on: str  # "validation" or "{k}-fold CV"
    test_pred_N: np.ndarray


def _check_classes(x, y, num_classes, what):
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what} features must be a float [N, D] array, got {x.dtype} {x.shape}")
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{what} labels must be int [{x.shape[0]}], got {y.dtype} {y.shape}")
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        raise ValueError(
            f"{what} label of example {int(np.argmax(bad))} is outside [0, {num_classes})"
        )


def multiclass_probe(
    train_x,
    train_y,
    test_x,
    test_y,
    *,
    num_classes,
    protocol=SUN_OVR,
    val_x=None,
    val_y=None,
    cost=None,
):
    """1-of-K probe (SUN-CLS, docs/methods.md §3-4) by **one-vs-rest** linear SVMs, not a softmax
    probe.

    One squared-hinge SVM per class (class vs the rest, positives weighted by
    ``protocol.positive_weight``); the predicted class is the argmax of the K decision values.
    One cost is shared by all classes, so that their decision values are on a common scale; it
    is the cost with the best mean per-class accuracy on ``(val_x, val_y)`` when given (SUN's
    10 % validation split), else in ``protocol.num_folds``-fold CV on the training split. The
    final SVMs are fitted on the training split only. Ties go to the smallest cost.

    Args:
      train_x, test_x, val_x: float ``[N, D]`` features; train_y, test_y, val_y: int ``[N]``.
      num_classes: K.
      cost: optional shared cost (a value of ``protocol.costs``) to use without selection.

    Returns:
      ``MulticlassResult`` with the test mean per-class accuracy.
    """
    x_tr, y_tr = np.asarray(train_x), np.asarray(train_y)
    x_te, y_te = np.asarray(test_x), np.asarray(test_y)
    _check_classes(x_tr, y_tr, num_classes, "train")
    _check_classes(x_te, y_te, num_classes, "test")
    n = len(y_tr)
    if val_x is not None:
        x_val, y_val = np.asarray(val_x), np.asarray(val_y)
        _check_classes(x_val, y_val, num_classes, "validation")
        x_tr, y_tr = np.concatenate([x_tr, x_val]), np.concatenate([y_tr, y_val])
        folds, selected_on = cost_path.holdout_indices(n, len(y_val)), "validation"
    elif protocol.num_folds:
        folds, selected_on = (
            cost_path.fold_indices(n, protocol.num_folds),
            f"{protocol.num_folds}-fold CV",
        )
    else:
        raise ValueError(f"{protocol.name}: give val_x / val_y or a protocol with num_folds")
    if cost is not None:
        return _multiclass_fixed(x_tr, y_tr, x_te, y_te, num_classes, protocol, cost)
    xs_tr, xs_te = scale_features(x_tr[:n], x_te, protocol=protocol)
    if len(x_tr) > n:  # validation rows, scaled with training statistics only
        xs_val = scale_features(x_tr[:n], x_tr[n:], protocol=protocol)[1]
        xs_tr = np.concatenate([xs_tr, xs_val])
    y, base_cost = _one_vs_rest(y_tr, num_classes, protocol, xs_tr.dtype)
    # Validation rows take part in selection only: zero loss weight in the final fit.
    base_cost[n:] = 0
    fitter = _fitter(xs_tr, jnp.asarray(y), jnp.asarray(base_cost), protocol)
    acc_FxL = _cv_accuracy(fitter.cv_scores(folds), y_tr, folds, num_classes=num_classes)
    acc_L = np.nanmean(np.asarray(acc_FxL), axis=0)
    best = int(np.argmax(np.nan_to_num(acc_L, nan=-np.inf)))
    return _final_fit(fitter, best, xs_te, y_te, num_classes, protocol, acc_L, selected_on)


def _one_vs_rest(y_N, num_classes, protocol, dtype):
    """numpy ``(y [N, K] in {−1, +1}, base cost [N, K])`` of the K one-vs-rest problems."""
    y = np.where(np.arange(num_classes)[None, :] == np.asarray(y_N)[:, None], 1.0, -1.0)
    return y.astype(dtype), np.where(y > 0, protocol.positive_weight, 1.0).astype(dtype)


@functools.partial(jax.jit, static_argnames="num_classes")
def _cv_accuracy(scores_FxLxHxK, y_N, folds, *, num_classes):
    """Mean per-class accuracy of the held-out argmax predictions per fold and cost [F, L]."""
    pred_FxLxH = jnp.argmax(scores_FxLxHxK, axis=-1)
    held_FxH, hmask_FxH = folds[2], folds[3]
    labels_FxLxH = jnp.broadcast_to(jnp.asarray(y_N)[held_FxH][:, None], pred_FxLxH.shape)
    where = jnp.broadcast_to(jnp.asarray(hmask_FxH)[:, None], pred_FxLxH.shape)
    return metrics.mean_per_class_accuracy(pred_FxLxH, labels_FxLxH, num_classes, where=where)


def _final_fit(fitter, best, xs_te, y_te, num_classes, protocol, acc_L, selected_on):
    """Fit every class at cost index `best`, predict the test rows by argmax, score them."""
    w, b = fitter.fit(np.full(num_classes, best))
    pred = np.argmax(_decision(xs_te, w, b), axis=1)
    accuracy = metrics.mean_per_class_accuracy(pred, np.asarray(y_te), num_classes)
    return MulticlassResult(
        protocol=protocol.name,
        accuracy=float(accuracy),
        cost=protocol.costs[best],
        costs=protocol.costs,
        selection_accuracy_L=acc_L,
        selected_on=selected_on,
        test_pred_N=pred,
    )


def _multiclass_fixed(x_tr, y_tr, x_te, y_te, num_classes, protocol, cost) -> MulticlassResult:
    """`multiclass_probe` at a given cost: one fit, no selection."""
    best = int(_cost_indices(cost, protocol, 1)[0])
    xs_tr, xs_te = scale_features(x_tr, x_te, protocol=protocol)
    y, base_cost = _one_vs_rest(y_tr, num_classes, protocol, xs_tr.dtype)
    fitter = _fitter(xs_tr, jnp.asarray(y), jnp.asarray(base_cost), protocol)
    nan_L = np.full(len(protocol.costs), np.nan)
    return _final_fit(fitter, best, xs_te, y_te, num_classes, protocol, nan_L, "given")
