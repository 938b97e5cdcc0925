"""Atomic file writes: every file jaxcnn writes appears whole or not at all.

Each writer writes a temporary file in the destination's folder and renames it over the
destination (`os.replace`, atomic on POSIX), so a reader or a resumed run never sees a half-written
file, and an interrupted write leaves the previous version intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np


@contextlib.contextmanager
def replacing(path: str | os.PathLike, *, suffix: str = "", sync: bool = False) -> Iterator[str]:
    """Yields a temporary path next to `path`; when the block ends without an exception the file
    written there replaces `path` (fsynced first with `sync`), else it is removed."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are ordinary readable files
        if sync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def jsonable(x):
    """numpy -> JSON-able (floats with NaN kept as None)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, float | np.floating):
        return None if np.isnan(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_text(path: str | os.PathLike, text: str, *, sync: bool = False) -> None:
    with replacing(path, sync=sync) as tmp, open(tmp, "w") as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj: Any, *, sync: bool = False, **dumps_kw) -> None:
    """JSON of `obj` (keyword arguments go to `json.dumps`, e.g. indent, sort_keys)."""
    write_text(path, json.dumps(obj, **dumps_kw), sync=sync)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with replacing(path, suffix=".npy") as tmp:
        np.save(tmp, array)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with replacing(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def save_figure(fig, path: str | os.PathLike, **savefig_kw) -> str:
    """A matplotlib figure as PNG (keyword arguments go to `savefig`); returns the path."""
    with replacing(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", **savefig_kw)
    return os.fspath(path)
