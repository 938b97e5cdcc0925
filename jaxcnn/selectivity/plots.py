"""Figures of the selectivity and dynamics analyses (matplotlib, object API, no pyplot state).

Every ``plot_*`` function takes numpy-convertible arrays and a destination path, writes one PNG
atomically (temporary file, then rename) and returns the path. Figure numbers refer to the
paper (``002_…``) and the thesis (``001_…``).
"""

import math

import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure

from jaxcnn.storage import save_figure

PRE_STYLE = dict(color="tab:blue", linestyle="-.")  # pre-trained: dash-dot (Fig. 1, thesis 2-2)
FT_STYLE = dict(color="tab:red", linestyle="-")  # fine-tuned: solid


def _grid(n, ncols=None, size=2.2):
    ncols = ncols or min(n, math.ceil(math.sqrt(n)))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(size * ncols + 0.5, size * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes[:n]


def plot_aue_distributions(aue_pre, aue_ft, path, *, bins=30, method="label"):
    """Histogram of per-filter AuE per layer, pre-trained vs fine-tuned (thesis Fig. 2-1).

    Args:
      aue_pre, aue_ft: ``{layer: AuE [F]}`` (``aue_ft`` may be None).
    """
    fig, axes = _grid(len(aue_pre), ncols=min(4, len(aue_pre)))
    for ax, (layer, aue) in zip(axes, aue_pre.items(), strict=True):
        sets = [("pre-trained", aue, PRE_STYLE)]
        if aue_ft is not None:
            sets.append(("fine-tuned", aue_ft[layer], FT_STYLE))
        hi = max(float(np.max(a)) for _, a, _ in sets)
        edges = np.linspace(0, max(hi, 1e-6), bins + 1)
        for name, a, style in sets:
            ax.hist(np.asarray(a), bins=edges, histtype="step", color=style["color"], label=name)
        ax.set_title(layer)
        ax.set_xlabel("AuE (bits)")
        ax.set_ylabel("filters")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Area under the entropy curve ({method} entropy)")
    return save_figure(fig, path, dpi=100, bbox_inches="tight")


def plot_mcaue_curves(mcaue_pre, mcaue_ft, path):
    """MCAuE vs fraction of filters, one panel per method (paper Fig. 1, thesis Fig. 2-2).

    Args:
      mcaue_pre, mcaue_ft: ``{method: {layer: MCAuE [K]}}``; point k is the fraction k/K.
        Pre-trained dash-dot, fine-tuned solid (``mcaue_ft`` may be None), a colour per layer.
    """
    fig, axes = _grid(len(mcaue_pre), ncols=len(mcaue_pre), size=4.0)
    for ax, (method, by_layer) in zip(axes, mcaue_pre.items(), strict=True):
        for i, (layer, curve) in enumerate(by_layer.items()):
            curve = np.asarray(curve)
            frac = np.arange(1, curve.size + 1) / curve.size
            color = f"C{i % 10}"
            ax.plot(frac, curve, color=color, linestyle="-.", label=f"{layer} pre")
            if mcaue_ft is not None:
                ax.plot(
                    frac,
                    np.asarray(mcaue_ft[method][layer]),
                    color=color,
                    linestyle="-",
                    label=f"{layer} ft",
                )
        ax.set_title(f"{method} entropy")
        ax.set_xlabel("fraction of filters (most selective first)")
        ax.set_ylabel("MCAuE (bits)")
    axes[-1].legend(fontsize=6, ncol=2)
    return save_figure(fig, path, dpi=100, bbox_inches="tight")


def _plot_pr(ax, precision, recall, style):
    for p, r in zip(np.asarray(precision), np.asarray(recall), strict=True):
        ax.plot(np.concatenate([[0.0], r]), np.concatenate([[p[0]], p]), lw=0.8, **style)


def plot_top_pr_curves(curves_pre, curves_ft, class_names, path):
    """Precision–recall curves of each class's top filters (paper Fig. 3, thesis Fig. 3-2).

    Args:
      curves_pre, curves_ft: ``(precision [C, top, N], recall [C, top, N])`` as returned by
        :func:`jaxcnn.selectivity.grandmother.top_filter_pr_curves` (last two entries);
        pre-trained blue, fine-tuned red (``curves_ft`` may be None).
      class_names: C names.
    """
    fig, axes = _grid(len(class_names), ncols=min(5, len(class_names)))
    for c, (ax, name) in enumerate(zip(axes, class_names, strict=True)):
        _plot_pr(ax, curves_pre[0][c], curves_pre[1][c], dict(color=PRE_STYLE["color"]))
        if curves_ft is not None:
            _plot_pr(ax, curves_ft[0][c], curves_ft[1][c], dict(color=FT_STYLE["color"]))
        ax.set_title(name, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
    axes[0].set_xlabel("recall")
    axes[0].set_ylabel("precision")
    fig.suptitle("Top filters per class by AP (blue: pre-trained, red: fine-tuned)")
    return save_figure(fig, path, dpi=100, bbox_inches="tight")


def plot_ap_vs_filters(ks, ap_vs_k, class_names, path):
    """Fraction of the full AP vs number of filters, per class (paper Fig. 4, thesis 3-4).

    Args:
      ks: K subset sizes (ascending; the last is all filters, the reference).
      ap_vs_k: ``{network name: AP [C, K]}``, e.g. ``{"pre-trained": …, "fine-tuned": …}``.
      class_names: C names.
    """
    ks = np.asarray(ks)
    styles = [PRE_STYLE, FT_STYLE]
    fig, axes = _grid(len(class_names), ncols=min(5, len(class_names)))
    for c, (ax, name) in enumerate(zip(axes, class_names, strict=True)):
        for i, (net, ap) in enumerate(ap_vs_k.items()):
            row = np.asarray(ap)[c]
            ax.plot(ks, row / row[-1], marker=".", ms=3, label=net, **styles[i % 2])
        ax.set_xscale("log")
        ax.set_xticks([t for t in (1, 3, 10, 30, 100, 300) if ks[0] <= t <= ks[-1]] or ks[-1:])
        ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_ylim(0, 1.1)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0].set_xlabel("number of filters")
    axes[0].set_ylabel("fraction of full AP")
    axes[0].legend(fontsize=6)
    return save_figure(fig, path, dpi=100, bbox_inches="tight")


def _heatmap(ax, fig, matrix, xlabels, ylabels, *, vmin, vmax, fmt):
    im = ax.imshow(matrix, vmin=vmin, vmax=vmax, cmap="viridis")
    ax.set_xticks(range(len(xlabels)), labels=xlabels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(ylabels)), labels=ylabels, fontsize=7)
    if matrix.size <= 400:
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(
                j,
                i,
                fmt.format(v),
                ha="center",
                va="center",
                fontsize=5,
                color="white" if v < (vmin + vmax) / 2 else "black",
            )
    fig.colorbar(im, ax=ax, shrink=0.8)


