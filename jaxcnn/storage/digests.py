"""Content digests: what a checkpoint is verified against and what caches are keyed by.

`tree_digest` hashes a pytree of arrays by content. Each leaf contributes its path, dtype, shape
and bytes; leaves are taken in the order of their normalised paths (dict keys, attribute names
and sequence indices as strings), so a tree and the same tree restored by Orbax as nested dicts
(a namedtuple's fields become dict keys) have one digest. `files_signature` is a cheap
fingerprint of a folder's files (names, sizes, modification times) used to remember, within one
process, that a checkpoint was already verified.
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
