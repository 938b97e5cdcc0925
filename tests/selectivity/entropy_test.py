"""Tests for jaxcnn.selectivity.entropy against a literal numpy loop over thresholds."""

import functools

import jax
import numpy as np
import pytest

from jaxcnn.selectivity import entropy as E

ATOL = 2e-6  # float32 kernel vs float64 reference, entropies of <= log2(5) bits


def _pairs(acts, labels, method):
    n, p, f = acts.shape
    if method == "spmax":
        return acts.max(axis=1).astype(np.float64), labels
    return acts.reshape(n * p, f).astype(np.float64), np.repeat(labels, p)


def literal_histograms(acts, labels, num_classes, method, num_thresholds, thresholds=None):
    """The definition, one filter and one threshold at a time (float64).

    Thresholds: np.linspace(min, max, T) of each filter's pair scores, unless given.
    """
    scores, y = _pairs(acts, labels, method)
    num_f = scores.shape[1]
    taus = np.zeros((num_thresholds, num_f))
    hist = np.zeros((num_thresholds, num_classes, num_f))
    for f in range(num_f):
        s = scores[:, f]
        col = (
            np.linspace(s.min(), s.max(), num_thresholds)
            if thresholds is None
            else thresholds[:, f]
        )
        taus[:, f] = col
        for t, tau in enumerate(col):
            keep = s >= tau
            counts = np.array([np.sum(keep & (y == c)) for c in range(num_classes)], float)
            h = counts
            if method == "weighted":
                h = np.array([s[keep & (y == c)].sum() for c in range(num_classes)])
                if h.sum() <= 0:
                    h = counts
            hist[t, :, f] = h
    return taus, hist


def literal_entropy(hist):
    out = np.zeros((hist.shape[0], hist.shape[2]))
    for t in range(hist.shape[0]):
        for f in range(hist.shape[2]):
            h = hist[t, :, f]
            p = h[h > 0] / h.sum()
            out[t, f] = -np.sum(p * np.log2(p))
    return out


def _jitted(fn, **kw):
    return jax.jit(functools.partial(fn, **kw))


