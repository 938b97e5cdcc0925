"""Probe tables: linear SVMs on every layer (and ablation) of extracted features (SPEC §4, §5).

`probe_layers` scores a grid of (layer, ablation) pairs on one train/test pair of feature sets.
Two tasks:

- ``multilabel``: PASCAL-CLS and PASCAL-DET-GT style; labels ``[N, C]`` in VOC's devkit coding
  (1 / -1 / 0 difficult), scored by `jaxcnn.probes.multilabel_probe` (mean AP, in %).
- ``multiclass``: SUN-CLS style; labels ``[N]``; one-vs-rest SVMs with one shared cost
  (`jaxcnn.probes.multiclass_probe`; the multilabel protocol does not apply), prediction =
  argmax of the decision values, scored by mean per-class accuracy (in %).

GT-box features are multi-class (one label per box) but the paper scores them per class by AP,
so `boxes_as_multilabel` turns box labels into one-vs-rest columns with difficult boxes as
"difficult" (left out of the test AP, negatives in training).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxcnn import ablations, probes

TASKS = ("multilabel", "multiclass")


def boxes_as_multilabel(labels_N: np.ndarray, difficult_N: np.ndarray, num_classes: int):
    """Box labels -> devkit-coded ``[N, C]`` (1 its class, -1 others, 0 if a difficult box's
    own class)."""
    out = np.full((labels_N.shape[0], num_classes), -1, np.int8)
    rows = np.arange(labels_N.shape[0])
    out[rows, labels_N] = np.where(np.asarray(difficult_N, bool), 0, 1)
    return out


def ablated(x: np.ndarray, ablation: str, *, seed: int = 0) -> np.ndarray:
    """Flattened ``[N, D]`` float32 features of one tap after an ablation (SPEC §5)."""
    key = jax.random.key(seed) if ablation == "sp-shuffle" else None
    out = ablations.apply_ablation(ablation, np.asarray(x, np.float32), key=key)
    return np.asarray(out, np.float32).reshape(x.shape[0], -1)


def multiclass_accuracy(train_x, train_y, test_x, test_y, num_classes):
    """Mean per-class accuracy (%) of one-vs-rest SVMs, argmax of the decision values, one cost
    for all classes chosen by cross-validation on the training split (`probes.multiclass_probe`,
    protocol `probes.SUN_OVR`)."""
    result = probes.multiclass_probe(train_x, train_y, test_x, test_y, num_classes=num_classes)
    return 100.0 * result.accuracy


def probe_score(
    train_x, train_labels, test_x, test_labels, *, task, num_classes, protocol
) -> float:
    """One probe's score in %: mean AP (multilabel) or mean per-class accuracy (multiclass)."""
    if task == "multilabel":
        res = probes.multilabel_probe(train_x, train_labels, test_x, test_labels, protocol=protocol)
        return 100.0 * res.mean_ap
    if task == "multiclass":
        return multiclass_accuracy(train_x, train_labels, test_x, test_labels, num_classes)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def probe_layers(
    train: dict,
    test: dict,
    grid,
    *,
    task: str,
    num_classes: int,
    protocol=probes.VOC07_VISSL,
    progress=None,
) -> dict:
    """Scores of every (layer, ablation) in `grid` -> ``{layer: {ablation: score %}}``.

    `train`/`test`: ``{'taps': {layer: array}, 'labels': array}`` as `feature_sets.extract`
    returns. `grid`: iterable of (layer, ablation). `progress(done, total, layer, ablation)`.
    """
    grid = list(grid)
    out: dict = {}
    for i, (layer, ablation) in enumerate(grid):
        x_tr = ablated(train["taps"][layer], ablation, seed=0)
        x_te = ablated(test["taps"][layer], ablation, seed=1)
        out.setdefault(layer, {})[ablation] = probe_score(
            x_tr,
            train["labels"],
            x_te,
            test["labels"],
            task=task,
            num_classes=num_classes,
            protocol=protocol,
        )
        if progress is not None:
            progress(i + 1, len(grid), layer, ablation)
    return out


def ablation_grid(layers, names) -> list[tuple[str, str]]:
    """(layer, ablation) pairs where the ablation applies: fc layers take binarize only."""
    return [
        (layer, a)
        for layer in layers
        for a in names
        if layer.startswith("conv") or a in ("none", "binarize")
    ]


def class_names(fs) -> tuple[str, ...]:
    """Class names of a `feature_sets.FeatureSet`'s dataset."""
    from jaxcnn.data import sources

    return sources.open_split(
        fs.dataset, fs.split, data_dir=fs.data_dir or None, seed=fs.split_seed
    ).class_names


def write_tables(results: dict, meta: dict, out_dir: str) -> list:
    """Probe results ``{step: {layer: {ablation: score}}}`` -> probes.json / .csv / .md and a
    plot of score vs layer per ablation (last step), all written atomically. Returns paths."""
    import csv
    import io
    import json
    import os

    from jaxcnn.analysis import plots

    os.makedirs(out_dir, exist_ok=True)
    rows = [
        (step, layer, abl, score)
        for step, by_layer in results.items()
        for layer, by_abl in by_layer.items()
        for abl, score in by_abl.items()
    ]
    ablations = sorted(
        {r[2] for r in rows}, key=lambda a: ABLATION_ORDER.index(a) if a in ABLATION_ORDER else 99
    )
    buf = io.StringIO()
    csv.writer(buf).writerows([("step", "layer", "ablation", "score"), *rows])
    md = [f"{meta['metric']} ({meta['protocol']}, {meta['dataset']} {meta['view']})", ""]
    for step, by_layer in results.items():
        md += [
            f"step {step}",
            "",
            "| layer | " + " | ".join(ablations) + " |",
            "|---" * (len(ablations) + 1) + "|",
        ]
        md += [
            "| "
            + layer
            + " | "
            + " | ".join(f"{by_abl[a]:.1f}" if a in by_abl else "–" for a in ablations)
            + " |"
            for layer, by_abl in by_layer.items()
        ]
        md.append("")
    texts = {
        "probes.json": json.dumps({"meta": meta, "results": results}, indent=1),
        "probes.csv": buf.getvalue(),
        "probes.md": "\n".join(md),
    }
    paths = []
    for name, text in texts.items():
        path = os.path.join(out_dir, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        paths.append(path)
    last = results[list(results)[-1]]
    layers = list(last)
    values = {a: [last[la].get(a, float("nan")) for la in layers] for a in ablations}
    paths.append(
        plots.plot_metric_vs_layer(
            layers, values, os.path.join(out_dir, "metric_vs_layer.png"), ylabel=meta["metric"]
        )
    )
    return paths


ABLATION_ORDER = ("none", "binarize", "sp-shuffle", "sp-max", "sp-max-bin", "max-loc-bin")
