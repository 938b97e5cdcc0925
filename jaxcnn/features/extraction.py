"""Feature extraction: stream a model's taps to memory-mapped ``.npy`` files, resumably.

Layout of ``out_dir``::

    manifest.json     {"version", "num_examples", "rows_done", "complete",
                       "taps": {name: {"file", "shape" (per example), "dtype"}}}
    <tap>.npy         [num_examples, *shape], written through np.lib.format.open_memmap

Before the first row, the files' whole size is reserved on disk (``posix_fallocate``,
`jaxcnn.storage.space`): a full disk is an ``ENOSPC`` error naming the folder and the bytes
needed, never a bus error in a memory-mapped write. Rows are written in example order. Every
``COMMIT_SECONDS`` and at the end the memory maps are flushed and then the manifest is replaced
atomically (`jaxcnn.storage.write_json`), so ``rows_done`` never counts a row that is not on
disk (rows written after the last commit are redone by a resumed run). A later
call with the same ``out_dir``, taps and ``num_examples`` resumes at ``rows_done``: batches that
lie wholly before it are skipped without running the model (the batch iterable must yield the
same examples in the same order). ``load_features`` refuses extractions that are not complete.

The forward pass is one ``jax.jit`` of ``module.apply({'params': params}, x, train=False)``
keeping only the requested taps. With several local accelerators the batch is sharded over
them (a 1-D mesh on the batch axis, parameters replicated) and padded to a multiple of the
device count (`jaxcnn.train.devices.data_parallel`; on a CPU one device); the next batch is
dispatched before the previous one is written, so disk writes overlap the computation.
"""

import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn import storage
from jaxcnn.storage import space
from jaxcnn.train import devices

MANIFEST = "manifest.json"
VERSION = 1
# Finished rows are flushed and recorded in the manifest at most this often (flushing every
# batch cost a quarter of a GT-box extraction's time); an interrupted run redoes the rest.
COMMIT_SECONDS = 10.0


def _write_manifest(out_dir, manifest):
    storage.write_json(os.path.join(out_dir, MANIFEST), manifest, sync=True, indent=1)


def read_manifest(out_dir):
    """The manifest dict of an extraction directory (ValueError if there is none)."""
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.exists(path):
        raise ValueError(f"no feature extraction in {out_dir}: {MANIFEST} is missing")
    with open(path) as f:
        return json.load(f)


def is_complete(out_dir, taps, num_examples) -> bool:
    """Whether `out_dir` holds a finished extraction of exactly `taps` over `num_examples` rows
    (then reading it needs no pass over the images)."""
    if not os.path.exists(os.path.join(out_dir, MANIFEST)):
        return False
    manifest = read_manifest(out_dir)
    return (
        bool(manifest.get("complete"))
        and manifest.get("num_examples") == num_examples
        and set(manifest.get("taps", {})) == set(taps)
    )


def _valid_rows(batch, index):
    """Boolean [B] of real (non-padding) rows from 'mask' or 'size'; checks the batch."""
    if "image" not in batch:
        raise ValueError(f"batch {index} has no 'image' entry (keys: {sorted(batch)})")
    image = batch["image"]
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"batch {index}: 'image' must be [B, H, W, 3], got {image.shape}")
    b = image.shape[0]
    if "mask" in batch:
        mask = np.asarray(batch["mask"]).astype(bool)
        if mask.shape != (b,):
            raise ValueError(f"batch {index}: 'mask' must be [{b}], got {mask.shape}")
        return mask
    if "size" in batch:
        size = int(batch["size"])
        if not 0 <= size <= b:
            raise ValueError(f"batch {index}: 'size' {size} outside [0, {b}]")
        return np.arange(b) < size
    return np.ones(b, bool)


