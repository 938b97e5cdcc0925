"""Grandmother cells and distributed codes (paper §4, thesis ch. 3).

Inputs are per-box filter responses ``scores [N, F]`` (e.g. conv-5 sp-max on PASCAL-DET-GT boxes:
one value per box and filter) and box labels ``[N]``. Each filter is scored as a one-vs-rest
detector of every class (AP, precision-vs-threshold); per class, greedy nested filter subsets
ranked by the |w| of a linear SVM on all filters measure how many filters a class needs; the
overlap of the classes' top-k sets measures how shared the code is.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn import metrics
from jaxcnn.probe import svm
from jaxcnn.selectivity import entropy

PAPER_KS = (1, 2, 3, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 80, 100, 128, 256)  # §4.2 note 3
# The subset SVMs are scored by AP only: the probes' stopping rules (jaxcnn.probe.protocols).
# At fit_linear_svm's tight defaults a few of the ~300 subset problems of the embedded study
# stalled at the 100-Newton-step cap (float32 rounding) and took 10x the time; with these
# rules every class's "filters needed" came out identical and the subset APs within 0.003.
SUBSET_SOLVER = svm.SolverOptions(ftol=3e-3, gtol=1e-3, max_newton=40, max_cg=200, cg_rtol=0.1)


def _check_scores(scores, labels, num_classes):
    scores = jnp.asarray(scores)
    labels = jnp.asarray(labels)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"scores must have non-empty shape [N, F], got {scores.shape}")
    if not jnp.issubdtype(scores.dtype, jnp.floating):
        raise ValueError(f"scores must be floating point, got dtype {scores.dtype}")
    if labels.shape != scores.shape[:1] or not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"labels must be int [N] = {scores.shape[:1]}, got {labels.dtype}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return scores, labels


def _positives(labels_N, num_classes):
    return labels_N[None, :] == jnp.arange(num_classes)[:, None]  # [C, N]


def filter_ap(scores, labels, num_classes, *, method="voc07"):
    """AP of every filter as a one-vs-rest detector of every class (paper §4.1): [C, F].

    Args:
      scores: float [N, F], higher = "more likely class c" for every c.
      labels: int [N] in ``[0, C)``.
      num_classes: (static) C.
      method: (static) AP definition of :func:`jaxcnn.metrics.average_precision` (``"voc07"``
        11-point, the paper's; ``"voc12"``; ``"step"`` = scikit-learn's).

    Returns:
      float [C, F]: ``ap[c, f]`` ranks the N boxes by ``scores[:, f]`` against
      ``labels == c``; tied scores form one threshold; a class without boxes gives NaN.
      Classes are mapped one at a time (memory O(F·N)).
    """
    scores, labels = _check_scores(scores, labels, num_classes)
    scores_FxN = scores.T
    pos_CxN = _positives(labels, num_classes)

    def one_class(pos_N):
        pos_FxN = jnp.broadcast_to(pos_N[None, :], scores_FxN.shape)
        return metrics.average_precision(scores_FxN, pos_FxN, method=method)

    return jax.lax.map(one_class, pos_CxN)


def top_filters(value_CxF, k):
    """Indices [C, k] of the k largest entries per row, descending; NaN ranks last.

    Ties keep the lower filter index first (stable sort), so the result is deterministic.
    """
    value_CxF = jnp.asarray(value_CxF)
    if value_CxF.ndim != 2 or not 1 <= k <= value_CxF.shape[1]:
        raise ValueError(f"need value [C, F] and 1 <= k <= F, got {value_CxF.shape}, k={k}")
    key = jnp.where(jnp.isnan(value_CxF), -jnp.inf, value_CxF)
    return jnp.argsort(-key, axis=1, stable=True)[:, :k]


def top_filter_pr_curves(scores, labels, num_classes, ap, *, top=5):
    """Precision–recall curves of each class's ``top`` filters by AP (paper Fig. 3).

    Args:
      scores: float [N, F]; labels: int [N]; num_classes: C.
      ap: [C, F] from :func:`filter_ap` (the ranking).
      top: filters per class.

    Returns:
      ``(filters [C, top], precision [C, top, N], recall [C, top, N])``: the curves of
      :func:`jaxcnn.metrics.precision_recall_curve` (descending-score order, ties one point).
    """
    scores, labels = _check_scores(scores, labels, num_classes)
    if jnp.shape(ap) != (num_classes, scores.shape[1]):
        raise ValueError(f"ap must have shape [C, F] = {(num_classes, scores.shape[1])}")
    filters_CxK = top_filters(ap, top)
    s_CxKxN = scores.T[filters_CxK]
    pos_CxKxN = jnp.broadcast_to(_positives(labels, num_classes)[:, None, :], s_CxKxN.shape)
    precision, recall, _ = metrics.precision_recall_curve(s_CxKxN, pos_CxKxN)
    return filters_CxK, precision, recall


def precision_curves(scores, labels, num_classes, *, num_thresholds=100):
    """Precision of each filter for each class vs threshold (thesis eq. 3.3, §3.2).

    ``precision[t, c, f] = P(class c | score_f >= τ_t)`` = #{boxes of class c with score >=
    τ_t} / #{boxes with score >= τ_t}, at T thresholds equally spaced from the filter's min to
    max (the thresholds of :func:`jaxcnn.selectivity.entropy.entropy_curves`, sp-max / P = 1; ties
    at τ included). The denominator is never 0 (the top box always passes).

    Returns:
      ``(thresholds [T, F], precision [T, C, F])``.
    """
    scores, labels = _check_scores(scores, labels, num_classes)
    tau_TxF, hist_TxCxF = entropy.class_histograms(
        scores[:, None, :], labels, num_classes, method="label", num_thresholds=num_thresholds
    )
    return tau_TxF, hist_TxCxF / jnp.sum(hist_TxCxF, axis=1, keepdims=True)


def precision_area(precision):
    """Area under the precision-vs-threshold curve, x = linspace(0, 1, T): [T, C, F] -> [C, F].

    The thesis's selectivity score for a filter and class (§3.2); trapezoid rule as for AuE.
    """
    return entropy.area_under_entropy(precision)


def filters_needed(ap_vs_k, ks, fractions=(0.5, 0.9)):
    """Smallest subset size reaching each fraction of the full AP (paper Table 5).

    Args:
      ap_vs_k: float [C, K], AP of class c with the top ``ks[j]`` filters.
      ks: K ascending subset sizes; the last one is the full set (its AP is the reference).
      fractions: Q fractions in (0, 1].

    Returns:
      int numpy [Q, C]: ``min{ks[j] : ap_vs_k[c, j] >= q · ap_vs_k[c, -1]}`` (first in ``ks``
      order; AP need not grow with k), or -1 where no k qualifies (only when the full AP is NaN).
    """
    ap = np.asarray(ap_vs_k, dtype=np.float64)
    ks = np.asarray(ks)
    if ap.ndim != 2 or ks.shape != (ap.shape[1],):
        raise ValueError(f"need ap_vs_k [C, K] and ks [K], got {ap.shape} and {ks.shape}")
    if np.any(np.diff(ks) <= 0):
        raise ValueError(f"ks must be strictly ascending, got {ks.tolist()}")
    if not fractions or any(not 0 < q <= 1 for q in fractions):
        raise ValueError(f"fractions must be non-empty and in (0, 1], got {fractions!r}")
    q_Q11 = np.asarray(fractions, np.float64)[:, None, None]
    reached_QxCxK = ap[None] >= q_Q11 * ap[None, :, -1:]  # NaN compares False
    first_QxC = np.argmax(reached_QxCxK, axis=2)
    return np.where(reached_QxCxK.any(axis=2), ks[first_QxC], -1)


def top_set_overlap(importance, *, k=50):
    """Overlap of the classes' top-k filter sets (paper Fig. 5): [C, F] -> [C, C].

    ``S_i`` = the k filters with largest ``importance[i]`` (e.g. |w| of the class's SVM; ties
    to the lower index); entry (i, j) = ``|S_i ∩ S_j| / k``. The diagonal is 1; two random
    k-subsets of F filters overlap by :func:`overlap_chance` = k/F on average.
    """
    importance = jnp.asarray(importance)
    members_CxK = top_filters(importance, k)
    in_set_CxF = jnp.zeros(importance.shape, jnp.float32)
    in_set_CxF = in_set_CxF.at[jnp.arange(importance.shape[0])[:, None], members_CxK].set(1.0)
    return in_set_CxF @ in_set_CxF.T / k


def overlap_chance(k, num_filters):
    """Expected |S_i ∩ S_j| / k for independent uniform k-subsets of F filters: k / F."""
    if not 1 <= k <= num_filters:
        raise ValueError(f"need 1 <= k <= num_filters, got k={k}, num_filters={num_filters}")
    return k / num_filters


@functools.partial(jax.jit, static_argnames=("ks", "ap_method"))
def _greedy(x_train, y_NxC, x_test, pos_CxN, cost, positive_weight, *, ks, ap_method):
    """Ranking and test AP [C, K] of the nested subsets, all subset sizes in one program."""
    fit = functools.partial(svm.fit_linear_svm, C=cost, positive_weight=positive_weight)
    w_FxC, _ = fit(x_train, y_NxC)  # the ranking: solved tightly
    importance_CxF = jnp.abs(w_FxC.T)
    ranking_CxF = top_filters(importance_CxF, x_train.shape[1])
    rank_CxF = jnp.argsort(ranking_CxF, axis=1)  # position of each filter in its class's list

    # Every (subset size, class) problem is a column of one solve over the shared x_train,
    # each seeing only its class's top-k filters (feature_mask).
    ks_K = jnp.asarray(ks, jnp.int32)
    mask_KxCxF = rank_CxF[None] < ks_K[:, None, None]
    num_k, num_c, num_f = mask_KxCxF.shape
    w_FxKC, b_KC = fit(
        x_train,
        jnp.tile(y_NxC, (1, num_k)),
        feature_mask=mask_KxCxF.reshape(num_k * num_c, num_f).T,
        options=SUBSET_SOLVER,
    )
    scores_KCxN = jnp.dot(w_FxKC.T, x_test.T, precision=jax.lax.Precision.HIGHEST)
    scores_KxCxN = (scores_KCxN + b_KC[:, None]).reshape(num_k, num_c, -1)
    ap_KxC = metrics.average_precision(
        scores_KxCxN, jnp.broadcast_to(pos_CxN, scores_KxCxN.shape), method=ap_method
    )
    return importance_CxF, ranking_CxF, ap_KxC.T


def greedy_subsets(
    x_train,
    labels_train,
    x_test,
    labels_test,
    num_classes,
    *,
    C,
    ks=PAPER_KS,
    positive_weight=1.0,
    ap_method="voc07",
):
    """How many filters a class needs (paper §4.2, Fig. 4, Table 5; thesis Fig. 3-3).

    Per class c: a one-vs-rest linear SVM (:func:`jaxcnn.probe.svm.fit_linear_svm`, cost ``C``)
    on all F filters ranks the filters by |w_c|; for each k an SVM retrained on the top-k
    filters is scored by its AP on the test boxes. All K·C subset SVMs are the columns of one
    batched solve over the shared training matrix (``fit_linear_svm``'s ``feature_mask``).

    Args:
      x_train: float [M, F], e.g. conv-5 sp-max of the training boxes; labels_train: int [M].
      x_test: float [N, F]; labels_test: int [N].
      num_classes: C classes (one-vs-rest problems).
      C: SVM cost (choose it on held-out data, docs/methods.md §4).
      ks: subset sizes; those >= F are dropped and F (all filters) is always the last.
      positive_weight: loss weight of positive examples.
      ap_method: AP definition (:func:`jaxcnn.metrics.average_precision`).

    Returns:
      ``{"ks": tuple K, "importance": [C, F] = |w| of the all-filter SVMs, "ranking": [C, F]
      filter indices by decreasing importance (ties to the lower index), "ap": [C, K]}``.
    """
    x_train, labels_train = _check_scores(x_train, labels_train, num_classes)
    x_test, labels_test = _check_scores(x_test, labels_test, num_classes)
    num_f = x_train.shape[1]
    if x_test.shape[1] != num_f:
        raise ValueError(f"x_train and x_test differ in F: {num_f} vs {x_test.shape[1]}")
    ks = tuple(sorted({int(k) for k in ks if 1 <= k < num_f})) + (num_f,)
    y_NxC = jnp.where(_positives(labels_train, num_classes).T, 1.0, -1.0).astype(x_train.dtype)
    importance, ranking, ap = _greedy(
        x_train,
        y_NxC,
        x_test,
        _positives(labels_test, num_classes),
        C,
        positive_weight,
        ks=ks,
        ap_method=ap_method,
    )
    return {"ks": ks, "importance": importance, "ranking": ranking, "ap": ap}
