"""The selectivity study of one network pair (pre-trained vs fine-tuned), arrays in, dict out.

Ties together docs/methods.md §6–§8 for the experiment script: per layer and entropy method the AuE
and MCAuE (thesis Figs. 2-1, 2-2, Table 2.1), per layer the sparsity (Table 6), and on the sp-max of
one conv layer (conv-5) the grandmother-cell analyses (Figs. 3–5, Table 5). It also renders the
paper's tables as Markdown and draws the figures. File writing beyond the PNGs is left to the
caller.

Taps are ``{layer: activations}`` with conv taps ``[N, h, w, F]`` (or already ``[N, P, F]``) and
fc taps ``[N, F]``, for N ground-truth boxes with labels ``[N]``.
"""

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.selectivity import entropy, grandmother, plots, sparsity


@dataclasses.dataclass(frozen=True)
class SelectivityConfig:
    """Hyperparameters of the study; defaults follow the paper and the thesis."""

    methods: tuple[str, ...] = entropy.METHODS
    num_thresholds: int = 100  # draft: "100 equally spaced thresholds"
    num_points: int = 30  # MCAuE compared at 30 points (thesis §2.2.1)
    fractions: tuple[float, ...] = entropy.TABLE_FRACTIONS  # Table 2.1
    gmc_layer: str = "conv5"  # grandmother-cell analyses on its sp-max (§4)
    ap_method: str = "voc07"
    top_pr: int = 5  # PR curves of the top-5 filters per class (Fig. 3)
    ks: tuple[int, ...] = grandmother.PAPER_KS
    svm_c: float = 1.0  # SVM cost of the greedy subsets; choose it on held-out data
    positive_weight: float = 1.0
    overlap_k: int = 50  # top-50 sets (Fig. 5)
    needed_fractions: tuple[float, ...] = (0.5, 0.9)  # Table 5


def as_maps(acts):
    """[N, h, w, F] or [N, P, F] or [N, F] -> [N, P, F] (fc taps: P = 1)."""
    acts = jnp.asarray(acts)
    if acts.ndim == 2:
        return acts[:, None, :]
    if acts.ndim in (3, 4):
        return acts.reshape(acts.shape[0], -1, acts.shape[-1])
    raise ValueError(f"a tap must be [N, F], [N, P, F] or [N, h, w, F], got {acts.shape}")


@functools.partial(
    jax.jit, static_argnames=("num_classes", "methods", "num_thresholds", "num_points")
)
def _aue_mcaue(maps, labels, *, num_classes, methods, num_thresholds, num_points):
    """``{method: (AuE [F], MCAuE [num_points])}``: every method of a layer in one program (one
    compile per layer; a program per method compiled 2.3x longer in all)."""
    out = {}
    for method in methods:
        _, ent_TxF = entropy.entropy_curves(
            maps, labels, num_classes, method=method, num_thresholds=num_thresholds
        )
        aue_F = entropy.area_under_entropy(ent_TxF)
        out[method] = (aue_F, entropy.mcaue(aue_F, num_points=num_points))
    return out


def entropy_summary(taps, labels, num_classes, config):
    """``{"aue": {method: {layer: [F]}}, "mcaue": {method: {layer: [num_points]}}}``."""
    aue = {m: {} for m in config.methods}
    mc = {m: {} for m in config.methods}
    for layer, acts in taps.items():
        by_method = _aue_mcaue(
            as_maps(acts),
            labels,
            num_classes=num_classes,
            methods=tuple(config.methods),
            num_thresholds=config.num_thresholds,
            num_points=config.num_points,
        )
        for method, (aue_F, mc_K) in by_method.items():
            aue[method][layer], mc[method][layer] = np.asarray(aue_F), np.asarray(mc_K)
    return {"aue": aue, "mcaue": mc}


