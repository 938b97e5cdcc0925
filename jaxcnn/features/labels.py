"""Label conventions of feature sets: every multi-label set in VOC's devkit coding
(docs/methods.md §3): 1 present, -1 absent, 0 difficult-only."""

import numpy as np


def to_devkit_labels(labels_NxC: np.ndarray) -> np.ndarray:
    """Data-pipeline multi-labels (1 present, 0 absent, -1 difficult-only; `jaxcnn.data.records`)
    to VOC's devkit coding used by `jaxcnn.probe.protocols` (1 present, -1 absent, 0
    difficult-only)."""
    out = np.full(labels_NxC.shape, -1, np.int8)
    out[labels_NxC == 1] = 1
    out[labels_NxC == -1] = 0
    return out


def boxes_as_multilabel(labels_N: np.ndarray, difficult_N: np.ndarray, num_classes: int):
    """Box labels -> devkit-coded ``[N, C]`` (1 its class, -1 others, 0 if a difficult box's
    own class)."""
    out = np.full((labels_N.shape[0], num_classes), -1, np.int8)
    rows = np.arange(labels_N.shape[0])
    out[rows, labels_N] = np.where(np.asarray(difficult_N, bool), 0, 1)
    return out
