"""Figures in the style of Zeiler & Fergus (2014): top-k grids with projections beside patches
(Fig. 2), occlusion sensitivity (Fig. 7), feature evolution over training (Fig. 4).

Every ``plot_*`` function takes numpy arrays and a destination path, writes one PNG atomically
and returns the path (matplotlib's object API, no pyplot state). Projections are shown as Zeiler
& Fergus do, each tile centred on grey and scaled by its own contrast (`show_projection`).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colors
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from scipy import ndimage


def _save(fig, path, dpi=100):
    """Write `fig` to `path` as PNG atomically (temporary file, then rename)."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=directory)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the figure is a normal readable file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def show_projection(p_HxWx3, *, percentile: float = 99.0) -> np.ndarray:
    """A projection as an image in [0, 1]: grey is 0, each tile scaled so that the
    `percentile`-th percentile of its non-zero magnitudes reaches black / white (clipped beyond),
    so that a few extreme pixels do not leave the rest grey."""
    p = np.asarray(p_HxWx3, np.float64)
    mags = np.abs(p[p != 0])
    if mags.size == 0:
        return np.full(p.shape, 0.5)
    return np.clip(0.5 + p / (2 * np.percentile(mags, percentile)), 0.0, 1.0)


def tile(images_NxHxWx3, *, ncols: int, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """Images laid out row-major, `ncols` per row, `pad` pixels of `fill` around each."""
    imgs = np.asarray(images_NxHxWx3)
    n, h, w, c = imgs.shape
    nrows = math.ceil(n / ncols)
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), fill)
    for i, img in enumerate(imgs):
        y0, x0 = pad + (i // ncols) * (h + pad), pad + (i % ncols) * (w + pad)
        out[y0 : y0 + h, x0 : x0 + w] = img
    return out


def show_footprint(p_HxWx3, patch_HxWx3, *, sigma: float = 2.0) -> np.ndarray:
    """The patch seen through the projection's footprint: the projection's magnitude summed
    over colours, Gaussian-smoothed (`sigma` px), scaled to [0, 1] by its 99th percentile, blends
    the patch (1) into grey (0). Where a unit's signal lands, without the colour noise that
    transposed first-layer filters add to the signed projection."""
    energy = ndimage.gaussian_filter(np.abs(np.asarray(p_HxWx3, np.float64)).sum(-1), sigma)
    top = np.percentile(energy, 99)
    if top <= 0:  # a zero projection (the unit's activation is 0 there): all grey
        return np.full(np.shape(patch_HxWx3), 0.5)
    alpha = np.clip(energy / top, 0.0, 1.0)[..., None]
    return np.asarray(patch_HxWx3) * alpha + 0.5 * (1 - alpha)


STYLES = ("signed", "footprint")


def unit_block(projections_KxRxRx3, patches_KxRxRx3, *, styles=STYLES) -> np.ndarray:
    """One unit as in Fig. 2: its k projections in a square grid (one grid per style: the
    signed projection, `show_projection`; the footprint, `show_footprint`), then its k patches."""
    k = len(projections_KxRxRx3)
    side = math.ceil(math.sqrt(k))
    grids = []
    for style in styles:
        if style == "signed":
            shown = [show_projection(p) for p in projections_KxRxRx3]
        elif style == "footprint":
            shown = [show_footprint(p, q) for p, q in zip(projections_KxRxRx3, patches_KxRxRx3,
                                                           strict=True)]  # fmt: skip
        else:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}")
        grids.append(tile(np.stack(shown), ncols=side))
    grids.append(tile(np.asarray(patches_KxRxRx3), ncols=side))
    gap = np.ones((grids[0].shape[0], 3, 3))
    parts = [part for grid in grids for part in (grid, gap)][:-1]
    return np.concatenate(parts, axis=1)