def plot_overlap(overlap, class_names, path, *, chance):
    """Heat map of the top-k filter-set overlap between classes (paper Fig. 5)."""
    overlap = np.asarray(overlap)
    if overlap.shape != (len(class_names), len(class_names)):
        raise ValueError(f"overlap must be [C, C] for {len(class_names)} classes")
    fig = Figure(figsize=(7, 6), layout="constrained")
    ax = fig.subplots()
    _heatmap(ax, fig, overlap, class_names, class_names, vmin=0, vmax=1, fmt="{:.2f}")
    ax.set_title(f"Top-filter set overlap (chance {chance:.3f})")
    return save_figure(fig, path, dpi=100, bbox_inches="tight")


def plot_cka_heatmap(matrix, layers, names, path, *, title="Linear CKA to the reference"):
    """Layer × snapshot CKA heat map (rows: layers, columns: snapshots)."""
    matrix = np.asarray(matrix)
    if matrix.shape != (len(layers), len(names)):
        raise ValueError(f"matrix must be [{len(layers)}, {len(names)}], got {matrix.shape}")
    fig = Figure(figsize=(1.5 + 0.6 * len(names), 1.0 + 0.45 * len(layers)), layout="constrained")
    ax = fig.subplots()
    _heatmap(ax, fig, matrix, list(map(str, names)), list(layers), vmin=0, vmax=1, fmt="{:.2f}")
    ax.set_title(title)
    return save_figure(fig, path, dpi=100, bbox_inches="tight")
