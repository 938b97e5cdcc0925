"""Checksums of prepared datasets: a damaged file is named, and the dataset can be re-prepared.

`record(dataset_dir)` writes ``jaxcnn-checksums.json`` into a prepared TFDS dataset folder (the
version folder holding ``dataset_info.json`` and the ``*.array_record-*`` shards): the size and
SHA-256 of every file except jaxcnn's own files and folders (``jaxcnn-*``: the stored means,
recomputed when missing, and the archive preparation's work folder) and hidden temporaries.
`verify` checks a folder against it:

- ``full=False`` (every `jaxcnn.data.sources.open_split`): every recorded file exists with its
  size (a stat per file): catches missing, truncated and partly copied files;
- ``full=True`` (when preparing again): also the SHA-256 of every byte: catches flipped bytes.

A mismatch raises `DamagedDatasetError` naming the file, what is wrong and what to do. A folder
without checksums (prepared before they were recorded) is not checked. `set_aside_if_damaged`
moves a damaged folder to ``<folder>.damaged-<time>`` so that preparing it again starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time

CHECKSUMS = "jaxcnn-checksums.json"
VERSION = 1


class DamagedDatasetError(ValueError):
    """A prepared dataset whose files do not match their recorded checksums."""

    def __init__(self, dataset_dir: str, path: str, why: str):
        super().__init__(
            f"prepared dataset {dataset_dir} is damaged: {path} {why}; prepare it again "
            f"(experiments/prepare_data.py re-prepares a damaged dataset, or delete "
            f"{dataset_dir} and prepare it)"
        )
        self.dataset_dir, self.path, self.why = dataset_dir, path, why


def _files(dataset_dir: str) -> list[str]:
    out = []
    for root, dirs, names in os.walk(dataset_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "jaxcnn-")))
        for name in names:
            if name.startswith((".", "jaxcnn-")):
                continue
            out.append(os.path.relpath(os.path.join(root, name), dataset_dir))
    return sorted(out)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def record(dataset_dir: str | os.PathLike) -> dict:
    """Write the checksums of a freshly prepared dataset folder; returns them."""
    dataset_dir = os.fspath(dataset_dir)
    files = {
        rel: {
            "size": os.path.getsize(os.path.join(dataset_dir, rel)),
            "sha256": _sha256(os.path.join(dataset_dir, rel)),
        }
        for rel in _files(dataset_dir)
    }
    checksums = {"version": VERSION, "files": files}
    fd, tmp = tempfile.mkstemp(prefix=f".{CHECKSUMS}.", dir=dataset_dir)  # atomic: data cannot
    try:  # import jaxcnn.storage (docs/architecture.md), so it renames like preprocess.save_mean
        with os.fdopen(fd, "w") as f:
            json.dump(checksums, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(dataset_dir, CHECKSUMS))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return checksums


def recorded(dataset_dir: str | os.PathLike) -> dict | None:
    """The recorded checksums of a folder (None if there are none)."""
    path = os.path.join(os.fspath(dataset_dir), CHECKSUMS)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError as e:
        raise DamagedDatasetError(os.fspath(dataset_dir), path, f"is unreadable ({e})") from e


def verify(dataset_dir: str | os.PathLike, *, full: bool = False) -> bool:
    """Check a prepared folder against its checksums (module docstring); False if it has none.
    Raises `DamagedDatasetError` naming the first damaged file."""
    dataset_dir = os.fspath(dataset_dir)
    checksums = recorded(dataset_dir)
    if checksums is None:
        return False
    for rel, want in sorted(checksums["files"].items()):
        path = os.path.join(dataset_dir, rel)
        if not os.path.exists(path):
            raise DamagedDatasetError(dataset_dir, path, "is missing")
        size = os.path.getsize(path)
        if size != want["size"]:
            raise DamagedDatasetError(
                dataset_dir, path, f"has {size} bytes, {want['size']} were recorded (truncated?)"
            )
        if full and _sha256(path) != want["sha256"]:
            raise DamagedDatasetError(
                dataset_dir, path, "does not match its recorded SHA-256 (bytes changed)"
            )
    return True


def set_aside_if_damaged(dataset_dir: str | os.PathLike) -> str | None:
    """Fully verify a prepared folder; if damaged, move it to ``<folder>.damaged-<time>`` (kept
    for inspection; preparing again then starts afresh) and return the reason, else None."""
    dataset_dir = os.fspath(dataset_dir)
    if not os.path.isdir(dataset_dir):
        return None
    try:
        verify(dataset_dir, full=True)
    except DamagedDatasetError as e:
        aside = f"{dataset_dir.rstrip(os.sep)}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
        os.replace(dataset_dir, aside)
        return f"{e.path} {e.why}: moved {dataset_dir} to {aside}"
    return None
