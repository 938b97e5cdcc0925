"""Tests for jaxcnn.probe.plots: both figures written whole, nothing left behind."""

import numpy as np

from jaxcnn.probe import plots as P


def test_figures_write_pngs(tmp_path):
    layers = ["conv1", "conv5", "fc7"]
    outs = [
        P.plot_metric_vs_iteration(
            [5, 15, 305], {m: [20, 40, 50] for m in layers}, tmp_path / "a.png"
        ),
        P.plot_metric_vs_layer(
            layers, {"none": [1, 2, 3], "sp-max": [1, np.nan, 2]}, tmp_path / "b.png"
        ),
    ]
    for out in outs:
        data = open(out, "rb").read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]
