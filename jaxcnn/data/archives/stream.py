"""Gzipped tars (SUN397.tar.gz): processed in one ordered pass into a resumable spill.

A compressed tar cannot be read at random, and TFDS's order (by key hash) scatters each output
shard over the whole archive. So the archive is read once, in order; the wanted members are
processed in worker processes (`process(bytes) -> (bytes, notes)`, e.g. shrink to 120,000
pixels) and their results appended to spill files of `chunk_size` records, each marked done by
a JSON file when complete. The writer then builds the shards from the spill (random access),
and deletes it. An interrupted pass resumes by reading the archive again and skipping the
members of finished chunks (decompression only). The spill holds the processed images, so it
needs roughly the final dataset's size on disk, not the archive's.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import multiprocessing
import os
import tarfile
import time
import zlib
from collections.abc import Callable

from array_record.python import array_record_module

from jaxcnn.data.archives import images, inputs, summary


@dataclasses.dataclass
class Spill:
    locations: dict  # member name -> Location of its processed bytes
    notes: collections.Counter
    skipped: dict  # reason -> [member names]
    kept: dict  # small members kept whole: name -> bytes
    skipped_names: list  # the members in `skipped`


def _process(process: Callable, batch: list) -> list:
    out = []
    for name, data in batch:
        try:
            out.append((name, *process(data)))
        except images.UndecodableImage as e:
            out.append((name, None, [str(e)]))
    return out


def _members(path: str, keep: set, kept: dict, position: list):
    """(name, bytes) of the regular members; `kept` collects the `keep` ones whole."""
    try:
        with open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
            for info in tar:
                position[0] = raw.tell()
                if not info.isfile():
                    continue
                data = tar.extractfile(info).read()
                if len(data) != info.size:
                    raise inputs.ArchiveError(f"{path} is truncated in member {info.name}")
                if info.name in keep:
                    kept[info.name] = data
                yield info.name, data
    except (tarfile.TarError, EOFError, zlib.error) as e:
        error = f"{type(e).__name__}: {e}"
        raise inputs.ArchiveError(f"{path} is truncated or corrupt ({error})") from e


class _Chunks:
    """Spill chunk k holds wanted members [k C, (k + 1) C) in archive order."""

    def __init__(self, directory: str, chunk_size: int):
        self.directory, self.size = directory, chunk_size
        os.makedirs(directory, exist_ok=True)
        self._writer, self._k, self._entries = None, -1, []

    def path(self, k: int, ext: str) -> str:
        return os.path.join(self.directory, f"chunk-{k:05d}.{ext}")

    def done(self, k: int) -> bool:
        return os.path.exists(self.path(k, "json"))

    def add(self, n: int, name: str, data: bytes | None, notes: list) -> None:
        k = n // self.size
        if k != self._k:
            self.close()
            self._k, self._entries = k, []
            self._writer = array_record_module.ArrayRecordWriter(
                self.path(k, "array_record"), "group_size:1"
            )
        if data is not None:
            self._writer.write(data)
        self._entries.append([name, data is not None, notes])

    def close(self) -> None:
        """Closes the open chunk and marks it done (it is complete: every member is in)."""
        if self._writer is None:
            return
        self._writer.close()
        tmp = self.path(self._k, "json.tmp")
        with open(tmp, "w") as f:
            json.dump(self._entries, f)
        os.replace(tmp, self.path(self._k, "json"))
        self._writer = None

    def collect(self) -> Spill:
        spill = Spill({}, collections.Counter(), collections.defaultdict(list), {}, [])
        k = 0
        while self.done(k):
            with open(self.path(k, "json")) as f:
                entries = json.load(f)
            index = 0
            for name, stored, notes in entries:
                if stored:
                    record = inputs.Location(self.path(k, "array_record"), index, -2)
                    spill.locations[name] = record
                    spill.notes.update(notes)
                    index += 1
                else:
                    spill.skipped["undecodable image"].append(f"{name} ({notes[0]})")
                    spill.skipped_names.append(name)
            k += 1
        return spill


def spill(
    path: str,
    *,
    wanted: Callable[[str], bool],
    process: Callable,
    directory: str,
    keep: set = frozenset(),
    num_workers: int = 1,
    chunk_size: int = 1024,
    progress=None,
) -> Spill:
    """One ordered pass over the (gzipped) tar at `path` (module doc); returns where each
    wanted member's processed bytes are. `process` must be a module-level function."""
    chunks, kept, position = _Chunks(directory, chunk_size), {}, [0]
    total_bytes, start, processed = os.path.getsize(path), time.time(), 0

    def todo():
        n = 0
        for name, data in _members(path, set(keep), kept, position):
            if wanted(name):
                if not chunks.done(n // chunk_size):
                    yield n, name, data
                n += 1

    def report(seen: int, count: int):
        nonlocal processed
        processed += count
        if progress is not None:
            elapsed = max(time.time() - start, 1e-9)
            byte_rate = max(position[0] - start_position, 1) / elapsed
            total = int(seen * total_bytes / max(position[0], 1))
            eta = (total_bytes - position[0]) / byte_rate
            progress(summary.Progress(seen, max(total, seen), processed / elapsed, eta))

    start_position = 0
    for batch in _run(todo(), process, num_workers):
        for n, name, data, notes in batch:
            chunks.add(n, name, data, notes)
        report(batch[-1][0] + 1, len(batch))
    chunks.close()
    out = chunks.collect()
    out.kept.update(kept)
    return out


def _batches(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _run(items, process, num_workers: int, batch_size: int = 16):
    """Processed batches in order; at most 2 batches per worker in flight (bounded memory)."""
    if num_workers <= 1:
        for batch in _batches(items, batch_size):
            yield _with_index(batch, _process(process, [(m, d) for _, m, d in batch]))
        return
    with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
        pending = collections.deque()
        for batch in _batches(items, batch_size):
            job = pool.apply_async(_process, (process, [(m, d) for _, m, d in batch]))
            pending.append((batch, job))
            if len(pending) >= 2 * num_workers:
                done_batch, done_job = pending.popleft()
                yield _with_index(done_batch, done_job.get())
        while pending:
            done_batch, done_job = pending.popleft()
            yield _with_index(done_batch, done_job.get())


def _with_index(batch, results):
    pairs = zip(batch, results, strict=True)
    return [(n, name, data, notes) for (n, _, _), (name, data, notes) in pairs]
