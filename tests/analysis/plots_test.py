"""Tests for jaxcnn.analysis.plots: the filter grid by hand, every figure as a smoke test."""

import pathlib

import numpy as np
import pytest

from jaxcnn.analysis import plots as P

CLASSES = ["aero", "bike", "bird", "boat"]


def test_conv1_filter_grid_hand_case():
    # Two 1×2 filters, pad 1, 2 columns: filter 0 = [[0, 0, 0], [1, 2, 4]] per pixel ->
    # per-filter min 0, max 4; filter 1 constant -> grey.
    k = np.zeros((1, 2, 3, 2))
    k[0, 1, :, 0] = [1, 2, 4]
    k[..., 1] = 7.0
    grid = P.conv1_filter_grid(k, ncols=2)
    assert grid.shape == (3, 7, 3)
    np.testing.assert_allclose(grid[1, 1], [0, 0, 0])
    np.testing.assert_allclose(grid[1, 2], [0.25, 0.5, 1.0])
    np.testing.assert_allclose(grid[1, 4:6], 0.5)
    np.testing.assert_allclose(grid[0], 1.0)  # padding is white
    np.testing.assert_allclose(P.conv1_filter_grid(k, ncols=2, bgr=True)[1, 2], [1.0, 0.5, 0.25])
    glob = P.conv1_filter_grid(k, ncols=2, per_filter=False)  # global range 0..7
    np.testing.assert_allclose(glob[1, 2], [1 / 7, 2 / 7, 4 / 7])
    with pytest.raises(ValueError, match="kh, kw, 3, F"):
        P.conv1_filter_grid(np.zeros((3, 3, 1, 4)))


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, (path, len(data))


def test_every_figure_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    layers = ["conv1", "conv5", "fc7"]
    aue = {m: rng.uniform(1, 2, 16) for m in layers}
    aue_ft = {m: a - rng.uniform(0, 0.5, 16) for m, a in aue.items()}
    mc = {"label": {m: np.sort(rng.uniform(1, 2, 30)) for m in layers}}
    mc["spmax"] = mc["label"]
    prec = rng.uniform(0, 1, (4, 5, 20))
    rec = np.sort(rng.uniform(0, 1, (4, 5, 20)), axis=-1)
    ks = [1, 2, 5, 10, 16]
    ap = np.sort(rng.uniform(0.1, 0.9, (4, 5)), axis=1)
    grid = P.conv1_filter_grid(rng.normal(size=(11, 11, 3, 16)))
    outs = [
        P.plot_aue_distributions(aue, aue_ft, tmp_path / "aue.png"),
        P.plot_mcaue_curves(mc, mc, tmp_path / "mcaue.png"),
        P.plot_top_pr_curves((prec, rec), (prec[::-1], rec), CLASSES, tmp_path / "pr.png"),
        P.plot_ap_vs_filters(ks, {"pre": ap, "ft": ap * 0.9}, CLASSES, tmp_path / "apk.png"),
        P.plot_overlap(np.eye(4) * 0.8 + 0.1, CLASSES, tmp_path / "ov.png", chance=0.195),
        P.plot_filter_grids({"5k": grid, "305k": grid[::-1]}, tmp_path / "sub" / "conv1.png"),
        P.plot_cka_heatmap(rng.uniform(size=(3, 4)), layers, [5, 15, 50, 305], tmp_path / "c.png"),
        P.plot_metric_vs_iteration(
            [5, 15, 305], {m: [20, 40, 50] for m in layers}, tmp_path / "map.png"
        ),
    ]
    for out in outs:
        _assert_png(pathlib.Path(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["aue.png", "mcaue.png", "pr.png", "apk.png", "ov.png", "sub", "c.png", "map.png"]
    )  # no temporary files left behind


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="C, C"):
        P.plot_overlap(np.eye(3), CLASSES, tmp_path / "x.png", chance=0.1)
    with pytest.raises(ValueError, match="matrix"):
        P.plot_cka_heatmap(np.eye(3), ["a"], ["b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="mapping"):
        P.plot_filter_grids({}, tmp_path / "x.png")
