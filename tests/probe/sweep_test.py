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
