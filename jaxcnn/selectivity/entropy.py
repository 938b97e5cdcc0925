"""Class selectivity of filters: entropy curves, AuE and MCAuE (paper appendix, thesis §2.2).

For one filter, N images (or ground-truth boxes) give N heat maps of P = p·p scores each. A
method turns them into (score, label, weight) *pairs*:

* ``"label"`` — every one of the N·P scores, paired with its image's label, weight 1.
* ``"weighted"`` — the same N·P pairs, weight = the score ("instead of the label count we use
  the sum of the scores", thesis §2.2; the scores are ReLU outputs, so weights are >= 0).
* ``"spmax"`` — one pair per image: the maximum of its map, weight 1.

The filter's T thresholds are equally spaced from the smallest to the largest score over its
pairs (the draft's "100 equally spaced thresholds"). At threshold τ the class histogram sums the
weights of the pairs with score >= τ per label; its entropy, in bits, is the class entropy
H(τ). The entropy curve is H over the T thresholds; its area over the normalised axis
x = linspace(0, 1, T) is the AuE (lower = more class selective); MCAuE summarises a layer.

Algorithm. The histogram at τ_t is additive over pairs, so no [T, N·P, F] comparison tensor is
built. Each pair gets its bucket b = #{t : τ_t <= score} (a first guess from the equal spacing,
then corrected against the stored thresholds by exact comparisons, so ties at τ are exact), one
scatter-add per pair accumulates G[b, c, f] += weight, and a reverse cumulative sum over b gives
H[t, c, f] = Σ_{b > t} G[b, c, f]: pair i counts at every τ_t with t < b_i, i.e. τ_t <= score.
Work is O(N·P·F) (no sort is needed); memory is O(T·C·F) for the histograms plus one chunk of
images at a time (the images are processed in chunks of about 2^20 scores, so temporaries do
not grow with N).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

METHODS = ("label", "weighted", "spmax")
TABLE_FRACTIONS = (0.1, 0.25, 0.5, 1.0)  # thesis Table 2.1
_CHUNK_ELEMENTS = 1 << 20  # scores per chunk of images (bounds the per-chunk temporaries)


def _check(acts, labels, num_classes, method, num_thresholds):
    acts = jnp.asarray(acts)
    labels = jnp.asarray(labels)
    if acts.ndim != 3:
        raise ValueError(f"acts must have shape [N, P, F], got shape {acts.shape}")
    if not jnp.issubdtype(acts.dtype, jnp.floating):
        raise ValueError(f"acts must be floating point, got dtype {acts.dtype}")
    if labels.shape != acts.shape[:1]:
        raise ValueError(f"labels must have shape [N] = {acts.shape[:1]}, got {labels.shape}")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"labels must be integer, got dtype {labels.dtype}")
    if acts.shape[0] == 0 or acts.shape[1] == 0 or acts.shape[2] == 0:
        raise ValueError(f"acts must be non-empty, got shape {acts.shape}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if not isinstance(num_thresholds, int) or num_thresholds < 2:
        raise ValueError(f"num_thresholds must be an int >= 2, got {num_thresholds!r}")
    if (num_thresholds + 1) * (num_classes + 1) * acts.shape[2] >= 2**31:
        raise ValueError("(num_thresholds + 1) * (num_classes + 1) * F must be < 2**31")
    if not isinstance(labels, jax.core.Tracer):  # value check only possible outside jit
        lab = np.asarray(labels)
        if lab.min() < 0 or lab.max() >= num_classes:
            raise ValueError(
                f"labels must lie in [0, {num_classes}), got range [{lab.min()}, {lab.max()}]"
            )
    return acts, labels.astype(jnp.int32)


def _thresholds(lo_F, hi_F, num_thresholds):
    """[T, F] thresholds lo + (hi − lo)·t/(T−1), the last one set to hi exactly."""
    frac_T = jnp.arange(num_thresholds, dtype=lo_F.dtype) / (num_thresholds - 1)
    tau_TxF = lo_F[None, :] + (hi_F - lo_F)[None, :] * frac_T[:, None]
    # Rounding could put lo + (hi − lo)·1 above hi and drop the top pair: pin the end point.
    return tau_TxF.at[-1].set(hi_F)


def _buckets(scores_MxF, tau_TxF):
    """int32 [M, F]: b = #{t : τ_t <= score}, in [1, T] for scores within [lo, hi]."""
    num_t, num_f = tau_TxF.shape
    lo_F, hi_F = tau_TxF[0], tau_TxF[-1]
    span_F = hi_F - lo_F
    # First guess from the equal spacing; constant filters (span 0) pass every threshold.
    pos_MxF = (scores_MxF - lo_F[None, :]) / jnp.where(span_F > 0, span_F, 1)[None, :]
    guess_MxF = jnp.clip(jnp.floor(pos_MxF * (num_t - 1)).astype(jnp.int32) + 1, 1, num_t)
    b_MxF = jnp.where((span_F > 0)[None, :], guess_MxF, num_t)
    # Exact correction against the stored thresholds: flat table, row f holds
    # [−inf, τ_0 … τ_{T−1}, +inf], so entry b is τ_{b−1} and entry b + 1 is τ_b.
    pad_F = jnp.full((1, num_f), jnp.inf, tau_TxF.dtype)
    table = jnp.concatenate([-pad_F, tau_TxF, pad_F], axis=0).T.reshape(-1)
    base_F = jnp.arange(num_f, dtype=jnp.int32) * (num_t + 2)

    def step(b_MxF):
        below = table[base_F[None, :] + b_MxF] > scores_MxF  # τ_{b−1} > score: b too large
        above = table[base_F[None, :] + b_MxF + 1] <= scores_MxF  # τ_b <= score: b too small
        return b_MxF - below + above, jnp.any(below | above)

    # Rounding bound (eps = unit roundoff, M = max(|lo|, |hi|), S = hi − lo): the guess is
    # within 4·eps·(T−1) of the exact position u = (s − lo)/S·(T−1), and each stored τ_t within
    # (T−1)·eps·(3 + 1.01·M/S) of position t. When both are < 1/2 the thresholds are strictly
    # ordered and the guess is at most one bucket off, so one exact step suffices; otherwise
    # (nearly constant filters far from 0, low precision) step until no bucket moves, which is
    # exact for any spacing. One loop holds the step's only copy (each copy costs compile time).
    eps = jnp.finfo(tau_TxF.dtype).eps / 2
    mag_F = jnp.maximum(jnp.abs(lo_F), jnp.abs(hi_F))
    spread_F = (num_t - 1) * eps * (8 + 2 * mag_F / jnp.where(span_F > 0, span_F, 1))
    safe = jnp.all((span_F == 0) | (spread_F < 0.25))  # constant filters are guessed exactly

    def body(state):
        b_MxF, moved = step(state[0])
        return b_MxF, moved & ~safe

    return jax.lax.while_loop(lambda c: c[1], body, (b_MxF, jnp.bool_(True)))[0]