@functools.lru_cache(maxsize=64)
def make_forward(module, taps):
    """``forward(params, images) -> {tap: array}``: the model keeping only ``taps`` (unjitted).
    One function object per (module, taps) in a process (modules compare by their config), so
    its jit compiles once per input shape, not once per extraction (the study extracts the same
    feature sets from up to 9 networks: ~20 s of compiles)."""

    def forward(params, images):
        _, all_taps = module.apply({"params": params}, images, train=False)
        missing = set(taps) - set(all_taps)
        if missing:
            raise ValueError(f"model has no taps {sorted(missing)}; it has {sorted(all_taps)}")
        return {name: all_taps[name] for name in taps}

    return forward


def _open_outputs(out_dir, taps, shapes, dtype, num_examples):
    """Create or reopen the memmaps and manifest; returns ``(arrays, manifest)``."""
    wanted = {
        name: {"file": f"{name}.npy", "shape": list(shapes[name]), "dtype": np.dtype(dtype).name}
        for name in taps
    }
    path = os.path.join(out_dir, MANIFEST)
    if os.path.exists(path):
        manifest = read_manifest(out_dir)
        if manifest.get("taps") != wanted or manifest.get("num_examples") != num_examples:
            raise ValueError(
                f"{path} describes a different extraction (taps {manifest.get('taps')}, "
                f"num_examples {manifest.get('num_examples')}); use a new out_dir"
            )
        mode = "r+"
    else:
        os.makedirs(out_dir, exist_ok=True)
        manifest = {
            "version": VERSION,
            "num_examples": num_examples,
            "rows_done": 0,
            "complete": False,
            "taps": wanted,
        }
        mode = "w+"
    paths = {name: os.path.join(out_dir, spec["file"]) for name, spec in wanted.items()}
    nbytes = {
        name: np.dtype(dtype).itemsize * num_examples * int(np.prod(spec["shape"], dtype=np.int64))
        for name, spec in wanted.items()
    }
    if mode == "w+":  # the whole extraction's space, before any file exists
        space.require(out_dir, sum(nbytes.values()) + 2**16, what=f"features in {out_dir}")
    arrays = {
        name: np.lib.format.open_memmap(
            paths[name], mode=mode, dtype=dtype, shape=(num_examples, *spec["shape"])
        )
        for name, spec in wanted.items()
    }
    try:  # allocated now: a later memory-mapped write cannot meet a full disk (SIGBUS)
        for name, array in arrays.items():
            space.reserve(
                paths[name],
                array.offset + nbytes[name],
                what=f"features {name}",
                then="the extraction resumes at its last finished batch",
            )
    except space.OutOfSpaceError:
        if mode == "w+":  # nothing of this extraction is stored yet: leave no empty files
            for path in paths.values():
                os.remove(path)
        raise
    if mode == "w+":
        _write_manifest(out_dir, manifest)
    return arrays, manifest


def _write_rows(arrays, manifest, outputs, mask, start, progress) -> int:
    """Copy one batch's valid rows to the memmaps; returns the end row (not yet committed)."""
    end = start + int(mask.sum())
    skip = max(manifest["rows_done"] - start, 0)  # rows already on disk from an earlier run
    for name, array in arrays.items():
        rows = np.asarray(outputs[name])[: len(mask)][mask]
        array[start + skip : end] = rows[skip:]
    if progress is not None:
        progress(end, manifest["num_examples"])
    return end


def _commit(arrays, manifest, out_dir, end) -> None:
    """Flush the memmaps, then record `end` rows as done in the manifest (a resumed run
    continues there)."""
    for array in arrays.values():
        array.flush()
    manifest["rows_done"] = end
    manifest["complete"] = end == manifest["num_examples"]
    _write_manifest(out_dir, manifest)


