"""The probe grid: which (layer, ablation) pairs run, and that each cell of a sweep is the
protocol's score on that ablation of that layer's features."""

import numpy as np
import pytest

from jaxcnn import features, probe


def test_ablation_grid_applies_spatial_ablations_to_conv_layers_only():
    grid = features.ablation_grid(("conv5", "fc7"), ("none", "binarize", "sp-max"))
    assert grid == [
        ("conv5", "none"),
        ("conv5", "binarize"),
        ("conv5", "sp-max"),
        ("fc7", "none"),
        ("fc7", "binarize"),
    ]
    assert features.ablation_grid(("fc6",), ("sp-shuffle",)) == []
    with pytest.raises(ValueError, match="binarize"):
        features.ablation_grid(("conv5",), ("binarise",))


def test_ablated_flattens_and_matches_the_ablation():
    x = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3) - 10
    np.testing.assert_array_equal(features.ablated(x, "sp-max"), x.reshape(2, 4, 3).max(axis=1))
    np.testing.assert_array_equal(features.ablated(x, "binarize"), (x > 0).reshape(2, -1))
    assert features.ablated(x, "none").shape == (2, 12)


def _task(rng, n, classes=3):
    labels = np.full((n, classes), -1, np.int8)
    labels[np.arange(n), np.arange(n) % classes] = 1
    taps = {
        "conv5": rng.normal(size=(n, 2, 2, 4)).astype(np.float32),
        "fc7": rng.normal(size=(n, 6)).astype(np.float32),
    }
    taps["conv5"][..., 0] += 2 * (labels[:, :1, None] > 0)  # class 0 visible in conv5
    return {"taps": taps, "labels": labels}


def test_every_cell_is_the_protocol_score_of_its_ablation():
    rng = np.random.default_rng(0)
    train, test = _task(rng, 30), _task(rng, 24)
    grid = features.ablation_grid(("conv5", "fc7"), ("none", "sp-max", "binarize"))
    seen = []
    out = probe.probe_layers(
        train,
        test,
        grid,
        task="multilabel",
        num_classes=3,
        progress=lambda i, n, la, ab: seen.append((i, n, la, ab)),
    )
    assert seen[-1] == (len(grid), len(grid), "fc7", "binarize")
    assert {la: sorted(v) for la, v in out.items()} == {
        "conv5": ["binarize", "none", "sp-max"],
        "fc7": ["binarize", "none"],
    }
    for layer, ablation in grid:
        want = probe.multilabel_probe(
            features.ablated(train["taps"][layer], ablation, seed=0),
            train["labels"],
            features.ablated(test["taps"][layer], ablation, seed=1),
            test["labels"],
        )
        assert out[layer][ablation] == pytest.approx(100 * want.mean_ap)
    with pytest.raises(ValueError, match="task"):
        probe.probe_score(None, None, None, None, task="ranking", num_classes=3, protocol=None)


def test_split_rows_keep_sizes_are_disjoint_and_split_zero_is_the_given_one():
    rows = probe.sweep.split_rows(6, 4, 3)
    np.testing.assert_array_equal(rows[0][0], np.arange(6))
    np.testing.assert_array_equal(rows[0][1], np.arange(6, 10))
    for train, test in rows:
        assert len(train) == 6 and len(test) == 4
        assert sorted(np.concatenate([train, test]).tolist()) == list(range(10))
    assert not np.array_equal(rows[1][0], rows[2][0])
    again = probe.sweep.split_rows(6, 4, 3)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(rows, again, strict=True))


def test_repeated_splits_refit_at_the_first_splits_costs():
    rng = np.random.default_rng(1)
    train, test = _task(rng, 30), _task(rng, 24)
    x_tr, x_te = (
        features.ablated(train["taps"]["conv5"], "none"),
        features.ablated(test["taps"]["conv5"], "none"),
    )
    scores = probe.sweep.split_scores(
        x_tr,
        train["labels"],
        x_te,
        test["labels"],
        task="multilabel",
        num_classes=3,
        protocol=probe.VOC07_VISSL,
        splits=3,
    )
    first = probe.multilabel_probe(x_tr, train["labels"], x_te, test["labels"])
    assert len(scores) == 3 and scores[0] == pytest.approx(100 * first.mean_ap)
    x, y = np.concatenate([x_tr, x_te]), np.concatenate([train["labels"], test["labels"]])
    tr, te = probe.sweep.split_rows(30, 24, 3)[2]
    want = probe.multilabel_probe(x[tr], y[tr], x[te], y[te], cost_K=first.cost_K)
    assert scores[2] == pytest.approx(100 * want.mean_ap)
    np.testing.assert_array_equal(want.cost_K, first.cost_K)
    # a sweep with splits returns the lists
    out = probe.probe_layers(
        train, test, [("conv5", "none")], task="multilabel", num_classes=3, splits=3
    )
    assert out["conv5"]["none"] == pytest.approx(scores)