def _chunk_histogram(scores_MxF, labels_M, tau_TxF, num_classes, weighted):
    """Per-bucket class sums G [(T+1)·C·F]: int32 counts, or score sums if ``weighted``."""
    num_t, num_f = tau_TxF.shape
    b_MxF = _buckets(scores_MxF, tau_TxF)
    f_F = jnp.arange(num_f, dtype=jnp.int32)
    idx = ((b_MxF * num_classes + labels_M[:, None]) * num_f + f_F[None, :]).reshape(-1)
    size = (num_t + 1) * num_classes * num_f
    if weighted:
        return jnp.zeros(size, scores_MxF.dtype).at[idx].add(scores_MxF.reshape(-1))
    return jnp.zeros(size, jnp.int32).at[idx].add(1)


def _accumulate(scores_NxPxF, labels_N, tau_TxF, num_classes, weighted, chunk_elements):
    """Sum the chunk histograms over chunks of images, every chunk of one shape (one copy of the
    chunk's program): the last chunk ends at image N, and the images an earlier chunk already
    counted get the extra label C, whose histogram row the caller drops. -> G over C + 1 labels.
    """
    n, p, f = scores_NxPxF.shape
    per = max(1, min(n, chunk_elements // (p * f)))

    def hist(i):
        start = jnp.minimum(i * per, n - per)
        # Dynamic slices of the input itself: no reshaped copy of all N images is made.
        s_nxPxF = jax.lax.dynamic_slice_in_dim(scores_NxPxF, start, per, axis=0)
        lab_n = jax.lax.dynamic_slice_in_dim(labels_N, start, per)
        lab_n = jnp.where(start + jnp.arange(per) < i * per, num_classes, lab_n)
        lab_M = jnp.repeat(lab_n, p)  # per position
        return _chunk_histogram(s_nxPxF.reshape(-1, f), lab_M, tau_TxF, num_classes + 1, weighted)

    num_chunks = -(-n // per)
    if num_chunks == 1:  # a single chunk needs no loop
        return hist(0)
    shape = jax.eval_shape(hist, 0)
    init = jnp.zeros(shape.shape, shape.dtype)
    return jax.lax.fori_loop(0, num_chunks, lambda i, total: total + hist(i), init)


def class_histograms(
    acts, labels, num_classes, *, method="label", num_thresholds=100, chunk_elements=_CHUNK_ELEMENTS
):
    """Per-threshold class histograms of every filter (the core of :func:`entropy_curves`).

    Args:
      acts: float [N, P, F]; non-negative for ``"weighted"`` (a filter with a negative score
        gets NaN histograms there).
      labels: int [N] in ``[0, num_classes)`` (checked when not traced).
      num_classes: (static) C.
      method: (static) ``"label"``, ``"weighted"`` or ``"spmax"`` (module docstring).
      num_thresholds: (static) T >= 2.
      chunk_elements: (static) scores per chunk of images (at least one image per chunk);
        bounds the temporaries, does not change the result.

    Returns:
      ``(thresholds [T, F], hist [T, C, F])``: ``thresholds[t, f] = lo_f + (hi_f − lo_f)·t/(T−1)``
      (``thresholds[T−1] = hi_f`` exactly) with lo/hi the min/max score of filter f over its
      pairs; ``hist[t, c, f]`` = Σ weight over pairs of filter f with label c and score >=
      ``thresholds[t, f]`` (ties at τ included). Counts are exact integers stored as float32;
      weighted sums are float32. For ``"weighted"``, a threshold whose weighted histogram sums
      to 0 gets the counts instead; with scores >= 0 that happens exactly for all-zero filters
      (the top pair, score hi, passes every threshold), whose counts are those of all pairs.
      The top threshold always keeps the maximal pair(s), so every histogram has mass > 0.
    """
    acts, labels = _check(acts, labels, num_classes, method, num_thresholds)
    if not isinstance(chunk_elements, int) or chunk_elements < 1:
        raise ValueError(f"chunk_elements must be a positive int, got {chunk_elements!r}")
    return _class_histograms(acts, labels, num_classes, method, num_thresholds, chunk_elements)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _class_histograms(acts_NxPxF, labels_N, num_classes, method, num_thresholds, chunk_elements):
    if method == "spmax":
        acts_NxPxF = jnp.max(acts_NxPxF, axis=1, keepdims=True)  # one pair per image
    n, p, f = acts_NxPxF.shape
    tau_TxF = _thresholds(acts_NxPxF.min(axis=(0, 1)), acts_NxPxF.max(axis=(0, 1)), num_thresholds)
    # Keep the thresholds one materialised array: the bucket comparisons must see exactly the
    # values that are returned (no re-fused, differently rounded recomputation).
    tau_TxF = jax.lax.optimization_barrier(tau_TxF)
    weighted = method == "weighted"
    g = _accumulate(acts_NxPxF, labels_N, tau_TxF, num_classes, weighted, chunk_elements)
    # H[t] = Σ_{b > t} G[b]: a pair with bucket b passes thresholds 0 … b − 1.
    g_BxCxF = g.reshape(num_thresholds + 1, num_classes + 1, f)[:, :num_classes]
    hist_TxCxF = jnp.cumsum(g_BxCxF[::-1], axis=0)[::-1][1:].astype(acts_NxPxF.dtype)
    if weighted:
        # Scores >= 0: the top pair (score hi) passes every threshold, so a weighted histogram
        # sums to 0 exactly when hi = 0, i.e. the filter is all zeros; then every threshold is
        # 0, every pair passes, and the counts are the class counts of all N·P pairs.
        counts_C = jnp.zeros(num_classes, hist_TxCxF.dtype).at[labels_N].add(p)
        zero_T1F = jnp.sum(hist_TxCxF, axis=1, keepdims=True) <= 0
        hist_TxCxF = jnp.where(zero_T1F, counts_C[None, :, None], hist_TxCxF)
        # Negative scores are outside the method's definition: flag the filter with NaN.
        hist_TxCxF = jnp.where((tau_TxF[0] < 0)[None, None, :], jnp.nan, hist_TxCxF)
    return tau_TxF, hist_TxCxF


def histogram_entropy(hist_TxCxF):
    """Entropy in bits of each normalised class histogram: [T, C, F] -> [T, F].

    ``H = −Σ_c p_c log2 p_c`` with ``p = hist / Σ_c hist`` and the convention 0·log 0 = 0. A
    histogram with zero mass gives 0 (cannot occur for :func:`class_histograms` output); one
    with a NaN entry gives NaN.
    """
    total_T1F = jnp.sum(hist_TxCxF, axis=1, keepdims=True)
    p_TxCxF = hist_TxCxF / jnp.where(total_T1F > 0, total_T1F, 1)  # avoid 0/0
    # 0·log 0 = 0: take the log of 1 where p = 0 so no -inf or NaN is ever formed.
    plogp = jnp.where(p_TxCxF > 0, p_TxCxF * jnp.log2(jnp.where(p_TxCxF > 0, p_TxCxF, 1)), 0)
    # A class holding all the mass has p = 1 exactly (h/h may round to 1 − ulp): term 0.
    plogp = jnp.where(hist_TxCxF == total_T1F, 0, plogp)
    ent_TxF = jnp.maximum(-jnp.sum(plogp, axis=1), 0.0)  # clamp −0.0 / tiny negative rounding
    return jnp.where(jnp.isnan(total_T1F[:, 0]), jnp.nan, ent_TxF)  # NaN masses stay NaN


def entropy_curves(acts, labels, num_classes, *, method="label", num_thresholds=100):
    """Class-entropy curve of every filter (paper appendix, thesis §2.2, draft §3.2).

    Args:
      acts: float [N, P, F]: N images or boxes, P = p·p positions, F filters; non-negative
        (ReLU outputs; required for ``"weighted"``, whose weights are the scores: there a
        filter with a negative score gets a NaN curve).
      labels: int [N], the class of each image, in ``[0, num_classes)``.
      num_classes: (static) C.
      method: (static) ``"label"`` (N·P pairs, counts), ``"weighted"`` (N·P pairs, histogram of
        summed scores) or ``"spmax"`` (N pairs, the spatial max of each map; counts).
      num_thresholds: (static) T >= 2 equally spaced thresholds per filter.

    Returns:
      ``(thresholds [T, F], entropy [T, F])``. Conventions:

      * thresholds: ``lo_f + (hi_f − lo_f)·t/(T−1)``, t = 0 … T−1, lo/hi = min/max of filter f's
        pair scores (per method); the last equals hi_f exactly, so the top pair always counts.
      * a pair counts at τ iff score >= τ (ties at τ included); τ_0 = lo includes every pair.
      * entropy in bits, ``−Σ_c p_c log2 p_c``, 0·log 0 = 0; absent classes contribute 0.
      * constant filter (lo = hi, e.g. all zeros): all T thresholds equal lo, every pair counts
        at each, so the curve is flat at the entropy of the full (label or weighted) histogram.
      * ``"weighted"``: if the weighted histogram at τ sums to 0 (only zero scores remain) the
        count histogram is used instead.
      * float32 accumulation; counts are exact.

    Memory O(T·C·F + chunk); time O(N·P·F) (module docstring).
    """
    thresholds_TxF, hist_TxCxF = class_histograms(
        acts, labels, num_classes, method=method, num_thresholds=num_thresholds
    )
    return thresholds_TxF, histogram_entropy(hist_TxCxF)


def area_under_entropy(entropy):
    """AuE per filter: trapezoid rule over x = linspace(0, 1, T): [T, ...] -> [...].

    ``AuE = Σ_t (H_t + H_{t+1}) / 2 · 1/(T−1)``. The x-axis is the threshold index normalised
    to [0, 1] (τ mapped linearly from [lo_f, hi_f]), so AuE is in bits and comparable across
    filters and layers whatever their score scales: 0 <= AuE <= log2 C.
    """
    entropy = jnp.asarray(entropy)
    if entropy.ndim < 1 or entropy.shape[0] < 2:
        raise ValueError(f"entropy must have shape [T >= 2, ...], got {entropy.shape}")
    if not jnp.issubdtype(entropy.dtype, jnp.floating):
        raise ValueError(f"entropy must be floating point, got dtype {entropy.dtype}")
    dx = 1.0 / (entropy.shape[0] - 1)
    return jnp.sum((entropy[1:] + entropy[:-1]) * (0.5 * dx), axis=0)


@functools.partial(jax.jit, static_argnames="counts")
def _smallest_means(aue, counts):
    aue = jnp.asarray(aue)
    if aue.ndim < 1 or aue.shape[-1] < 1:
        raise ValueError(f"aue must have shape [..., F >= 1], got {aue.shape}")
    if not jnp.issubdtype(aue.dtype, jnp.floating):
        raise ValueError(f"aue must be floating point, got dtype {aue.dtype}")
    # Mean cumulative AuE: sort ascending, cumulative sum, i-th entry divided by i.
    cum_F = jnp.cumsum(jnp.sort(aue, axis=-1), axis=-1)
    idx = jnp.asarray(counts, jnp.int32) - 1
    counts_K = jnp.asarray(counts, cum_F.dtype).reshape((1,) * (aue.ndim - 1) + (len(counts),))
    return cum_F[..., idx] / counts_K


def mcaue(aue, *, num_points=30):
    """MCAuE curve of a layer: [..., F] -> [..., num_points] (thesis §2.2.1).

    Point k (k = 1 … K = ``num_points``) is the mean of the ⌈F·k/K⌉ smallest AuE values, i.e.
    of the most selective fraction k/K of the filters. Computed in integers (no rounding).
    """
    if not isinstance(num_points, int) or num_points < 1:
        raise ValueError(f"num_points must be a positive int, got {num_points!r}")
    num_f = jnp.shape(aue)[-1] if jnp.ndim(aue) else 0
    counts = tuple(max(1, -(-num_f * k // num_points)) for k in range(1, num_points + 1))
    return _smallest_means(aue, counts)


def mcaue_at_fractions(aue, *, fractions=TABLE_FRACTIONS):
    """Mean AuE of the ⌈F·q⌉ most selective filters for each fraction q: [..., F] -> [..., Q].

    ``F·q`` is rounded to 9 decimals before the ceiling, so that e.g. 30·0.1 counts 3 filters
    (not 4 from 3.0000000000000004). Fractions must lie in (0, 1].
    """
    if not fractions or any(not 0 < q <= 1 for q in fractions):
        raise ValueError(f"fractions must be non-empty and in (0, 1], got {fractions!r}")
    num_f = jnp.shape(aue)[-1] if jnp.ndim(aue) else 0
    counts = tuple(max(1, math.ceil(round(num_f * q, 9))) for q in fractions)
    return _smallest_means(aue, counts)


def percent_decrease(mcaue_pre, mcaue_ft):
    """Thesis eq. 2.1: ``100·(MCAuE_pre − MCAuE_ft) / MCAuE_pre``, elementwise.

    Positive = fine-tuning made the layer more selective. A zero ``mcaue_pre`` gives ±inf/NaN
    (IEEE division; it needs every selected filter to have zero entropy everywhere).
    """
    pre = jnp.asarray(mcaue_pre)
    ft = jnp.asarray(mcaue_ft)
    if pre.shape != ft.shape:
        raise ValueError(f"mcaue_pre and mcaue_ft shapes differ: {pre.shape} vs {ft.shape}")
    return 100.0 * (pre - ft) / pre


def percent_decrease_table(aue_pre, aue_ft, *, fractions=TABLE_FRACTIONS):
    """Thesis Table 2.1: percent decrease of MCAuE at fractions of the filters.

    Args:
      aue_pre, aue_ft: nested mappings ``{layer: {method: AuE [F]}}`` for the pre-trained and
        fine-tuned networks (same layers, methods and F).
      fractions: the fractions of most selective filters (Table 2.1 uses 0.1, 0.25, 0.5, 1.0).

    Returns:
      ``{layer: {method: numpy float [len(fractions)]}}``.
    """
    table = {}
    for layer, by_method in aue_pre.items():
        if layer not in aue_ft or set(aue_ft[layer]) != set(by_method):
            raise ValueError(f"layer {layer!r}: aue_ft lacks it or has other methods")
        table[layer] = {
            method: np.asarray(
                percent_decrease(
                    mcaue_at_fractions(aue, fractions=fractions),
                    mcaue_at_fractions(aue_ft[layer][method], fractions=fractions),
                )
            )
            for method, aue in by_method.items()
        }
    return table
