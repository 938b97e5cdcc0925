"""Tests for jaxcnn.selectivity.analysis: wiring of the study on a tiny synthetic pair."""

import numpy as np
import pytest

from jaxcnn.selectivity import analysis as selectivity
from jaxcnn.selectivity import entropy, sparsity

CLASSES = ["a", "b", "c"]


def _taps(seed, n=24):
    rng = np.random.default_rng(seed)
    relu = lambda *s: np.maximum(rng.normal(size=s), 0).astype(np.float32)
    return {"conv5": relu(n, 3, 3, 8), "fc6": relu(n, 6)}


@pytest.fixture(scope="module")
def study():
    labels = np.arange(24) % 3
    pre, ft = _taps(0), _taps(1)
    ft["fc6"][:, 0] += 3.0 * (labels == 2)  # fine-tuning made fc6 unit 0 select class c
    config = selectivity.SelectivityConfig(num_thresholds=10, num_points=6, top_pr=2)
    return pre, ft, labels, selectivity.selectivity(pre, ft, labels, 3, config=config)


def test_results_follow_the_definitions(study):
    pre, ft, labels, res = study
    _, ent = entropy.entropy_curves(
        pre["conv5"].reshape(24, 9, 8), labels, 3, method="weighted", num_thresholds=10
    )
    np.testing.assert_allclose(
        res["pre"]["aue"]["weighted"]["conv5"], entropy.area_under_entropy(ent), rtol=1e-6
    )
    assert res["pre"]["mcaue"]["spmax"]["fc6"].shape == (6,)
    # Table 2.1 entries are percent decreases of the MCAuE at the fractions.
    mc = lambda r: entropy.mcaue_at_fractions(r["aue"]["label"]["fc6"])
    want = 100 * (mc(res["pre"]) - mc(res["ft"])) / mc(res["pre"])
    np.testing.assert_allclose(res["table_2_1"]["fc6"]["label"], want, rtol=1e-5)
    assert res["ft"]["aue"]["label"]["fc6"][0] < res["pre"]["aue"]["label"]["fc6"][0]
    frac = sparsity.nonzero_fraction(ft["conv5"])
    assert res["ft"]["sparsity"]["conv5"] == pytest.approx(sparsity.sparsity_summary(frac))
    gm = res["pre"]
    assert gm["filter_ap"].shape == (3, 8) and gm["precision_area"].shape == (3, 8)
    assert gm["top_filters"].shape == (3, 2) and gm["pr_precision"].shape == (3, 2, 24)
    best = np.argmax(np.nan_to_num(gm["filter_ap"], nan=-1), axis=1)
    np.testing.assert_array_equal(gm["top_filters"][:, 0], best)
    assert "subset_ap" not in gm  # no training boxes given


def test_markdown_and_figures(study, tmp_path):
    _, _, _, res = study
    md = selectivity.table_2_1_markdown(res["table_2_1"])
    assert md.count("\n") == 2 + 2 - 1 and "| conv5 |" in md and "weighted 0.25" in md
    md6 = selectivity.table_6_markdown({"pre": res["pre"]["sparsity"]})
    assert "| pre |" in md6 and "±" in md6
    needed = {"pre": np.array([[1, 2, 3], [5, 10, 20]])}
    md5 = selectivity.table_5_markdown(needed, CLASSES)
    assert "| pre | 50% | 1 | 2 | 3 |" in md5 and "| pre | 90% | 5 | 10 | 20 |" in md5
    paths = selectivity.figures(res, CLASSES, str(tmp_path))
    assert set(paths) == {"aue_label", "aue_weighted", "aue_spmax", "mcaue", "top_pr"}
    assert all((tmp_path / f"{k}.png").stat().st_size > 5000 for k in paths)


def test_bad_input():
    with pytest.raises(ValueError, match="tap must be"):
        selectivity.as_maps(np.zeros(3))
    taps = _taps(0)
    with pytest.raises(ValueError, match="layers differ"):
        selectivity.selectivity(taps, {"conv5": taps["conv5"]}, np.arange(24) % 3, 3)
    config = selectivity.SelectivityConfig(gmc_layer="conv4")
    with pytest.raises(ValueError, match="conv4"):
        selectivity.analyse_network(taps, np.arange(24) % 3, 3, config=config)


def test_with_training_boxes_runs_greedy_subsets(study, tmp_path):
    labels = np.arange(24) % 3
    pre, ft = _taps(0), _taps(1)
    for taps in (pre, ft):  # make conv5 filters 0-2 class-selective so the SVMs have signal
        taps["conv5"][..., :3] += 2.0 * (labels[:, None, None, None] == np.arange(3))
    train = (pre, ft, labels)
    config = selectivity.SelectivityConfig(  # fixture's sizes: its compiled kernels are reused
        methods=("label",), num_thresholds=10, num_points=6, top_pr=2, ks=(1, 2, 4), overlap_k=3
    )
    res = selectivity.selectivity(pre, ft, labels, 3, config=config, train=train)
    gm = res["ft"]
    np.testing.assert_array_equal(gm["subset_ks"], [1, 2, 4, 8])
    assert gm["subset_ap"].shape == (3, 4) and gm["filters_needed"].shape == (2, 3)
    assert gm["overlap"].shape == (3, 3) and gm["overlap_chance"] == 3 / 8
    np.testing.assert_allclose(np.diag(gm["overlap"]), 1.0)
    # Class c's most important filter is its planted filter c.
    np.testing.assert_array_equal(np.argmax(gm["importance"], axis=1), [0, 1, 2])
    paths = selectivity.figures(res, CLASSES, str(tmp_path))
    assert {"ap_vs_filters", "overlap_pre", "overlap_ft"} <= set(paths)
