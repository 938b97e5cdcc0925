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


def _score_and_cost(train_x, train_labels, test_x, test_labels, task, num_classes, protocol, cost):
    """(score %, the cost(s) used): the protocol's selection when `cost` is None."""
    if task == "multilabel":
        res = protocols.multilabel_probe(
            train_x, train_labels, test_x, test_labels, protocol=protocol, cost_K=cost
        )
        return 100.0 * res.mean_ap, res.cost_K
    if task == "multiclass":
        res = protocols.multiclass_probe(
            train_x,
            train_labels,
            test_x,
            test_labels,
            num_classes=num_classes,
            protocol=multiclass_protocol(protocol),
            cost=cost,
        )
        return 100.0 * res.accuracy, res.cost
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def multiclass_protocol(protocol: protocols.ProbeProtocol) -> protocols.ProbeProtocol:
    """SUN's one-vs-rest protocol, on the cost grid of a cross-validating multi-label
    `protocol` (e.g. `voc07_c20`'s shorter grid), else on its own."""
    if protocol is None or not protocol.num_folds:
        return protocols.SUN_OVR
    return dataclasses.replace(protocols.SUN_OVR, costs=protocol.costs)


def probe_score(
    train_x, train_labels, test_x, test_labels, *, task, num_classes, protocol
) -> float:
    """One probe's score in %: mean AP (multilabel) or mean per-class accuracy (multiclass,
    one-vs-rest SVMs with one cost chosen by cross-validation, `protocols.multiclass_probe`)."""
    return _score_and_cost(
        train_x, train_labels, test_x, test_labels, task, num_classes, protocol, None
    )[0]


def split_rows(n_train: int, n_test: int, splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rows of the pooled ``[train; test]`` set for each of `splits` train/test partitions of the
    same sizes: split 0 is the given one, split k > 0 a random re-draw seeded by k."""
    n = n_train + n_test
    out = [(np.arange(n_train), np.arange(n_train, n))]
    for k in range(1, splits):
        perm = np.random.default_rng(k).permutation(n)
        out.append((np.sort(perm[:n_train]), np.sort(perm[n_train:])))
    return out


def split_scores(
    x_tr, y_tr, x_te, y_te, *, task, num_classes, protocol, splits: int = 1
) -> float | list[float]:
    """One probe on `splits` train/test partitions (`split_rows`; docs/methods.md §4.6).

    The cost is selected by the protocol on split 0 only and reused on the others (each then
    costs one fit instead of the whole cross-validated cost path). Returns the score (%) for
    ``splits == 1``, else the list of the splits' scores."""
    scores, _ = _more_splits(
        x_tr, y_tr, x_te, y_te, task, num_classes, protocol, splits, done=(), cost=None
    )
    return scores[0] if splits == 1 else scores


def _more_splits(x_tr, y_tr, x_te, y_te, task, num_classes, protocol, splits, *, done, cost):
    """The scores of splits ``0 … splits − 1`` and split 0's cost(s), given the scores `done` of
    the first splits (and, when there are any, the `cost` split 0 chose): only the missing
    splits are fitted."""
    scores = list(done)
    if not scores:
        first, cost = _score_and_cost(x_tr, y_tr, x_te, y_te, task, num_classes, protocol, None)
        scores.append(first)
    if splits > len(scores):
        x, y = np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te])
        for train, test in split_rows(len(x_tr), len(x_te), splits)[len(scores) :]:
            scores.append(
                _score_and_cost(
                    x[train], y[train], x[test], y[test], task, num_classes, protocol, cost
                )[0]
            )
    return scores[:splits], cost


def probe_layers(
    train: dict,
    test: dict,
    grid,
    *,
    task: str,
    num_classes: int,
    protocol=protocols.VOC07_VISSL,
    splits: int = 1,
    progress=None,
) -> dict:
    """Scores of every (layer, ablation) in `grid` -> ``{layer: {ablation: score %}}``; with
    ``splits > 1`` each score is the list of its repeated splits' scores (`split_scores`).

    `train`/`test`: ``{'taps': {layer: array}, 'labels': array}`` as `feature_sets.extract`
    returns. `grid`: iterable of (layer, ablation). `progress(done, total, layer, ablation)`.
    Ablations are drawn per row (sp-shuffle's permutation), so they are applied before the
    rows are re-split.
    """
    if splits < 1:
        raise ValueError(f"splits must be >= 1, got {splits}")
    grid = list(grid)
    todo = {cell: ((), None) for cell in grid}
    fresh = _fit_cells(train, test, todo, task, num_classes, protocol, splits, progress)
    out: dict = {}
    for layer, ablation in grid:
        scores = fresh[(layer, ablation)][0]
        out.setdefault(layer, {})[ablation] = scores[0] if splits == 1 else scores
    return out


def _fit_cells(train, test, cells: dict, task, num_classes, protocol, splits, progress=None):
    """``{cell: (scores of its first splits, split 0's cost)}`` -> the same with `splits` scores
    each (`_more_splits`)."""
    out = {}
    for i, ((layer, ablation), (done, cost)) in enumerate(cells.items()):
        x_tr = ablations.ablated(train["taps"][layer], ablation, seed=0)
        x_te = ablations.ablated(test["taps"][layer], ablation, seed=1)
        out[(layer, ablation)] = _more_splits(
            np.asarray(x_tr),
            np.asarray(train["labels"]),
            np.asarray(x_te),
            np.asarray(test["labels"]),
            task,
            num_classes,
            protocol,
            splits,
            done=done,
            cost=cost,
        )
        if progress is not None:
            progress(i + 1, len(cells), layer, ablation)
    return out


# The probes run in this process, by their features' folders and settings: ``{key: (scores of
# splits 0, 1, …, split 0's cost)}``. A cell that two analyses share (e.g. the final snapshot's
# layers in Tables 3 and 7) is fitted once; a request for more splits than are there fits only
# the missing ones.
_scores: dict = {}


def probe(
    cache_, run, step, task_sets, grid, protocol: str, taps=TAP_NAMES, splits: int = 1
) -> dict:
    """`probe_layers` on the features of checkpoint (`run`, `step`) read through a
    `jaxcnn.features.FeatureCache`; `task_sets` = (train set, test set, task, classes). The
    splits of a cell already scored in this process on the same feature folders and settings
    are not refitted (a request for fewer splits reads the first ones)."""
    if splits < 1:
        raise ValueError(f"splits must be >= 1, got {splits}")
    folders = tuple(str(cache_.folder(run, step, fs)[1]) for fs in task_sets[:2])
    key = lambda cell: (folders, *task_sets[2:], *cell, protocol)  # noqa: E731
    todo = {
        cell: _scores.get(key(cell), ((), None))
        for cell in grid
        if len(_scores.get(key(cell), ((), None))[0]) < splits
    }
    if todo:
        train, test, task, num_classes = cache_.pair(run, step, task_sets, taps)
        fresh = _fit_cells(
            train, test, todo, task, num_classes, protocols.PROTOCOLS[protocol], splits
        )
        for cell, (scores, cost) in fresh.items():
            _scores[key(cell)] = (tuple(scores), cost)
    out: dict = {}
    for layer, ablation in grid:
        scores = _scores[key((layer, ablation))][0][:splits]
        out.setdefault(layer, {})[ablation] = scores[0] if splits == 1 else list(scores)
    return out


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
