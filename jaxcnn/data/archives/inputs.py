"""Finding and reading a dataset's original files in tar archives or extracted directories.

Files are named by their path inside the dataset's archive (`VOCdevkit/VOC2007/Annotations/
000001.xml`). A `Tree` looks each one up in extracted directories and uncompressed tars (whose
members are indexed once, header by header, so any member is then read with one seek, from
any process). Gzipped tars cannot be read at random (`is_stream`); `stream` reads them once.
Nested tars (ImageNet's train tar of per-class tars) are indexed the same way inside their
parent (`index_tar(location)`), so their members are read straight from the outer file.

Errors name what went wrong where: `MissingInputError` (which file is expected where) and
`ArchiveError` (which archive is truncated or corrupt, and at which member).
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Sequence
from typing import NamedTuple

from array_record.python import array_record_module


class MissingInputError(FileNotFoundError):
    """An input file is not where it is expected; the message says what and where."""


class ArchiveError(ValueError):
    """An archive is truncated or corrupt; the message names it."""


class Location(NamedTuple):
    """Where one input's bytes are: a whole file (`offset` -1), `size` bytes at `offset` in
    an uncompressed tar, or record `offset` of an array_record file (`size` -2)."""

    path: str
    offset: int = -1
    size: int = -1

    @property
    def in_records(self) -> bool:
        return self.size == -2


class Reader:
    """Reads `Location`s, keeping the files it opened until `close` (use as a context)."""

    def __init__(self):
        self._files, self._records = {}, {}

    def read(self, location: Location) -> bytes:
        if location.in_records:
            reader = self._records.get(location.path)
            if reader is None:
                reader = array_record_module.ArrayRecordReader(location.path)
                self._records[location.path] = reader
            return reader.read([location.offset])[0]
        if location.offset < 0:
            with open(location.path, "rb") as f:
                return f.read()
        f = self._files.get(location.path)
        if f is None:
            f = self._files[location.path] = open(location.path, "rb")  # noqa: SIM115
        f.seek(location.offset)
        data = f.read(location.size)
        if len(data) != location.size:
            raise ArchiveError(
                f"{location.path} is truncated: {location.size} bytes expected at offset "
                f"{location.offset}, {len(data)} found"
            )
        return data

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        for r in self._records.values():
            r.close()
        self._files, self._records = {}, {}

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Window(io.RawIOBase):
    """The bytes [start, start + size) of a file, as a seekable file (a nested tar)."""

    def __init__(self, f, start: int, size: int):
        self._f, self._start, self._size, self._pos = f, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), self._size - self._pos))
        self._f.seek(self._start + self._pos)
        data = self._f.read(n)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def index_tar(archive: str | Location) -> dict[str, Location]:
    """{member name: Location} of the regular files of an uncompressed tar.

    `archive` is a path, or the Location of a tar stored inside another (nested) tar. Raises
    ArchiveError if the archive is corrupt or shorter than its headers say (truncated).
    """
    outer = archive if isinstance(archive, Location) else Location(os.fspath(archive))
    if outer.offset >= 0 and outer.size < 0:
        raise ValueError(f"cannot index {outer}: not a whole file or a tar member")
    name = outer.path if outer.offset < 0 else f"{outer.path} (member at byte {outer.offset})"
    with open(outer.path, "rb") as f:
        start = max(outer.offset, 0)
        size = os.fstat(f.fileno()).st_size - start if outer.offset < 0 else outer.size
        if outer.offset >= 0 and start + size > os.fstat(f.fileno()).st_size:
            raise ArchiveError(f"{outer.path} is truncated: a nested tar ends past its end")
        members = {}
        try:
            with tarfile.open(fileobj=_Window(f, start, size), mode="r:") as tar:
                for info in tar:
                    if not info.isfile():
                        continue
                    if info.offset_data + info.size > size:
                        raise ArchiveError(
                            f"{name} is truncated: member {info.name} needs "
                            f"{info.offset_data + info.size} bytes, the archive has {size}"
                        )
                    members[info.name] = Location(outer.path, start + info.offset_data, info.size)
                end = tar.offset
        except (tarfile.TarError, EOFError) as e:
            raise ArchiveError(f"{name} is truncated or not a tar archive ({e})") from e
        # tarfile stops quietly at a cut header; a complete tar ends with a zero block there
        f.seek(start + end)
        if end + 512 > size or f.read(512) != bytes(512):
            last = max(members, key=lambda m: members[m].offset, default="(none)")
            raise ArchiveError(
                f"{name} is truncated: no end-of-archive block after member {last} (byte {end})"
            )
    return members


def is_stream(path: str) -> bool:
    """Whether a tar is compressed (read in order only) rather than plain (random access)."""
    with open(path, "rb") as f:
        magic = f.read(6)
    return magic[:2] == b"\x1f\x8b" or magic[:3] == b"BZh" or magic == b"\xfd7zXZ\x00"


class Tree:
    """The files of a dataset, by archive path, in extracted directories and plain tars.

    `roots` are directories that hold archive paths (`<root>/VOCdevkit/VOC2007/...`); `tars`
    are indexed on construction. Later sources do not override earlier ones.
    """

    def __init__(self, roots: Sequence[str] = (), tars: Sequence[str] = (), *, describe: str):
        self.roots = [os.fspath(r) for r in roots]
        self.tars = [os.fspath(t) for t in tars]
        self.describe = describe  # what is expected where, for error messages
        self._members: dict[str, Location] = {}
        for tar in self.tars:
            for member, location in index_tar(tar).items():
                self._members.setdefault(member, location)

    def find(self, path: str) -> Location | None:
        for root in self.roots:
            candidate = os.path.join(root, path)
            if os.path.isfile(candidate):
                return Location(candidate)
        return self._members.get(path)

    def get(self, path: str) -> Location:
        """The Location of `path`; MissingInputError saying where it was looked for."""
        location = self.find(path)
        if location is None:
            places = [f"in {t}" for t in self.tars] + [
                f"at {os.path.join(r, path)}" for r in self.roots
            ]
            raise MissingInputError(
                f"{path} not found ({'; '.join(places) or 'no archive or directory found'}). "
                f"{self.describe}"
            )
        return location

    def names(self, prefix: str) -> list[str]:
        """Sorted archive paths of the files under `prefix` (a directory path ending in /)."""
        found = {m for m in self._members if m.startswith(prefix)}
        for root in self.roots:
            top = os.path.join(root, prefix)
            for dirpath, _, files in os.walk(top):
                rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
                found.update(f if rel == "." else f"{rel}/{f}" for f in files)
        return sorted(found)
