"""grids: tile layout and box outlines."""

import numpy as np
import pytest

from jaxcnn.data import grids, sources


def test_draw_box_outline_by_hand():
    image = np.zeros((10, 10, 3), np.uint8)
    grids.draw_box(image, np.array([0.2, 0.1, 0.5, 0.6]), np.array([1, 2, 3], np.uint8))
    # rows 2..4, cols 1..5 (ymax 0.5 -> last row ceil(5) - 1 = 4, xmax 0.6 -> col 5)
    outline = np.zeros((10, 10), bool)
    outline[2, 1:6] = outline[4, 1:6] = outline[2:5, 1] = outline[2:5, 5] = True
    np.testing.assert_array_equal(image[..., 0] == 1, outline)


def test_example_grid_of_tiny_scenes(tiny_dir):
    scenes = sources.open_split("toyworld/scenes_tiny", "test", data_dir=tiny_dir)
    grid = grids.example_grid(scenes, rows=2, cols=3, size=72, scale=2)
    assert grid.shape == (288, 432, 3) and grid.dtype == np.uint8
    # tile (row 1, col 2) is record 5, upscaled by 2 (before its box outlines)
    tile = grid[144:288:2, 288:432:2]
    raw = scenes[5]["image"]
    differs = np.any(tile != raw, axis=-1)
    colours = {tuple(c) for c in tile[differs]}
    assert colours <= {(40, 255, 40), (255, 40, 40)}  # only box outlines were drawn
    with pytest.raises(ValueError, match="the grid needs 60"):
        grids.example_grid(scenes.subset(range(3)), rows=6, cols=10, size=72)
