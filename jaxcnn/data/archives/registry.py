"""Which module prepares which dataset name, and the one call that prepares one."""

from __future__ import annotations

import logging
import os

from jaxcnn.data import integrity
from jaxcnn.data.archives import imagenet, summary, sun397, voc, writer

log = logging.getLogger(__name__)

NAMES = ("voc2007", "voc2012", "sun397", "imagenet2012")


def plan(
    name: str,
    *,
    manual_dir,
    data_dir=None,
    resize: int | None = None,
    num_workers: int = 1,
    progress=None,
) -> writer.Job:
    """The preparation job of a dataset name (NAMES) from the files in `manual_dir`.

    For SUN397.tar.gz this already runs the ordered pass over the archive (`stream`)."""
    if name not in NAMES:
        raise ValueError(f"no archive preparation for {name!r}; known: {', '.join(NAMES)}")
    if manual_dir is None or not os.path.isdir(manual_dir):
        raise FileNotFoundError(
            f"{name}: --manual_dir must be a directory holding the original archives or their "
            f"extracted tree, got {manual_dir!r}"
        )
    if resize is not None and name != "imagenet2012":
        raise ValueError(
            f"--resize applies to imagenet2012 only: VOC boxes are kept in the original pixels "
            f"and sun397/tfds has its own size rule; got --resize={resize} for {name}"
        )
    if name.startswith("voc"):
        return voc.plan(name, manual_dir)
    if name == "sun397":
        return sun397.plan(
            manual_dir, data_dir=data_dir, num_workers=num_workers, progress=progress
        )
    return imagenet.plan(manual_dir, resize=resize, num_workers=num_workers)


def _target(name: str, resize: int | None) -> tuple[str, dict, dict]:
    """(TFDS name, options, the options TFDS's own builder corresponds to) of a dataset."""
    if name.startswith("voc"):
        return f"voc/{voc.YEARS[name][0]}", {}, {}
    if name == "sun397":
        return sun397.TFDS_NAME, sun397.OPTIONS, sun397.OPTIONS
    return imagenet.TFDS_NAME, imagenet.options(resize), imagenet.options(None)


def prepare_dataset(
    name: str,
    *,
    manual_dir,
    data_dir=None,
    resize: int | None = None,
    num_workers: int = 1,
    progress=None,
) -> writer.Summary:
    """Prepares `name` from the archives / extracted trees in `manual_dir` into `data_dir`
    (TFDS's layout; `sources.open_split` reads it). Resumes an interrupted run; returns the
    summary (counts per split, skipped by reason, notes, size, time). `progress(Progress)`
    is called as images are done. A finished dataset is only checked (same options, else
    `PrepareMismatchError`; every byte against its checksums, `jaxcnn.data.integrity`: a
    damaged one is set aside, said, and prepared again) and summarised, without reading the
    archives again. Checksums are recorded when a preparation finishes."""
    if name in NAMES:
        tfds_name, options, tfds_options = _target(name, resize)
        directory = writer.dataset_directory(tfds_name, data_dir)
        reason = integrity.set_aside_if_damaged(directory)
        if reason:
            log.warning("re-preparing %s: %s", name, reason)
        writer.check_options(directory, name, options, tfds_options)
        if writer.is_prepared(directory):
            return summary.prepared_summary(directory, name, options)
    job = plan(
        name, manual_dir=manual_dir, data_dir=data_dir, resize=resize,
        num_workers=num_workers, progress=progress,
    )  # fmt: skip
    done = writer.prepare(job, data_dir=data_dir, num_workers=num_workers, progress=progress)
    if integrity.recorded(done.directory) is None:
        integrity.record(done.directory)
    return done
