"""Extracted features shared by analyses: one folder per (checkpoint content, feature set).

`FeatureCache(root).get(run, step, fs)` extracts a checkpoint's taps on a `FeatureSet` once
(resumable, `jaxcnn.features.sets.extract`) and reads them back memory-mapped afterwards. The
folder is keyed by what the features depend on, not by where the run lives: the checkpoint's
state digest (`jaxcnn.storage.checkpoints.verified_step`), the network description it records
and every field of the feature set. A run retrained in the same directory therefore gets new
features, and two paths to one checkpoint share them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections import defaultdict
from pathlib import Path

from jaxcnn.features import labels as label_codes
from jaxcnn.features.sets import FeatureSet, extract
from jaxcnn.model import TAP_NAMES
from jaxcnn.storage import checkpoints


def run_dir_of(run) -> str:
    """A run directory, or the run directory of a study training stage's result."""
    return run if isinstance(run, str | os.PathLike) else run.result["run_dir"]


def features_key(digest: str, network: dict, fs: FeatureSet) -> str:
    """Short hash of a checkpoint's content, its network description and a feature set."""
    blob = json.dumps(
        {"state": digest, "network": network, "set": dataclasses.asdict(fs)}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# One extraction per folder at a time: the study's analyses run on threads and may ask for the
# same features at once; the second waits and reads what the first wrote.
_FOLDER_LOCKS: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_LOCKS_LOCK = threading.Lock()


def _folder_lock(folder: Path) -> threading.Lock:
    with _LOCKS_LOCK:
        return _FOLDER_LOCKS[os.fspath(folder)]


class FeatureCache:
    """Features under ``<root>/features/<step>-<key>-<feature set name>``, `key` from
    `features_key` (module docstring).

    `run` is a run directory or a training stage's result; `step` None means its newest
    undamaged checkpoint (named by its number, so that both spellings share one folder)."""

    def __init__(self, root, *, batch_size: int = 128):
        self.root, self.batch_size = Path(root) / "features", batch_size

    def folder(self, run, step: int | None, fs: FeatureSet) -> tuple[int, Path]:
        """(resolved step, features folder) of a checkpoint of `run` on `fs`."""
        run_dir = os.fspath(run_dir_of(run))
        step, digest = checkpoints.verified_step(run_dir, step)
        network = checkpoints.restore_meta(run_dir, step).get("model", {})
        return step, self.root / f"{step}-{features_key(digest, network, fs)}-{fs.name}"

    def get(self, run, step: int | None, fs: FeatureSet, taps=TAP_NAMES):
        step, out = self.folder(run, step, fs)
        run_dir = os.fspath(run_dir_of(run))
        with _folder_lock(out):
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
