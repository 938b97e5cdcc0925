"""Figures of probe results: a score per layer against iteration (Table 3) or per ablation
(Table 7)."""

import numpy as np
from matplotlib.figure import Figure

from jaxcnn.storage import save_figure


def plot_metric_vs_iteration(iterations, values, path, *, ylabel="mAP"):
    """One line per layer of a metric (e.g. probe mAP) vs pre-training iteration (Table 3).

    Args:
      iterations: S snapshot iterations.
      values: ``{layer: [S]}``.
    """
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    for layer, v in values.items():
        ax.plot(np.asarray(iterations), np.asarray(v), marker="o", ms=3, label=layer)
    ax.set_xlabel("pre-training iteration")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=100, bbox_inches="tight")


def plot_metric_vs_layer(layers, values, path, *, ylabel="mAP"):
    """One line per ablation of a metric (e.g. probe mAP) vs layer (Table 7 / thesis Fig. 5-1).

    Args:
      layers: L layer names, bottom to top.
      values: ``{ablation: [L]}`` (NaN where an ablation does not apply).
    """
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(layers))
    for name, v in values.items():
        ax.plot(x, np.asarray(v, float), marker="o", ms=3, label=name)
    ax.set_xticks(x, list(layers))
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=100, bbox_inches="tight")
