"""Probe tables: linear SVMs on every layer (and ablation) of extracted features (SPEC §4, §5).

`probe_layers` scores a grid of (layer, ablation) pairs on one train/test pair of feature sets.
Two tasks:

- ``multilabel``: PASCAL-CLS and PASCAL-DET-GT style; labels ``[N, C]`` in VOC's devkit coding
  (1 / -1 / 0 difficult), scored by `jaxcnn.probes.multilabel_probe` (mean AP, in %).
- ``multiclass``: SUN-CLS style; labels ``[N]``; one-vs-rest SVMs (the same protocol, each class
  against the rest), prediction = argmax of the decision values, scored by mean per-class
  accuracy (in %).

GT-box features are multi-class (one label per box) but the paper scores them per class by AP,
so `boxes_as_multilabel` turns box labels into one-vs-rest columns with difficult boxes as
"difficult" (left out of the test AP, negatives in training).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxcnn import ablations, metrics, probes

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


def multiclass_accuracy(train_x, train_y, test_x, test_y, num_classes, *, protocol):
    """Mean per-class accuracy (%) of one-vs-rest SVMs (argmax of decision values)."""
    onehot = lambda y: np.where(np.eye(num_classes, dtype=bool)[y], 1, -1).astype(np.int8)  # noqa: E731
    result = probes.multilabel_probe(
        train_x, onehot(train_y), test_x, onehot(test_y), protocol=protocol
    )
    pred = np.argmax(result.test_scores_NxK, axis=1)
    return 100.0 * float(metrics.mean_per_class_accuracy(pred, test_y, num_classes))


def probe_score(
    train_x, train_labels, test_x, test_labels, *, task, num_classes, protocol
) -> float:
    """One probe's score in %: mean AP (multilabel) or mean per-class accuracy (multiclass)."""
    if task == "multilabel":
        res = probes.multilabel_probe(train_x, train_labels, test_x, test_labels, protocol=protocol)
        return 100.0 * res.mean_ap
    if task == "multiclass":
        return multiclass_accuracy(
            train_x, train_labels, test_x, test_labels, num_classes, protocol=protocol
        )
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
