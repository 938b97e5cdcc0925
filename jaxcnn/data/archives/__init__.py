"""Preparing the real datasets from their original archives, without TensorFlow.

`prepare_dataset('voc2007' | 'voc2012' | 'sun397' | 'imagenet2012', manual_dir=...,
data_dir=...)` reads the files researchers already have (tars read in place, or extracted
trees) with the standard library and pillow, and writes TFDS array_record datasets in the
layout of TFDS's own builders, so `jaxcnn.data.sources.open_split` reads them unchanged.

Modules: `inputs` (finding and reading files in tars and directories, named errors), `images`
(checking, repairing and shrinking image bytes), `writer` (shards in worker processes,
resumable, TFDS metadata), `summary` (progress, summary, the preparation record), one module
per dataset (`voc`, `sun397`, `imagenet` with `imagenet_labels`), `stream` (gzipped tars, read
once in order), `registry` (names -> modules).
"""

from jaxcnn.data.archives.inputs import ArchiveError, MissingInputError
from jaxcnn.data.archives.registry import NAMES, plan, prepare_dataset
from jaxcnn.data.archives.summary import Progress, Summary, read_metadata
from jaxcnn.data.archives.writer import PrepareMismatchError

__all__ = [
    "NAMES",
    "ArchiveError",
    "MissingInputError",
    "PrepareMismatchError",
    "Progress",
    "Summary",
    "plan",
    "prepare_dataset",
    "read_metadata",
]
