"""Checkpoint integrity: content digests, what damage looks like, and what was already checked.

`tree_digest` hashes a pytree of arrays by content. Each leaf contributes its path, dtype, shape
and bytes; leaves are taken in the order of their normalised paths (dict keys, attribute names
and sequence indices as strings), so a tree and the same tree restored by Orbax as nested dicts
(a namedtuple's fields become dict keys) have one digest. `files_signature` is a cheap
fingerprint of a folder's files (names, sizes, modification times) used to remember, within one
process, that a checkpoint was already verified (`remember_good` / `known_good`) or found
damaged (`remember_damaged` / `known_damage`). `describe` turns an Orbax / tensorstore exception
into one line.
"""

from __future__ import annotations

import hashlib
import os

import jax
import numpy as np


def _key(entry) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def tree_digest(tree) -> str:
    """SHA-256 over every leaf's (path, dtype, shape, bytes), leaves sorted by path."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    keyed = sorted((tuple(_key(e) for e in path), leaf) for path, leaf in leaves)
    h = hashlib.sha256()
    for path, leaf in keyed:
        array = np.ascontiguousarray(np.asarray(leaf))
        header = f"{'/'.join(path)}|{array.dtype.str}|{array.shape}\n"
        h.update(header.encode())
        h.update(array.tobytes())
    return h.hexdigest()


def files_signature(directory: str | os.PathLike) -> tuple:
    """(relative path, size, mtime_ns) of every file under `directory`, sorted."""
    out = []
    for dirpath, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:  # removed while we walk: the signature differs anyway
                continue
            out.append((os.path.relpath(path, directory), st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


class DamagedCheckpointError(ValueError):
    """A checkpoint step that cannot be read or does not match its recorded digest (`step` None:
    no step of the run is usable)."""

    def __init__(self, message: str, *, step: int | None = None):
        super().__init__(message)
        self.step = step


def describe(e: BaseException) -> str:
    """One line from an Orbax / tensorstore exception (their texts carry long JSON specs)."""
    text = str(e).split(" [tensorstore_spec", 1)[0].strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(e, KeyError) and "was not found" in first:
        first = f"the step folder is empty or copied only in part ({first.strip(chr(39))})"
    return f"{type(e).__name__}: {first[:400]}"


# What this process found about checkpoint steps, keyed by their folder: (files_signature,
# digest) of verified ones and (files_signature, error) of damaged ones; a changed signature (the
# step was rewritten) forgets it.
_GOOD: dict[str, tuple[tuple, str]] = {}
_DAMAGED: dict[str, tuple[tuple, DamagedCheckpointError]] = {}


def remember_good(step_dir: str, digest: str) -> None:
    _GOOD[step_dir] = (files_signature(step_dir), digest)


def remember_damaged(step_dir: str, error: DamagedCheckpointError) -> None:
    _DAMAGED[step_dir] = (files_signature(step_dir), error)


def known_good(step_dir: str) -> str | None:
    """The digest of a step verified earlier by this process, if its files are unchanged."""
    seen = _GOOD.get(step_dir)
    return seen[1] if seen is not None and seen[0] == files_signature(step_dir) else None


def known_damage(step_dir: str) -> DamagedCheckpointError | None:
    """The error of a step found damaged earlier by this process, if its files are unchanged."""
    seen = _DAMAGED.get(step_dir)
    return seen[1] if seen is not None and seen[0] == files_signature(step_dir) else None