def plot_top_patches(
    result, path, *, title: str, unit_labels: Sequence[str] = (), ncols=None, styles=STYLES,
    dpi=100,
):  # fmt: skip
    """Fig. 2 style grid of `units.unit_patches` results: per unit, its projections (one grid
    per style) beside its patches."""
    blocks = [
        unit_block(p, q, styles=styles)
        for p, q in zip(result["projections"], result["patches"], strict=True)
    ]
    ncols = ncols or (4 if len(styles) == 1 else 2)
    labels = list(unit_labels) or [f"unit {c}" for c in result["channels"]]
    ncols = min(ncols, len(blocks))
    nrows = math.ceil(len(blocks) / ncols)
    h, w = blocks[0].shape[:2]
    width = 1.6 * (len(styles) + 1)  # inches per unit block
    fig = Figure(figsize=(ncols * width, nrows * (width * h / w + 0.3) + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, block, label in zip(axes, blocks, labels, strict=False):
        ax.imshow(block, interpolation="nearest")
        ax.set_title(label, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path, dpi)


def _extent(shape, size, stride):
    """imshow extent placing map entry (i, j) at its occluder's centre in image pixels."""
    rows, cols = shape
    half = (size - 1) / 2
    return (half - stride / 2, half + (cols - 0.5) * stride, half + (rows - 0.5) * stride,
            half - stride / 2)  # fmt: skip


def _class_map(ax, fig, top_class, class_names, extent):
    present = np.unique(top_class)
    lookup = {c: i for i, c in enumerate(present)}
    cmap = colors.ListedColormap([f"C{i % 10}" for i in range(len(present))])
    index = np.vectorize(lookup.get)(top_class)
    im = ax.imshow(index, cmap=cmap, vmin=-0.5, vmax=len(present) - 0.5, extent=extent)
    bar = fig.colorbar(im, ax=ax, ticks=range(len(present)), fraction=0.046)
    names = [class_names[c] if c < len(class_names) else str(c) for c in present]
    bar.ax.set_yticklabels(names, fontsize=6)


def plot_occlusion(rows: Sequence[Mapping], path, *, title: str = "", dpi=100):
    """Fig. 7 style: one row per image, panels (a) the image with one occluder drawn, (b) the
    summed activity of the strongest feature map, (c) that map's projection on the clean image
    (its footprint, `show_footprint`), (d) the probability of the true class, (e) the most
    probable class. Maps are drawn in image coordinates, each entry at its occluder's centre.

    Each row: ``{'image' [H, W, 3] in [0, 1], 'maps' (occlusion_maps' dict), 'size', 'stride',
    'label_name', 'class_names', 'feature_map' (int), 'projection' [H, W, 3]}``.
    """
    fig = Figure(figsize=(12.5, 2.5 * len(rows) + 0.4), layout="constrained")
    axes = fig.subplots(len(rows), 5, squeeze=False)
    for ax_row, row in zip(axes, rows, strict=True):
        maps = {k: np.asarray(v) for k, v in row["maps"].items()}
        size, (h, w) = row["size"], row["image"].shape[:2]
        ext = _extent(maps["prob"].shape, size, row["stride"])
        ax_row[0].imshow(row["image"], interpolation="nearest")
        ax_row[0].add_patch(_square(size, row["stride"], maps["prob"].shape))
        ax_row[0].set_title(f"(a) true: {row['label_name']}", fontsize=8)
        im = ax_row[1].imshow(maps["activity"], cmap="viridis", extent=ext)
        fig.colorbar(im, ax=ax_row[1], fraction=0.046)
        ax_row[1].set_title(f"(b) map {row['feature_map']} activity", fontsize=8)
        footprint = show_footprint(row["projection"], row["image"])
        ax_row[2].imshow(footprint, interpolation="nearest")
        ax_row[2].set_title(f"(c) map {row['feature_map']} projection", fontsize=8)
        im = ax_row[3].imshow(maps["prob"], cmap="inferno", vmin=0, extent=ext)
        fig.colorbar(im, ax=ax_row[3], fraction=0.046)
        ax_row[3].set_title(f"(d) p({row['label_name']})", fontsize=8)
        _class_map(ax_row[4], fig, maps["top_class"], row["class_names"], ext)
        ax_row[4].set_title("(e) most probable class", fontsize=8)
        for ax in ax_row:
            ax.set_xlim(-0.5, w - 0.5), ax.set_ylim(h - 0.5, -0.5)
            ax.set_xticks([]), ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path, dpi)


def _square(size, stride, grid_shape):
    """The occluder at the centre position of the grid, as a white square outline."""
    i, j = grid_shape[0] // 2, grid_shape[1] // 2
    return Rectangle((j * stride - 0.5, i * stride - 0.5), size, size, fill=False, ec="w", lw=1.5)


def plot_evolution(
    evolution: Mapping[int, Mapping], path, *, layer: str, styles=STYLES, title: str = ""
):
    """Fig. 4 style: one row per unit, one column per snapshot; each cell shows the unit's
    strongest activation over the split at that snapshot (`units.feature_evolution`): its
    projection (one tile per style, as `unit_block`) beside its patch."""
    steps = sorted(evolution)
    channels = evolution[steps[0]]["channels"]
    cells = []
    for u in range(len(channels)):
        for s in steps:
            res = evolution[s]
            cells.append(unit_block(res["projections"][u], res["patches"][u], styles=styles))
    mosaic = tile(np.stack(cells), ncols=len(steps), pad=6)
    h, w = mosaic.shape[:2]
    fig = Figure(figsize=(1.0 + 1.8 * len(steps), 0.8 + 1.8 * len(steps) * h / w))
    fig.set_layout_engine("constrained")
    ax = fig.subplots()
    ax.imshow(mosaic, interpolation="nearest")
    ch, cw = cells[0].shape[:2]
    ax.set_xticks([6 + (cw + 6) * i + cw // 2 for i in range(len(steps))], [str(s) for s in steps])
    ax.set_yticks([6 + (ch + 6) * i + ch // 2 for i in range(len(channels))],
                  [f"{layer} #{c}" for c in channels])  # fmt: skip
    ax.set_xlabel("training iteration")
    ax.tick_params(labelsize=7, length=0)
    shown = " | ".join([*styles, "patch"])
    ax.set_title(title or f"Strongest {layer} activation per snapshot ({shown})", fontsize=9)
    return _save(fig, path)
