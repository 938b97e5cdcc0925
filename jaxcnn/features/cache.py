"""Extracted features shared by analyses: one folder per (run, step, feature set).

`FeatureCache(root).get(run, step, fs)` extracts a checkpoint's taps on a `FeatureSet` once
(resumable, `jaxcnn.features.sets.extract`) and reads them back memory-mapped afterwards.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from jaxcnn.features import labels as label_codes
from jaxcnn.features.sets import FeatureSet, extract
from jaxcnn.model import TAP_NAMES
from jaxcnn.storage import checkpoints


def run_dir_of(run) -> str:
    """A run directory, or the run directory of a study training stage's result."""
    return run if isinstance(run, str | os.PathLike) else run.result["run_dir"]


class FeatureCache:
    """Features under ``<root>/features/<run tag>-<step>-<feature set name>``.

    `run` is a run directory or a training stage's result; `step` None means its latest
    checkpoint (named by its number, so that both spellings share one folder)."""

    def __init__(self, root, *, batch_size: int = 128):
        self.root, self.batch_size = Path(root) / "features", batch_size

    def get(self, run, step: int | None, fs: FeatureSet, taps=TAP_NAMES):
        run_dir = os.fspath(run_dir_of(run))
        if step is None:
            step, _ = checkpoints.verified_step(run_dir)  # the newest undamaged step
        tag = hashlib.sha256(os.path.abspath(run_dir).encode()).hexdigest()[:10]
        out = self.root / f"{tag}-{step}-{fs.name}"
        feats = extract(run_dir, step, fs, str(out), taps=taps, batch_size=self.batch_size)
        if fs.view == "gt_boxes":  # per-class AP of boxes: one-vs-rest columns
            feats["box_labels"] = feats["labels"]
            feats["labels"] = label_codes.boxes_as_multilabel(
                feats["labels"], feats["difficult"], len(feats["class_names"])
            )
        return feats

    def pair(self, run, step, task_sets, taps=TAP_NAMES):
        """(train features, test features, task, classes) of `task_sets` = (train set, test
        set, task, classes)."""
        train_fs, test_fs, task, num_classes = task_sets
        train = self.get(run, step, train_fs, taps)
        return train, self.get(run, step, test_fs, taps), task, num_classes