@functools.partial(jax.jit, static_argnames=("num_classes", "ap_method", "top", "num_thresholds"))
def _filter_stats(scores, labels, *, num_classes, ap_method, top, num_thresholds):
    ap_CxF = grandmother.filter_ap(scores, labels, num_classes, method=ap_method)
    filters, precision, recall = grandmother.top_filter_pr_curves(
        scores, labels, num_classes, ap_CxF, top=top
    )
    _, prec_TxCxF = grandmother.precision_curves(
        scores, labels, num_classes, num_thresholds=num_thresholds
    )
    return {
        "filter_ap": ap_CxF,
        "top_filters": filters,
        "pr_precision": precision,
        "pr_recall": recall,
        "precision_area": grandmother.precision_area(prec_TxCxF),
    }


def grandmother_summary(scores_test, labels_test, num_classes, config, train=None):
    """Per-filter AP, top-filter PR curves, precision areas; greedy subsets if ``train``.

    Args:
      scores_test: float [N, F] sp-max responses of the test boxes.
      train: optional ``(scores_train [M, F], labels_train [M])`` for the greedy SVM subsets.
    """
    stats = _filter_stats(
        scores_test,
        labels_test,
        num_classes=num_classes,
        ap_method=config.ap_method,
        top=config.top_pr,
        num_thresholds=config.num_thresholds,
    )
    out = {k: np.asarray(v) for k, v in stats.items()}
    if train is not None:
        greedy = grandmother.greedy_subsets(
            train[0],
            train[1],
            scores_test,
            labels_test,
            num_classes,
            ks=config.ks,
            C=config.svm_c,
            positive_weight=config.positive_weight,
            ap_method=config.ap_method,
        )
        k = min(config.overlap_k, scores_test.shape[1])
        out.update(
            subset_ks=np.asarray(greedy["ks"]),
            subset_ap=np.asarray(greedy["ap"]),
            importance=np.asarray(greedy["importance"]),
            filters_needed=grandmother.filters_needed(
                greedy["ap"], greedy["ks"], config.needed_fractions
            ),
            overlap=np.asarray(grandmother.top_set_overlap(greedy["importance"], k=k)),
            overlap_chance=grandmother.overlap_chance(k, scores_test.shape[1]),
        )
    return out


def _check_labels(labels, num_classes):
    labels = np.asarray(labels)  # checked here: the jitted kernels cannot check values
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be int [N], got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]"
        )


def analyse_network(taps_test, labels_test, num_classes, *, config, train=None):
    """All analyses of one network on the test boxes (and train boxes for the SVM subsets).

    Args:
      taps_test: ``{layer: activations}`` of the test boxes; ``labels_test``: int [N].
      train: optional ``(taps_train, labels_train)`` (only ``config.gmc_layer`` is used).

    Returns:
      dict with ``aue``, ``mcaue``, ``sparsity`` ``{layer: (mean %, std %)}`` and the
      :func:`grandmother_summary` entries (numpy values).
    """
    if config.gmc_layer not in taps_test:
        raise ValueError(f"taps lack the grandmother-cell layer {config.gmc_layer!r}")
    _check_labels(labels_test, num_classes)
    if train is not None:
        _check_labels(train[1], num_classes)
    result = entropy_summary(taps_test, labels_test, num_classes, config)
    result["sparsity"] = sparsity.layer_sparsity(taps_test)
    spmax = lambda t: jnp.max(as_maps(t[config.gmc_layer]), axis=1)  # sp-max: [N, F]
    gmc_train = None if train is None else (spmax(train[0]), jnp.asarray(train[1]))
    result.update(
        grandmother_summary(spmax(taps_test), labels_test, num_classes, config, gmc_train)
    )
    return result