def test_given_costs_skip_selection_and_must_be_on_the_grid():
    rng = np.random.default_rng(2)
    train, test = _task(rng, 30), _task(rng, 24)
    x_tr, x_te = (
        features.ablated(train["taps"]["fc7"], "none"),
        features.ablated(test["taps"]["fc7"], "none"),
    )
    res = probe.multilabel_probe(x_tr, train["labels"], x_te, test["labels"], cost_K=10.0)
    assert res.cv_ap_KxL is None and np.all(res.cost_K == 10.0)
    with pytest.raises(ValueError, match="grid"):
        probe.multilabel_probe(x_tr, train["labels"], x_te, test["labels"], cost_K=3.0)
    y_tr, y_te = np.argmax(train["labels"], 1), np.argmax(test["labels"], 1)
    fixed = probe.multiclass_probe(x_tr, y_tr, x_te, y_te, num_classes=3, cost=1.0)
    chosen = probe.multiclass_probe(x_tr, y_tr, x_te, y_te, num_classes=3)
    again = probe.multiclass_probe(x_tr, y_tr, x_te, y_te, num_classes=3, cost=chosen.cost)
    assert fixed.cost == 1.0 and fixed.selected_on == "given"
    assert again.accuracy == pytest.approx(chosen.accuracy, abs=1e-6)


class _Cache:
    """A feature cache over fixed features; counts the reads. Checkpoints are named by `run`."""

    def __init__(self, pairs):
        self.pairs, self.reads = pairs, 0

    def folder(self, run, step, fs):
        return step, f"/features/{run}-{fs}"

    def pair(self, run, step, task_sets, taps):
        self.reads += 1
        train, test = self.pairs[run]
        return train, test, task_sets[2], task_sets[3]


def test_probe_fits_a_cell_once_per_process(monkeypatch):
    rng = np.random.default_rng(3)
    pairs = {r: (_task(rng, 30), _task(rng, 24)) for r in ("a", "b")}
    cache = _Cache(pairs)
    monkeypatch.setattr(probe.sweep, "_scores", {})
    sets = ("train", "test", "multilabel", 3)
    first = probe.probe(cache, "a", None, sets, [("conv5", "none")], "voc07_c20", splits=2)
    both = probe.probe(
        cache, "a", None, sets, [("conv5", "none"), ("fc7", "none")], "voc07_c20", splits=2
    )
    assert cache.reads == 2 and both["conv5"] == first["conv5"]  # only fc7 was new
    again = probe.probe(cache, "a", None, sets, [("fc7", "none")], "voc07_c20", splits=2)
    assert cache.reads == 2 and again["fc7"] == both["fc7"]
    # another checkpoint is another cell; fewer splits of a cell are read, not refitted
    other = probe.probe(cache, "b", None, sets, [("fc7", "none")], "voc07_c20", splits=2)
    one = probe.probe(cache, "a", None, sets, [("fc7", "none")], "voc07_c20", splits=1)
    assert cache.reads == 3 and other["fc7"] != both["fc7"]
    assert one["fc7"]["none"] == both["fc7"]["none"][0]  # split 0 is the given partition
    want = probe.probe_layers(
        *pairs["a"], [("fc7", "none")], task="multilabel", num_classes=3,
        protocol=probe.PROTOCOLS["voc07_c20"], splits=2,
    )  # fmt: skip
    assert both["fc7"]["none"] == want["fc7"]["none"]


def test_more_splits_of_a_cell_fit_only_the_missing_ones(monkeypatch):
    rng = np.random.default_rng(4)
    pairs = {"a": (_task(rng, 30), _task(rng, 24))}
    cache = _Cache(pairs)
    monkeypatch.setattr(probe.sweep, "_scores", {})
    sets = ("train", "test", "multilabel", 3)
    fits = []
    real = probe.sweep._score_and_cost
    monkeypatch.setattr(probe.sweep, "_score_and_cost", lambda *a: fits.append(a[-1]) or real(*a))
    one = probe.probe(cache, "a", None, sets, [("conv5", "none")], "voc07_c20", splits=1)
    assert len(fits) == 1 and fits[0] is None  # split 0: cross-validated cost
    three = probe.probe(cache, "a", None, sets, [("conv5", "none")], "voc07_c20", splits=3)
    assert len(fits) == 3 and all(c is not None for c in fits[1:])  # splits 1, 2 only
    assert three["conv5"]["none"][0] == one["conv5"]["none"]
    monkeypatch.setattr(probe.sweep, "_score_and_cost", real)
    want = probe.probe_layers(
        *pairs["a"], [("conv5", "none")], task="multilabel", num_classes=3,
        protocol=probe.PROTOCOLS["voc07_c20"], splits=3,
    )  # fmt: skip
    assert three["conv5"]["none"] == want["conv5"]["none"]
    two = probe.probe(cache, "a", None, sets, [("conv5", "none")], "voc07_c20", splits=2)
    assert cache.reads == 2 and two["conv5"]["none"] == want["conv5"]["none"][:2]
    with pytest.raises(ValueError, match="splits"):
        probe.probe(cache, "a", None, sets, [("conv5", "none")], "voc07_c20", splits=0)
