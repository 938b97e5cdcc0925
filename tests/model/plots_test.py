"""Tests for jaxcnn.model.plots: the conv-1 filter grid by hand, the figure written whole."""

import numpy as np
import pytest

from jaxcnn.model import plots as P


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


def test_filter_grids_png_and_bad_input(tmp_path):
    grid = P.conv1_filter_grid(np.random.default_rng(0).normal(size=(11, 11, 3, 16)))
    out = P.plot_filter_grids({"5k": grid, "305k": grid[::-1]}, tmp_path / "sub" / "conv1.png")
    data = open(out, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["conv1.png"]  # no temporary files
    with pytest.raises(ValueError, match="mapping"):
        P.plot_filter_grids({}, tmp_path / "x.png")
