"""Ranking and classification metrics: VOC average precision, PR curves, per-class accuracy.

All kernels are pure ``jnp`` functions, jittable (string options are static; outside ``jit``
each shape compiles one program) and batched over leading axes: ``scores`` of shape ``[..., N]``
give one value per leading index. The one sort they need (`argsort_descending`) runs in numpy:
directly for concrete scores, through a callback inside ``jit`` on CPU, where XLA's sort is
3-7x slower.

Conventions shared by every function here:

* **Ranking.** Items are ranked by descending score. Items with *equal* scores form one
  threshold: they enter the ranking together, so a tie group contributes a single
  precision-recall point (this is scikit-learn's convention; the VOC devkit's MATLAB ``sort``
  would instead break ties by index, which makes the result depend on item order).
* **Masking.** ``where=False`` removes an item from the evaluation, exactly as if it were not
  in the array (the VOC devkit's "difficult" objects, ``gt == 0``). Masked items count neither
  as true nor as false positives.
* **No positives.** When a row has no unmasked positive item, recall is undefined and the AP of
  that row is ``NaN`` (scikit-learn instead warns and returns 0). Callers averaging over classes
  should use ``jnp.nanmean`` or check for NaN explicitly.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

AP_METHODS = ("voc07", "voc12", "step")


def _host_argsort_desc(scores):
    return np.argsort(-np.asarray(scores), axis=-1).astype(np.int32)  # callbacks get jax.Arrays


def argsort_descending(scores):
    """int32 ``[..., N]``: an order of descending scores along the last axis; the order within
    a group of equal scores is unspecified (every use here treats a tie group as one threshold,
    so it does not matter). Concrete scores are sorted by numpy; traced ones (inside ``jit``)
    on CPU by numpy through a callback: XLA:CPU's sort calls a compiled comparator per
    comparison and took 94 ms for the probes' cross-validation scores ([3, 8, 20, 800]) against
    numpy's 13 ms; other backends sort in XLA."""
    if not isinstance(scores, jax.core.Tracer):
        return _host_argsort_desc(scores)

    def host(s):
        out = jax.ShapeDtypeStruct(s.shape, jnp.int32)
        return jax.pure_callback(_host_argsort_desc, out, s, vmap_method="expand_dims")

    def device(s):
        return jnp.argsort(-s, axis=-1).astype(jnp.int32)

    return lax.platform_dependent(scores, cpu=host, default=device)


def _check_inputs(scores, positives, where):
    scores = jnp.asarray(scores)
    positives = jnp.asarray(positives)
    if scores.ndim < 1:
        raise ValueError(f"scores must have shape [..., N], got a scalar (shape {scores.shape})")
    if not jnp.issubdtype(scores.dtype, jnp.floating):
        raise ValueError(f"scores must be floating point, got dtype {scores.dtype}")
    if positives.shape != scores.shape:
        raise ValueError(
            f"positives must have the shape of scores {scores.shape}, got {positives.shape}"
        )
    if positives.dtype != jnp.bool_:
        raise ValueError(f"positives must be boolean, got dtype {positives.dtype}")
    if where is None:
        return scores, positives, None  # all items: filled in by the jitted kernels
    where = jnp.asarray(where)
    if where.shape != scores.shape:
        raise ValueError(f"where must have the shape of scores {scores.shape}, got {where.shape}")
    if where.dtype != jnp.bool_:
        raise ValueError(f"where must be boolean, got dtype {where.dtype}")
    return scores, positives, where


