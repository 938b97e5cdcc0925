"""Preparing datasets on disk: toyworld (generated here) and the real datasets.

Real datasets (imagenet2012, voc2007, voc2012, sun397) are prepared from the original archives
or extracted trees a researcher already has, by `jaxcnn.data.archives`, into the array_record
layout of TFDS's builders: no TensorFlow and no download (`prepare_real`). `sources.open_split`
reads them like datasets TFDS prepared.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from etils import epath

from jaxcnn.data import archives, integrity, sources, toyworld

log = logging.getLogger(__name__)


DATASETS = ("toyworld", "imagenet2012", "voc2007", "voc2012", "voc2007+2012", "sun397")


def _f(default, help_text, **meta):
    return dataclasses.field(default=default, metadata={"help": help_text, **meta})


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """What experiments/prepare_data.py prepares (its paths are flags of their own)."""

    dataset: str = _f("toyworld", "What to prepare.", choices=DATASETS)
    size: str = _f("default", "toyworld size.", choices=tuple(toyworld.SIZES))
    seed: int = _f(0, "toyworld generation seed.")
    num_workers: int = _f(0, "Worker processes (0: all cores).")
    resize: int = _f(
        0,
        "imagenet2012 only: store images with the shorter side scaled down to this (e.g. 256); "
        "recorded in the dataset's metadata. 0: images as they are.",
    )
    mean_size: int = _f(0, "Size the training-set mean is computed at (0: 72 toyworld, 256 real).")

    def __post_init__(self):
        if self.resize and self.dataset != "imagenet2012":
            raise ValueError(
                f"--resize is for imagenet2012 (got --dataset={self.dataset}); the mean's size "
                "is --mean_size"
            )
        if min(self.num_workers, self.resize, self.mean_size) < 0:
            raise ValueError(f"num_workers, resize and mean_size must be >= 0: {self}")


def prepare_real(name: str, **options) -> list[archives.Summary]:
    """Prepares a real dataset name of `sources` (voc2007+2012: both years) with
    `archives.prepare_dataset` (`options`: its manual_dir, data_dir, resize, num_workers,
    progress); returns one summary per prepared dataset. Raises `archives.MissingInputError`
    naming a missing file and where it is expected, `archives.ArchiveError` naming a truncated
    or corrupt archive."""
    if name.startswith("toyworld/"):
        raise ValueError("toyworld is prepared with prepare_toyworld")
    sources.dataset_spec(name)  # a known name
    names = ["voc2007", "voc2012"] if name == "voc2007+2012" else [name]
    return [archives.prepare_dataset(n, **options) for n in names]


def prepare_toyworld(
    *, size: str = "default", seed: int = 0, data_dir=None, num_workers: int | None = None
) -> dict[str, epath.Path]:
    """Generates the three toyworld parts; returns {dataset name: prepared directory}.

    One pool of `num_workers` processes (default: all cores) serves all parts. A prepared part
    whose files fail their checksums (every byte, `jaxcnn.data.integrity`) is set aside, said,
    and generated again; checksums are recorded for every part.
    """
    data_root = sources.data_dir_or_default(data_dir)
    for part in toyworld.PARTS:
        name = toyworld.config_name(part, size, seed)
        reason = integrity.set_aside_if_damaged(
            data_root / "toyworld" / name / str(toyworld.Toyworld.VERSION)
        )
        if reason:
            log.warning("re-preparing toyworld/%s: %s", name, reason)
    num_workers = os.cpu_count() if num_workers is None else num_workers
    pool = toyworld.worker_pool(num_workers) if num_workers > 1 else None
    out = {}
    try:
        for part in toyworld.PARTS:
            builder = toyworld.prepare(part, size=size, seed=seed, data_dir=data_dir, pool=pool)
            name = f"toyworld/{toyworld.config_name(part, size, seed)}"
            out[name] = epath.Path(builder.data_dir)
            if integrity.recorded(out[name]) is None:
                integrity.record(out[name])
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return out


def training_splits(name: str) -> list[tuple[str, str]]:
    """The (dataset, split) pairs whose mean a study uses: the training split of each task.

    Seeded datasets give the train split of seed 0; other seeds compute theirs on demand.
    """
    spec = sources.dataset_spec(name)
    if spec.pool is not None:
        return [(name, "train")]
    return [(name, "trainval" if "trainval" in spec.splits else "train")]


def directory_size(path) -> int:
    """Total bytes of the files under `path`."""
    return sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files
    )
