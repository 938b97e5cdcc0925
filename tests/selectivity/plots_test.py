"""Tests for jaxcnn.selectivity.plots: every figure as a smoke test, bad input."""

import pathlib

import numpy as np
import pytest

from jaxcnn.selectivity import plots as P

CLASSES = ["aero", "bike", "bird", "boat"]


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
    outs = [
        P.plot_aue_distributions(aue, aue_ft, tmp_path / "aue.png"),
        P.plot_mcaue_curves(mc, mc, tmp_path / "mcaue.png"),
        P.plot_top_pr_curves((prec, rec), (prec[::-1], rec), CLASSES, tmp_path / "pr.png"),
        P.plot_ap_vs_filters(ks, {"pre": ap, "ft": ap * 0.9}, CLASSES, tmp_path / "apk.png"),
        P.plot_overlap(np.eye(4) * 0.8 + 0.1, CLASSES, tmp_path / "ov.png", chance=0.195),
        P.plot_cka_heatmap(rng.uniform(size=(3, 4)), layers, [5, 15, 50, 305], tmp_path / "c.png"),
    ]
    for out in outs:
        _assert_png(pathlib.Path(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["aue.png", "mcaue.png", "pr.png", "apk.png", "ov.png", "c.png"]
    )  # no temporary files left behind


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="C, C"):
        P.plot_overlap(np.eye(3), CLASSES, tmp_path / "x.png", chance=0.1)
    with pytest.raises(ValueError, match="matrix"):
        P.plot_cka_heatmap(np.eye(3), ["a"], ["b"], tmp_path / "x.png")
