"""Probe sweeps: linear SVMs on every layer (and ablation) of extracted features
(docs/methods.md §4, §5).

`probe_layers` scores a grid of (layer, ablation) pairs on one train/test pair of feature sets.
Two tasks:

- ``multilabel``: PASCAL-CLS and PASCAL-DET-GT style; labels ``[N, C]`` in VOC's devkit coding
  (1 / -1 / 0 difficult), scored by `jaxcnn.probe.multilabel_probe` (mean AP, in %).
- ``multiclass``: SUN-CLS style; labels ``[N]``; one-vs-rest SVMs with one shared cost
  (`jaxcnn.probe.multiclass_probe`; the multilabel protocol does not apply), prediction =
  argmax of the decision values, scored by mean per-class accuracy (in %).

GT-box features are multi-class (one label per box) but the paper scores them per class by AP:
`jaxcnn.features.FeatureCache` hands them over as one-vs-rest columns (`features.labels`).

`probe` runs a grid on a checkpoint through a feature cache; `cv_cost` reads the cost a
protocol's cross-validation picks on training features alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxcnn.features import ablations
from jaxcnn.model import TAP_NAMES
from jaxcnn.probe import protocols

TASKS = ("multilabel", "multiclass")


def _items(choices):
    def check(values):
        bad = [v for v in values if v not in choices]
        if bad:
            raise ValueError(f"{bad} not among the valid choices {list(choices)}")

    return check


@dataclasses.dataclass(frozen=True)
class ProbeSpec:
    """Which probes to run (flags are generated from it)."""

    layers: tuple[str, ...] = dataclasses.field(
        default=TAP_NAMES, metadata={"help": "Layers (taps) to probe.", "choices": TAP_NAMES}
    )
    ablations: tuple[str, ...] = dataclasses.field(
        default=ablations.TABLE7_ABLATIONS,
        metadata={"help": "Ablations (fc layers: binarize only).", "choices": ablations.ABLATIONS},
    )
    protocol: str = dataclasses.field(
        default="voc07_vissl",
        metadata={
            "help": "Probe protocol (multi-label tasks).",
            "choices": tuple(protocols.PROTOCOLS),
        },
    )
    task: str = dataclasses.field(
        default="multilabel",
        metadata={"help": "mean AP (VOC) or mean per-class accuracy (SUN).", "choices": TASKS},
    )

    def __post_init__(self):
        _items(TAP_NAMES)(self.layers)
        _items(ablations.ABLATIONS)(self.ablations)
        _items(tuple(protocols.PROTOCOLS))((self.protocol,))
        _items(TASKS)((self.task,))


def multiclass_accuracy(train_x, train_y, test_x, test_y, num_classes):
    """Mean per-class accuracy (%) of one-vs-rest SVMs, argmax of the decision values, one cost
    for all classes chosen by cross-validation on the training split (`protocols.multiclass_probe`,
    protocol `protocols.SUN_OVR`)."""
    result = protocols.multiclass_probe(train_x, train_y, test_x, test_y, num_classes=num_classes)
    return 100.0 * result.accuracy


def probe_score(
    train_x, train_labels, test_x, test_labels, *, task, num_classes, protocol
) -> float:
    """One probe's score in %: mean AP (multilabel) or mean per-class accuracy (multiclass)."""
    if task == "multilabel":
        res = protocols.multilabel_probe(
            train_x, train_labels, test_x, test_labels, protocol=protocol
        )
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
    protocol=protocols.VOC07_VISSL,
    progress=None,
) -> dict:
    """Scores of every (layer, ablation) in `grid` -> ``{layer: {ablation: score %}}``.

    `train`/`test`: ``{'taps': {layer: array}, 'labels': array}`` as `feature_sets.extract`
    returns. `grid`: iterable of (layer, ablation). `progress(done, total, layer, ablation)`.
    """
    grid = list(grid)
    out: dict = {}
    for i, (layer, ablation) in enumerate(grid):
        x_tr = ablations.ablated(train["taps"][layer], ablation, seed=0)
        x_te = ablations.ablated(test["taps"][layer], ablation, seed=1)
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


def probe(cache_, run, step, task_sets, grid, protocol: str, taps=TAP_NAMES) -> dict:
    """`probe_layers` on the features of checkpoint (`run`, `step`) read through a
    `jaxcnn.features.FeatureCache`; `task_sets` = (train set, test set, task, classes)."""
    train, test, task, num_classes = cache_.pair(run, step, task_sets, taps)
    return probe_layers(
        train,
        test,
        grid,
        task=task,
        num_classes=num_classes,
        protocol=protocols.PROTOCOLS[protocol],
    )


def cv_cost(protocol: str, train: dict, *, layer: str = "conv5", ablation: str = "sp-max") -> float:
    """The SVM cost that `protocol`'s cross-validation picks most often over the classes for one
    (layer, ablation) of the training features `train` (labels in devkit coding). Only the
    training rows are used: the test argument of the protocol gets two training rows, whose
    scores are discarded."""
    x = ablations.ablated(train["taps"][layer], ablation)
    res = protocols.multilabel_probe(
        x, train["labels"], x[:2], train["labels"][:2], protocol=protocols.PROTOCOLS[protocol]
    )
    values, counts = np.unique(res.cost_K, return_counts=True)
    return float(values[np.argmax(counts)])