def extract_features(
    module, params, batches, *, taps, out_dir, num_examples, dtype=np.float32, progress=None
):
    """Run ``module`` over ``batches`` and stream the requested taps to ``out_dir``.

    Args:
      module: a linen module whose ``apply({'params': params}, x, train=False)`` returns
        ``(logits, taps)`` with taps ``conv1…conv5`` ``[N, H, W, C]`` and ``fc6``, ``fc7``
        ``[N, D]`` (``jaxcnn.model.AlexNet``).
      params: its parameters.
      batches: iterable of dicts ``{'image': float32 [B, H, W, 3]}`` plus optionally ``'mask'``
        (bool ``[B]``, True for real rows) or ``'size'`` (the first ``size`` rows are real), so
        that a padded last batch contributes only its real rows.
      taps: names of the taps to store.
      out_dir: directory of the ``.npy`` files and ``manifest.json`` (module docstring).
      num_examples: the number of real rows the batches hold in total.
      dtype: storage dtype of the ``.npy`` files.
      progress: optional ``progress(rows_done, num_examples)`` called after each written batch.

    Returns:
      The final manifest (dict). Raises ``ValueError`` (naming the batch) on malformed batches,
      on more rows than ``num_examples``, on an ``out_dir`` holding a different extraction, and
      when the batches end early (the rows written so far stay resumable).
    """
    taps = tuple(taps)
    if not taps or len(set(taps)) != len(taps):
        raise ValueError(f"taps must be a non-empty list of distinct names, got {taps}")
    if num_examples <= 0:
        raise ValueError(f"num_examples must be positive, got {num_examples}")
    forward, params, place = devices.data_parallel(make_forward(module, taps), params)
    arrays = manifest = pending = None
    pos, committed = 0, time.monotonic()
    written = 0
    try:
        for index, batch in enumerate(batches):
            mask = _valid_rows(batch, index)
            images = np.asarray(batch["image"], np.float32)
            if arrays is None:
                spec = jax.ShapeDtypeStruct(images.shape, jnp.float32)
                shapes = jax.eval_shape(make_forward(module, taps), params, spec)
                shapes = {name: s.shape[1:] for name, s in shapes.items()}
                arrays, manifest = _open_outputs(out_dir, taps, shapes, dtype, num_examples)
            start, pos = pos, pos + int(mask.sum())
            if pos > num_examples:
                raise ValueError(f"batch {index} brings the row count to {pos} > {num_examples}")
            if pos <= manifest["rows_done"]:
                continue  # already on disk
            outputs = forward(params, place(images))  # dispatched asynchronously
            if pending is not None:
                written = _write_rows(arrays, manifest, *pending, progress)
                if time.monotonic() - committed > COMMIT_SECONDS:
                    _commit(arrays, manifest, out_dir, written)
                    committed = time.monotonic()
            pending = (outputs, mask, start)
    except BaseException:  # keep what was written (KeyboardInterrupt included)
        if manifest is not None and written > manifest["rows_done"]:
            _commit(arrays, manifest, out_dir, written)
        raise
    if pending is not None:
        _commit(arrays, manifest, out_dir, _write_rows(arrays, manifest, *pending, progress))
    if manifest is None or manifest["rows_done"] < num_examples:
        done = 0 if manifest is None else manifest["rows_done"]
        raise ValueError(
            f"batches ended after {pos} real rows but num_examples is {num_examples}; "
            f"{done} rows are stored in {out_dir} and a rerun resumes there"
        )
    return manifest


def load_features(out_dir, tap):
    """The stored ``[num_examples, ...]`` array of ``tap`` as a read-only memmap.

    Raises ``ValueError`` if the extraction is incomplete or has no such tap.
    """
    manifest = read_manifest(out_dir)
    if not manifest.get("complete") or manifest["rows_done"] < manifest["num_examples"]:
        raise ValueError(
            f"feature extraction in {out_dir} is incomplete ({manifest['rows_done']} of "
            f"{manifest['num_examples']} rows); rerun extract_features to resume it"
        )
    if tap not in manifest["taps"]:
        raise ValueError(f"{out_dir} has no tap {tap!r}; it has {sorted(manifest['taps'])}")
    return np.load(os.path.join(out_dir, manifest["taps"][tap]["file"]), mmap_mode="r")