def _ranked_counts(scores, positives, where, order_N):
    """Sorted scores and tie-grouped cumulative TP / FP counts, all ``[..., N]``, plus P."""
    where = jnp.ones(scores.shape, bool) if where is None else where
    scores_N = jnp.take_along_axis(scores, order_N, axis=-1)
    pos_N = jnp.take_along_axis(positives & where, order_N, axis=-1)
    neg_N = jnp.take_along_axis(~positives & where, order_N, axis=-1)
    tp_N = jnp.cumsum(pos_N, axis=-1, dtype=jnp.int32)
    fp_N = jnp.cumsum(neg_N, axis=-1, dtype=jnp.int32)
    # Ties: every item takes the cumulative counts at the *last* item of its tie group, so
    # the whole group enters the ranking at once. The group end is the first index >= i
    # whose successor has a different score, found with a reverse running minimum.
    n = scores_N.shape[-1]
    idx_N = jnp.arange(n, dtype=jnp.int32)
    is_last_N = jnp.concatenate(
        [scores_N[..., :-1] != scores_N[..., 1:], jnp.ones(scores_N.shape[:-1] + (1,), bool)],
        axis=-1,
    )
    end_N = jax.lax.cummin(jnp.where(is_last_N, idx_N, n - 1), axis=scores_N.ndim - 1, reverse=True)
    tp_N = jnp.take_along_axis(tp_N, end_N, axis=-1)
    fp_N = jnp.take_along_axis(fp_N, end_N, axis=-1)
    return scores_N, tp_N, fp_N, tp_N[..., -1:]


def _precision_recall(tp_N, fp_N, num_pos, dtype):
    tp_N, fp_N, num_pos = (a.astype(dtype) for a in (tp_N, fp_N, num_pos))
    # 0/0 before the first unmasked item: define precision 0 (recall is 0 there too).
    precision_N = jnp.where(tp_N + fp_N > 0, tp_N / jnp.maximum(tp_N + fp_N, 1), 0.0)
    # No positives: recall is 0/0, left NaN on purpose so the AP becomes NaN.
    recall_N = jnp.where(num_pos > 0, tp_N / jnp.maximum(num_pos, 1), jnp.nan)
    return precision_N, recall_N


def precision_recall_curve(scores, positives, *, where=None):
    """Precision and recall at every rank, with tied scores evaluated as one threshold.

    Args:
      scores: float ``[..., N]``; higher means "more likely positive".
      positives: bool ``[..., N]``, the ground truth.
      where: optional bool ``[..., N]``; ``False`` excludes an item (VOC "difficult").

    Returns:
      ``(precision, recall, thresholds)``, each ``[..., N]`` in descending-score order
      (float32, or float64 for float64 scores). Entry ``i`` is the operating point "predict
      positive iff score >= thresholds[i]", so all members of a tie group carry the same
      (precision, recall). With ``TP, FP`` the unmasked positives / negatives at or above the
      threshold and ``P`` all unmasked positives: ``precision = TP / (TP + FP)`` (0 where
      ``TP + FP = 0``, which happens only at recall 0, before any unmasked item) and
      ``recall = TP / P`` (NaN if ``P = 0``). Masked items keep their slot, so shapes never
      depend on the data; their points repeat a neighbouring point and add no area.
      Consecutive duplicates can be dropped for plotting.
    """
    scores, positives, where = _check_inputs(scores, positives, where)
    return _precision_recall_curve(scores, positives, where, argsort_descending(scores))


# The kernels after the sort are jitted: called outside jit, each of their 20-odd operations
# compiled a program of its own for every new shape (about 15 s of the study's compile time).
@jax.jit
def _precision_recall_curve(scores, positives, where, order_N):
    scores_N, tp_N, fp_N, num_pos = _ranked_counts(scores, positives, where, order_N)
    dtype = jnp.result_type(scores.dtype, jnp.float32)
    precision_N, recall_N = _precision_recall(tp_N, fp_N, num_pos, dtype)
    return precision_N, recall_N, scores_N


def average_precision(scores, positives, *, method="voc07", where=None):
    """Average precision of ranking ``scores`` against binary ``positives``, per row.

    Args:
      scores: float ``[..., N]``.
      positives: bool ``[..., N]``.
      method: (static) one of
        * ``"voc07"`` — 11-point interpolated AP of the VOC 2007 devkit (the paper's metric):
          ``AP = 1/11 · Σ_{t ∈ {0, 0.1, …, 1}} max{precision_i : recall_i ≥ t}`` (0 if no
          point reaches recall t).
        * ``"voc12"`` — area under the monotone precision envelope (VOC 2010+ devkit, used by
          VISSL / Goyal et al.): ``AP = Σ_i (r_i − r_{i−1}) · max_{j ≥ i} p_j`` with ``r_0 = 0``.
        * ``"step"`` — non-interpolated ``AP = Σ_i (r_i − r_{i−1}) · p_i``, equal to
          scikit-learn's ``average_precision_score``.
      where: optional bool ``[..., N]``; ``False`` excludes an item (VOC "difficult").

    Returns:
      float ``[...]``. Ties are one threshold and rows with no unmasked positive give NaN
      (module docstring).
    """
    if method not in AP_METHODS:
        raise ValueError(f"method must be one of {AP_METHODS}, got {method!r}")
    scores, positives, where = _check_inputs(scores, positives, where)
    order_N = argsort_descending(scores)
    return _average_precision(scores, positives, where, order_N, method=method)


