"""What jaxcnn keeps on disk: run checkpoints (Orbax, verified by digests), imported Caffe
weights, atomic writes, the locks that give a directory to one process, and cached stage folders
keyed by their settings (`stages`: the study's and the transfer grid's).

Storage sits at the bottom of the package graph with `data` and `metrics`: it imports no other
jaxcnn package (the Caffe importer reaches `jaxcnn.model` inside `load_caffemodel` only, for the
expected parameter shapes)."""

from jaxcnn.storage.atomic import (
    jsonable,
    replacing,
    save_figure,
    save_npy,
    save_npz,
    write_json,
    write_text,
)
from jaxcnn.storage.caffe import CaffeFormatError, load_caffemodel
from jaxcnn.storage.caffe import load_mean as load_caffe_mean
from jaxcnn.storage.checkpoints import (
    Checkpointer,
    DamagedCheckpointError,
    available_steps,
    recorded_digests,
    restore_meta,
    restore_params,
    save_params,
    verified_step,
)
from jaxcnn.storage.integrity import tree_digest
from jaxcnn.storage.locks import DirectoryInUseError, DirectoryLock
from jaxcnn.storage.space import OutOfSpaceError

__all__ = [
    "CaffeFormatError",
    "Checkpointer",
    "DamagedCheckpointError",
    "DirectoryInUseError",
    "DirectoryLock",
    "OutOfSpaceError",
    "available_steps",
    "jsonable",
    "load_caffe_mean",
    "load_caffemodel",
    "recorded_digests",
    "replacing",
    "restore_meta",
    "restore_params",
    "save_figure",
    "save_npy",
    "save_npz",
    "save_params",
    "tree_digest",
    "verified_step",
    "write_json",
    "write_text",
]
