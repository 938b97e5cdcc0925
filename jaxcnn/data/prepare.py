"""Preparing datasets on disk: toyworld (generated here) and the real TFDS datasets.

Real datasets are prepared by TFDS's own builders into array_record files. In TFDS 4.9.10
those builders call TensorFlow *while generating* (tf.io.gfile, tf.image), so this one-off
step needs `tensorflow-cpu` installed in the environment that runs it (or the prepared
directory copied from a machine that has it); reading them back (`sources.open_split`) never
imports TensorFlow.
"""

from __future__ import annotations

import importlib.util
import os

import tensorflow_datasets as tfds
from etils import epath

from jaxcnn.data import sources, toyworld

# Files TFDS expects in manual_dir for datasets that cannot be downloaded automatically.
MANUAL_FILES = {
    "imagenet2012": ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"),
}


def check_manual_dir(name: str, manual_dir) -> None:
    """Raises FileNotFoundError listing exactly which files are missing from where."""
    needed = MANUAL_FILES.get(name, ())
    if not needed:
        return
    if manual_dir is None:
        raise FileNotFoundError(
            f"{name} must be downloaded by hand (image-net.org, after registration): put "
            f"{' and '.join(needed)} in a directory and pass it as manual_dir (--manual_dir)"
        )
    missing = [f for f in needed if not (epath.Path(manual_dir) / f).exists()]
    if missing:
        where = epath.Path(manual_dir).resolve()
        raise FileNotFoundError(
            f"{name}: missing {', '.join(missing)} in manual_dir {where}; download them from "
            f"image-net.org and place them there as {', '.join(str(where / f) for f in missing)}"
        )


def prepare_tfds(name: str, *, data_dir=None, manual_dir=None) -> list[epath.Path]:
    """Runs TFDS's builders for a real dataset name of `sources` with array_record output.

    Returns the prepared dataset directories. Raises FileNotFoundError for missing manual
    files and RuntimeError when TensorFlow (needed by TFDS's generation code) is absent.
    """
    spec = sources.dataset_spec(name)
    if name.startswith("toyworld/"):
        raise ValueError("toyworld is prepared with prepare_toyworld")
    check_manual_dir(name, manual_dir)
    if importlib.util.find_spec("tensorflow") is None:
        raise RuntimeError(
            f"preparing {name} runs TFDS's {spec.tfds_names} builder, which needs TensorFlow "
            "during generation; install tensorflow-cpu for this one-off step (reading needs "
            "only tensorflow-datasets and pillow) or copy a prepared array_record directory"
        )
    config = tfds.download.DownloadConfig(
        manual_dir=None if manual_dir is None else os.fspath(manual_dir),
        compute_stats=tfds.download.ComputeStatsMode.SKIP,
    )
    dirs = []
    for tfds_name in spec.tfds_names:
        builder = tfds.builder(tfds_name, data_dir=data_dir, file_format="array_record")
        builder.download_and_prepare(download_config=config)
        dirs.append(epath.Path(builder.data_dir))
    return dirs


def prepare_toyworld(
    *, size: str = "default", seed: int = 0, data_dir=None, num_workers: int | None = None
) -> dict[str, epath.Path]:
    """Generates the three toyworld parts; returns {dataset name: prepared directory}.

    One pool of `num_workers` processes (default: all cores) serves all parts.
    """
    num_workers = os.cpu_count() if num_workers is None else num_workers
    pool = toyworld.worker_pool(num_workers) if num_workers > 1 else None
    out = {}
    try:
        for part in toyworld.PARTS:
            builder = toyworld.prepare(part, size=size, seed=seed, data_dir=data_dir, pool=pool)
            name = f"toyworld/{toyworld.config_name(part, size, seed)}"
            out[name] = epath.Path(builder.data_dir)
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