@functools.partial(jax.jit, static_argnames="method")
def _average_precision(scores, positives, where, order_N, *, method):
    _, tp_N, fp_N, num_pos = _ranked_counts(scores, positives, where, order_N)
    dtype = jnp.result_type(scores.dtype, jnp.float32)
    precision_N, recall_N = _precision_recall(tp_N, fp_N, num_pos, dtype)
    if method == "voc07":
        # recall >= k/10  <=>  10·TP >= k·P, compared in integers so that levels such as
        # 0.3 are reached exactly (no float rounding of TP/P against 0.1·k).
        batch_ones = (1,) * (tp_N.ndim - 1)
        levels_T1 = jnp.arange(11, dtype=jnp.int32).reshape(batch_ones + (11, 1))
        reached_TN = 10 * tp_N[..., None, :] >= levels_T1 * num_pos[..., None, :]
        # [..., 11, N]: best precision among points reaching each level, 0 if none does.
        best_T = jnp.max(jnp.where(reached_TN, precision_N[..., None, :], 0.0), axis=-1)
        ap = jnp.mean(best_T, axis=-1)
        return jnp.where(num_pos[..., 0] > 0, ap, jnp.nan)
    if method == "voc12":
        # Monotone envelope: the best precision at this or any later (higher-recall) point.
        precision_N = jax.lax.cummax(precision_N, axis=precision_N.ndim - 1, reverse=True)
    prev_recall_N = jnp.concatenate([jnp.zeros_like(recall_N[..., :1]), recall_N[..., :-1]], -1)
    # Within a tie group the recall step is taken once (the members share one point).
    return jnp.sum((recall_N - prev_recall_N) * precision_N, axis=-1)


@functools.partial(jax.jit, static_argnames="num_classes")
def mean_per_class_accuracy(pred, labels, num_classes, *, where=None):
    """Mean over classes of the per-class accuracy (SUN-CLS's metric, docs/methods.md §3).

    Args:
      pred: int ``[..., N]`` predicted class indices.
      labels: int ``[..., N]`` true class indices in ``[0, num_classes)``.
      num_classes: (static) number of classes ``K``.
      where: optional bool ``[..., N]``; ``False`` excludes an example.

    Returns:
      float32 ``[...]``: ``mean_{c present} #{pred = label = c} / #{label = c}``. Classes with
      no (unmasked) example are left out of the mean; a row with no example at all gives NaN.
    """
    pred = jnp.asarray(pred)
    labels = jnp.asarray(labels)
    if pred.shape != labels.shape or pred.ndim < 1:
        raise ValueError(
            f"pred and labels must share a shape [..., N], got {pred.shape}, {labels.shape}"
        )
    if not (jnp.issubdtype(pred.dtype, jnp.integer) and jnp.issubdtype(labels.dtype, jnp.integer)):
        raise ValueError(f"pred and labels must be integer, got {pred.dtype}, {labels.dtype}")
    if where is None:
        where = jnp.ones(labels.shape, bool)
    where = jnp.asarray(where)
    if where.shape != labels.shape or where.dtype != jnp.bool_:
        raise ValueError(
            f"where must be bool of shape {labels.shape}, got {where.dtype} {where.shape}"
        )
    onehot_NK = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32) * where[..., None]
    count_K = jnp.sum(onehot_NK, axis=-2)
    correct_K = jnp.sum(onehot_NK * (pred == labels)[..., None], axis=-2)
    present_K = count_K > 0
    acc_K = correct_K / jnp.maximum(count_K, 1.0)  # absent classes masked out just below
    num_present = jnp.sum(present_K, axis=-1)
    return jnp.where(
        num_present > 0, jnp.sum(acc_K * present_K, axis=-1) / jnp.maximum(num_present, 1), jnp.nan
    )