def selectivity(taps_pre, taps_ft, labels, num_classes, *, config=None, train=None):
    """The study of a pre-trained / fine-tuned pair (orchestration for the experiment).

    Args:
      taps_pre, taps_ft: ``{layer: activations}`` of the same test boxes under both networks.
      labels: int [N] box classes; num_classes: C.
      config: :class:`SelectivityConfig` (default: the paper's settings).
      train: optional ``(taps_pre_train, taps_ft_train, labels_train)`` for the SVM subsets.

    Returns:
      ``{"pre": …, "ft": …, "table_2_1": {layer: {method: [Q]}}}`` (see
      :func:`analyse_network`; Table 2.1 = percent decrease of MCAuE at ``config.fractions``).
    """
    config = config or SelectivityConfig()
    if set(taps_pre) != set(taps_ft):
        raise ValueError(f"layers differ: {sorted(taps_pre)} vs {sorted(taps_ft)}")
    tr_pre = None if train is None else (train[0], train[2])
    tr_ft = None if train is None else (train[1], train[2])
    pre = analyse_network(taps_pre, labels, num_classes, config=config, train=tr_pre)
    ft = analyse_network(taps_ft, labels, num_classes, config=config, train=tr_ft)
    swap = lambda aue: {layer: {m: aue[m][layer] for m in aue} for layer in taps_pre}
    table = entropy.percent_decrease_table(
        swap(pre["aue"]), swap(ft["aue"]), fractions=config.fractions
    )
    return {"pre": pre, "ft": ft, "table_2_1": table}


def table_2_1_markdown(table, fractions=entropy.TABLE_FRACTIONS):
    """Thesis Table 2.1 as Markdown: rows layers, columns method × fraction (percent)."""
    methods = list(next(iter(table.values())))
    head = [f"{m} {q:g}" for m in methods for q in fractions]
    lines = ["| layer | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for layer, by_method in table.items():
        cells = [f"{v:.2f}" for m in methods for v in np.asarray(by_method[m])]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_5_markdown(needed, class_names, fractions=(0.5, 0.9)):
    """Paper Table 5: ``needed = {network: int [Q, C]}`` -> Markdown (filters per class)."""
    lines = ["| network | perf. | " + " | ".join(class_names) + " |"]
    lines.append("|---" * (len(class_names) + 2) + "|")
    for net, rows in needed.items():
        for q, row in zip(fractions, np.asarray(rows), strict=True):
            lines.append(f"| {net} | {q:.0%} | " + " | ".join(str(int(v)) for v in row) + " |")
    return "\n".join(lines)


def table_6_markdown(by_network):
    """Paper Table 6: ``{network: {layer: (mean %, std %)}}`` -> Markdown."""
    layers = list(next(iter(by_network.values())))
    lines = ["| network | " + " | ".join(layers) + " |", "|---" * (len(layers) + 1) + "|"]
    for net, table in by_network.items():
        cells = [f"{table[layer][0]:.1f} ± {table[layer][1]:.1f}" for layer in layers]
        lines.append(f"| {net} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figures(results, class_names, out_dir):
    """Draw the study's figures from :func:`selectivity` results into ``out_dir``.

    Returns ``{name: path}``: ``aue_<method>.png`` (thesis Fig. 2-1), ``mcaue.png`` (Fig. 1 /
    thesis 2-2), ``top_pr.png`` (Fig. 3) and, when the SVM subsets were run, ``ap_vs_filters.png``
    (Fig. 4) and ``overlap_pre.png`` / ``overlap_ft.png`` (Fig. 5).
    """
    pre, ft = results["pre"], results["ft"]
    path = lambda name: os.path.join(out_dir, name)
    out = {}
    for method in pre["aue"]:
        out[f"aue_{method}"] = plots.plot_aue_distributions(
            pre["aue"][method], ft["aue"][method], path(f"aue_{method}.png"), method=method
        )
    out["mcaue"] = plots.plot_mcaue_curves(pre["mcaue"], ft["mcaue"], path("mcaue.png"))
    out["top_pr"] = plots.plot_top_pr_curves(
        (pre["pr_precision"], pre["pr_recall"]),
        (ft["pr_precision"], ft["pr_recall"]),
        class_names,
        path("top_pr.png"),
    )
    if "subset_ap" in pre:
        curves = {"pre-trained": pre["subset_ap"], "fine-tuned": ft["subset_ap"]}
        out["ap_vs_filters"] = plots.plot_ap_vs_filters(
            pre["subset_ks"], curves, class_names, path("ap_vs_filters.png")
        )
        for net, res in (("pre", pre), ("ft", ft)):
            out[f"overlap_{net}"] = plots.plot_overlap(
                res["overlap"],
                class_names,
                path(f"overlap_{net}.png"),
                chance=res["overlap_chance"],
            )
    return out