def _test_acts(seed=0, n=31, p=4, c=5):
    """Random ReLU maps plus the special filters the definition must handle."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    labels[:c] = np.arange(c)  # every class present
    acts = np.maximum(rng.normal(size=(n, p, 7)), 0)
    acts[:, :, 0] = 0.0  # all-zero filter
    acts[:, :, 1] = rng.integers(0, 5, (n, p))  # integer grid: ties exactly at thresholds
    acts[:, :, 2] = np.where(labels[:, None] == 3, rng.uniform(1, 2, (n, p)), 0)  # one class
    # class 4 never scores above 0.5 on filter 3: absent from the histogram above that.
    acts[:, :, 3] = np.where(labels[:, None] == 4, 0.5, rng.uniform(0, 3, (n, p)))
    acts[:, :, 4] = 2.5  # constant, non-zero
    return acts.astype(np.float32), labels


@pytest.mark.parametrize("method", E.METHODS)
def test_entropy_curves_matches_literal_loop(method):
    acts, labels = _test_acts()
    num_t = 5  # integer-grid filter 1 spans 0..4: thresholds 0, 1, 2, 3, 4 hit the ties
    with jax.numpy_rank_promotion("raise"):
        fn = _jitted(E.entropy_curves, num_classes=5, method=method, num_thresholds=num_t)
        tau, ent = fn(acts, labels)
    ref_tau, ref_hist = literal_histograms(acts, labels, 5, method, num_t)
    np.testing.assert_allclose(tau, ref_tau, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ent, literal_entropy(ref_hist), atol=ATOL)
    ent = np.asarray(ent)
    # Filter 2 fires on class 3 only: every pair above 0 is class 3, so entropy is exactly 0
    # at every threshold > 0 (and at all of them for "weighted", whose zero scores weigh 0).
    assert np.all(ent[1:, 2] == 0) and (method != "weighted" or ent[0, 2] == 0)
    # Filter 4 is constant: flat curve at the entropy of all its pairs.
    np.testing.assert_allclose(ent[:, 4], ent[0, 4], atol=0)


@pytest.mark.parametrize("method", E.METHODS)
def test_histograms_many_thresholds_and_chunks(method):
    # Chunks of 3 images (12 for spmax, whose P is 1): a scan over full chunks plus a tail
    # must give the literal definition's histograms (counts exactly).
    acts, labels = _test_acts(seed=1)
    kw = dict(num_classes=5, method=method, num_thresholds=17)
    tau, hist = _jitted(E.class_histograms, chunk_elements=3 * 4 * 7, **kw)(acts, labels)
    ref_tau, ref_hist = literal_histograms(acts, labels, 5, method, 17)
    np.testing.assert_allclose(tau, ref_tau, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(hist, ref_hist, rtol=1e-5, atol=1e-5)
    if method == "label":
        # Filter 3 above 0.5: class 4 is absent, the histogram has a zero there.
        above = np.asarray(tau)[:, 3] > 0.5
        assert above.any() and np.all(np.asarray(hist)[above, 4, 3] == 0)


def test_hand_worked_two_images():
    # Scores 0 (class 0) and 1 (class 1), T = 2: τ = 0 keeps both -> 1 bit, τ = 1 keeps
    # class 1 only -> 0 bits; AuE = (1 + 0)/2 = 0.5. Weighted: τ = 0 sums weights (0, 1) -> 0.
    acts = np.array([[[0.0]], [[1.0]]], np.float32)
    labels = np.array([0, 1])
    _, ent = _jitted(E.entropy_curves, num_classes=2, num_thresholds=2)(acts, labels)
    np.testing.assert_allclose(ent[:, 0], [1.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(E.area_under_entropy(ent), [0.5], atol=1e-7)
    kw = dict(num_classes=2, num_thresholds=2, method="weighted")
    _, ent = _jitted(E.entropy_curves, **kw)(acts, labels)
    np.testing.assert_allclose(ent[:, 0], [0.0, 0.0], atol=1e-7)
    # All-zero weighted filter falls back to counts: 2 classes, 1 image each -> 1 bit.
    _, ent = _jitted(E.entropy_curves, **kw)(np.zeros_like(acts), labels)
    np.testing.assert_allclose(ent[:, 0], [1.0, 1.0], atol=1e-7)


def test_weighted_flags_negative_scores():
    acts = np.array([[[-1.0, 0.5]], [[2.0, 1.0]]], np.float32)
    _, ent = E.entropy_curves(acts, np.array([0, 1]), 2, method="weighted", num_thresholds=3)
    assert np.all(np.isnan(ent[:, 0])) and np.all(np.isfinite(ent[:, 1]))


def test_degenerate_spacing_uses_exact_comparisons():
    # Scores 1000 + a few ulps: float32 thresholds collapse and repeat, so the bucket guess is
    # off by several buckets (the iterative branch). The histogram must still equal the literal
    # count "score >= returned threshold".
    rng = np.random.default_rng(2)
    ulps = np.float32(1000.0) + rng.integers(0, 4, (20, 3, 2)) * np.spacing(np.float32(1000.0))
    acts = ulps.astype(np.float32)
    labels = rng.integers(0, 3, 20)
    tau, hist = _jitted(E.class_histograms, num_classes=3, num_thresholds=50)(acts, labels)
    _, ref = literal_histograms(acts, labels, 3, "label", 50, thresholds=np.asarray(tau))
    np.testing.assert_array_equal(hist, ref)


def test_area_under_entropy_is_trapezoid():
    ent = np.random.default_rng(3).uniform(0, 3, (11, 4)).astype(np.float32)
    got = jax.jit(E.area_under_entropy)(ent)
    np.testing.assert_allclose(got, np.trapezoid(ent, np.linspace(0, 1, 11), axis=0), rtol=1e-6)


def test_mcaue_literal():
    aue = np.random.default_rng(4).uniform(0, 4, 47).astype(np.float32)
    got = jax.jit(functools.partial(E.mcaue, num_points=30))(aue)
    mean_cum = np.cumsum(np.sort(aue)) / np.arange(1, 48)  # i-th entry / i
    want = [mean_cum[int(np.ceil(47 * k / 30)) - 1] for k in range(1, 31)]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # Batched over layers of equal width.
    got2 = E.mcaue(np.stack([aue, aue[::-1]]), num_points=30)
    np.testing.assert_allclose(got2, [want, want], rtol=1e-6)


def test_fractions_and_percent_decrease():
    aue = np.arange(30, dtype=np.float32)  # 0, 1, …, 29
    got = E.mcaue_at_fractions(aue)  # 3, 8, 15, 30 smallest (30·0.1 counts 3, not 4)
    np.testing.assert_allclose(got, [1.0, 3.5, 7.0, 14.5])
    np.testing.assert_allclose(
        E.percent_decrease(np.array([2.0, 4.0]), np.array([1.0, 5.0])), [50.0, -25.0]
    )
    table = E.percent_decrease_table({"fc6": {"label": aue}}, {"fc6": {"label": aue / 2}})
    np.testing.assert_allclose(table["fc6"]["label"], [50.0, 50.0, 50.0, 50.0], rtol=1e-6)


@pytest.mark.parametrize(
    "acts, labels, kw, match",
    [
        (np.zeros((4, 6)), np.zeros(4, int), {}, "shape"),
        (np.zeros((4, 1, 2), int), np.zeros(4, int), {}, "floating"),
        (np.zeros((4, 1, 2)), np.zeros(3, int), {}, "labels must have shape"),
        (np.zeros((4, 1, 2)), np.zeros(4), {}, "integer"),
        (np.zeros((4, 1, 2)), np.array([0, 1, 2, 3]), {}, r"\[0, 3\)"),
        (np.zeros((4, 1, 2)), np.zeros(4, int), {"method": "max"}, "method"),
        (np.zeros((4, 1, 2)), np.zeros(4, int), {"num_thresholds": 1}, "num_thresholds"),
        (np.zeros((0, 1, 2)), np.zeros(0, int), {}, "non-empty"),
    ],
)
def test_entropy_curves_bad_input(acts, labels, kw, match):
    with pytest.raises(ValueError, match=match):
        E.entropy_curves(acts.astype(acts.dtype), labels, 3, **kw)


def test_other_bad_input():
    with pytest.raises(ValueError, match="num_classes"):
        E.entropy_curves(np.zeros((2, 1, 1), np.float32), np.zeros(2, int), 0)
    with pytest.raises(ValueError, match="chunk_elements"):
        E.class_histograms(np.zeros((2, 1, 1), np.float32), np.zeros(2, int), 2, chunk_elements=0)
    with pytest.raises(ValueError, match="T >= 2"):
        E.area_under_entropy(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="num_points"):
        E.mcaue(np.zeros(3), num_points=0)
    with pytest.raises(ValueError, match="fractions"):
        E.mcaue_at_fractions(np.zeros(3), fractions=(0.0, 1.0))
    with pytest.raises(ValueError, match="shapes differ"):
        E.percent_decrease(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="floating"):
        E.mcaue(np.zeros(3, int))
