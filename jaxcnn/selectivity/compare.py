"""The selectivity comparison of a pre-trained and a fine-tuned network on ground-truth boxes,
from a feature cache to plain numbers and figures (used by the study and by
experiments/selectivity.py)."""

from __future__ import annotations

import numpy as np

from jaxcnn.probe import sweep
from jaxcnn.selectivity import analysis as sel
from jaxcnn.selectivity import entropy
from jaxcnn.storage import jsonable


def change_resamples(taps_pre, taps_ft, labels, num_classes, config, count: int) -> list[dict]:
    """Table 2.1's all-filters column on `count` bootstrap resamples of the test boxes (seeded
    0, 1, ...): ``[{layer: mean over methods of |MCAuE % decrease|}]`` (docs/methods.md §13)."""
    out = []
    n = len(labels)
    for k in range(count):
        rows = np.random.default_rng(k).integers(0, n, n)
        pre, ft = (
            sel.entropy_summary(
                {la: np.asarray(v)[rows] for la, v in taps.items()},
                labels[rows],
                num_classes,
                config,
            )["aue"]
            for taps in (taps_pre, taps_ft)
        )
        swap = lambda aue: {la: {m: aue[m][la] for m in aue} for la in taps_pre}  # noqa: E731
        table = entropy.percent_decrease_table(swap(pre), swap(ft), fractions=(1.0,))
        out.append({la: float(np.mean([abs(v[0]) for v in t.values()])) for la, t in table.items()})
    return out


def compare_pair(cache, pre, ft_run, gt_sets, protocol: str, out_dir, resamples: int = 1) -> dict:
    """Entropy/AuE/MCAuE before and after fine-tuning, grandmother cells, subsets, overlap,
    sparsity, on ground-truth boxes (docs/methods.md §6-§8), as plain JSON-able numbers.

    `cache` is a `jaxcnn.features.FeatureCache`, `pre` / `ft_run` runs (directories or study
    stage results), `gt_sets` the (train, test, task, classes) GT-box feature sets; with
    ``resamples > 1`` also `change_resamples` (key ``change_resamples``)."""
    train_fs, test_fs, _, num_classes = gt_sets
    taps = {}
    for name, run in (("pre", pre), ("ft", ft_run)):
        taps[name] = (cache.get(run, None, train_fs), cache.get(run, None, test_fs))
    # The SVM cost of the greedy subsets is the one the VOC07 protocol picks most often for
    # conv-5 sp-max on the training boxes (chosen by 3-fold CV, never on test).
    config = sel.SelectivityConfig(svm_c=sweep.cv_cost(protocol, taps["pre"][0]))
    result = sel.selectivity(
        {k: np.asarray(v) for k, v in taps["pre"][1]["taps"].items()},
        {k: np.asarray(v) for k, v in taps["ft"][1]["taps"].items()},
        taps["pre"][1]["box_labels"],
        num_classes,
        config=config,
        train=(
            {"conv5": np.asarray(taps["pre"][0]["taps"]["conv5"])},
            {"conv5": np.asarray(taps["ft"][0]["taps"]["conv5"])},
            taps["pre"][0]["box_labels"],
        ),
    )
    names = list(taps["pre"][1]["class_names"])
    resampled = []
    if resamples > 1:
        resampled = change_resamples(
            taps["pre"][1]["taps"],
            taps["ft"][1]["taps"],
            np.asarray(taps["pre"][1]["box_labels"]),
            num_classes,
            config,
            resamples,
        )
    figures = sel.figures(result, names, str(out_dir))
    keep = ("mcaue", "sparsity", "filters_needed", "overlap_chance", "subset_ks", "subset_ap")
    summary = {net: {k: result[net][k] for k in keep if k in result[net]} for net in ("pre", "ft")}
    for net in ("pre", "ft"):
        summary[net]["aue_mean"] = {
            m: {layer: float(np.mean(v)) for layer, v in d.items()}
            for m, d in result[net]["aue"].items()
        }
        summary[net]["best_filter_ap"] = np.max(result[net]["filter_ap"], axis=1)
        overlap = np.asarray(result[net]["overlap"])
        summary[net]["overlap_offdiag_mean"] = float(
            (overlap.sum() - np.trace(overlap)) / (overlap.size - overlap.shape[0])
        )
    return jsonable(
        {
            "table_2_1": result["table_2_1"],
            "nets": summary,
            "class_names": names,
            "svm_c": config.svm_c,
            "change_resamples": resampled,
            "figures": {k: str(v) for k, v in figures.items()},
        }
    )
