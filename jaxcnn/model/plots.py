"""Pictures of a network's weights: the first layer's filters (paper Fig. 2)."""

import math
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from jaxcnn.storage import save_figure


def conv1_filter_grid(kernel, *, ncols=None, pad=1, per_filter=True, bgr=False):
    """RGB tile image of first-layer filters (paper Fig. 2): [kh, kw, 3, F] -> [H, W, 3].

    Each filter becomes a kh×kw RGB tile, mapped linearly to [0, 1] by its own min/max
    (``per_filter=True``) or by the min/max over all filters (relative contrast kept); a
    constant tile becomes 0.5 grey. Tiles are laid out row-major, ``ncols`` per row (default
    ⌈√F⌉), separated by ``pad`` white pixels. ``bgr=True`` flips Caffe's BGR channel order.
    """
    k = np.asarray(kernel, np.float64)
    if k.ndim != 4 or k.shape[2] != 3 or k.shape[3] == 0:
        raise ValueError(f"kernel must have shape [kh, kw, 3, F >= 1], got {k.shape}")
    tiles = np.moveaxis(k, 3, 0)[..., ::-1] if bgr else np.moveaxis(k, 3, 0)  # [F, kh, kw, 3]
    axes = (1, 2, 3) if per_filter else (0, 1, 2, 3)
    lo = tiles.min(axis=axes, keepdims=True)
    span = tiles.max(axis=axes, keepdims=True) - lo
    tiles = np.where(span > 0, (tiles - lo) / np.where(span > 0, span, 1), 0.5)
    num_f, kh, kw, _ = tiles.shape
    ncols = ncols or math.ceil(math.sqrt(num_f))
    nrows = math.ceil(num_f / ncols)
    out = np.ones((nrows * (kh + pad) + pad, ncols * (kw + pad) + pad, 3))
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        y0, x0 = pad + r * (kh + pad), pad + c * (kw + pad)
        out[y0 : y0 + kh, x0 : x0 + kw] = tile
    return out


def plot_filter_grids(grids, path):
    """Conv-1 filter grids side by side, one panel per snapshot: ``{title: [H, W, 3]}``."""
    if not isinstance(grids, Mapping) or not grids:
        raise ValueError("grids must be a non-empty mapping {title: image}")
    fig = Figure(figsize=(3.5 * len(grids) + 0.5, 4.0), layout="constrained")
    axes = fig.subplots(1, len(grids), squeeze=False).ravel()
    for ax, (title, img) in zip(axes, grids.items(), strict=True):
        ax.imshow(np.clip(np.asarray(img), 0, 1), interpolation="nearest")
        ax.set_title(str(title))
        ax.set_axis_off()
    return save_figure(fig, path, dpi=100, bbox_inches="tight")
