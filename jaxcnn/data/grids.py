"""Example grids of a source's images (boxes drawn for detection records), as arrays.

The caller writes the PNG (experiments/prepare_data.py); this module only builds pixels.
"""

from __future__ import annotations

import numpy as np

from jaxcnn.data import preprocess

_CLEAR_RGB = np.array([40, 255, 40], np.uint8)
_DIFFICULT_RGB = np.array([255, 40, 40], np.uint8)


def draw_box(image_HxWx3: np.ndarray, box_yxyx: np.ndarray, rgb: np.ndarray) -> None:
    """Draws a 1-pixel outline of a normalised (ymin, xmin, ymax, xmax) box, in place."""
    h, w = image_HxWx3.shape[:2]
    y0 = int(np.clip(np.floor(box_yxyx[0] * h), 0, h - 1))
    x0 = int(np.clip(np.floor(box_yxyx[1] * w), 0, w - 1))
    y1 = int(np.clip(np.ceil(box_yxyx[2] * h) - 1, y0, h - 1))
    x1 = int(np.clip(np.ceil(box_yxyx[3] * w) - 1, x0, w - 1))
    image_HxWx3[[y0, y1], x0 : x1 + 1] = rgb
    image_HxWx3[y0 : y1 + 1, [x0, x1]] = rgb


def example_grid(source, *, rows: int, cols: int, size: int, scale: int = 2) -> np.ndarray:
    """uint8 [rows * size * scale, cols * size * scale, 3]: the first rows*cols records,
    resized to size x size, boxes outlined (green clear, red difficult), nearest-upscaled."""
    n = rows * cols
    if len(source) < n:
        raise ValueError(f"{source!r} has {len(source)} records, the grid needs {n}")
    tiles = []
    for i in range(n):
        record = source[i]
        tile = preprocess.resize_image(record["image"], size).copy()
        objects = record.get("objects")
        if objects is not None:
            for box, difficult in zip(objects["bbox"], objects["difficult"], strict=True):
                draw_box(tile, box, _DIFFICULT_RGB if difficult else _CLEAR_RGB)
        tiles.append(tile)
    grid = np.stack(tiles).reshape(rows, cols, size, size, 3).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(rows * size, cols * size, 3)
    return np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
