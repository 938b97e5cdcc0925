"""Training batches cut from memory: a split small enough to hold is read once and every batch is
a numpy gather, not a pass of each record through grain (docs/methods.md §3.7).

On the embedded default the per-record path costs ~0.8 ms an image on one core (grain's
per-record work, the JPEG decode, a ground-truth box's warp): 100 ms a batch of 128 on the
source images, 220 ms on the GT boxes, beside a 180 ms training step on the same two cores. Here
each record is fetched once, in order, into a per-process store (`RecordStore`, shared by the
runs of one process that train on the same records: the study's four detection fine-tunings warp
each box once); after that a batch of random crops takes ~3 ms. A preparation may store a split
decoded in record order (`decoded_file`; toyworld does): the store is then loaded from it, after
a spot check against the dataset, instead of decoding every image (17 s for toyworld's 50,000).

`eval_batches` makes one ordered, padded pass as `jaxcnn.data.pipeline.eval_loader` does.
`MemoryBatches` has the contract of `jaxcnn.data.pipeline.StatefulIterator` (infinite batches
``{'image': float32 [B, crop, crop, 3], 'label': int32 [B]}``, ``get_state`` / ``set_state``
resuming exactly). Order and crops depend only on (seed, epoch, record index): epoch e draws, from
``default_rng([seed, e])``, a permutation of the records and each record's window offsets and
mirror bit; process p of P takes the permutation's positions p, p + P, ... and every process cuts
``N // (B * P)`` batches an epoch (the remainder is dropped, as grain's ``drop_remainder``).

Records are either uint8 images at the resize size, cropped at the drawn offset and mirrored with
the mean image's matching window subtracted (`jaxcnn.data.preprocess.crop_subtract`), or
already-final float32 arrays (warped ground-truth boxes, `jaxcnn.data.boxes.GtBoxSource`), only
mirrored.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import threading
import time
import zipfile
from collections.abc import Callable

import numpy as np

_STORES: collections.OrderedDict[str, RecordStore] = collections.OrderedDict()
_LOCK = threading.Lock()
log = logging.getLogger(__name__)


class RecordStore:
    """Records 0..N-1 of a source, fetched by `fetch(i) -> (array, label)` in index order when the
    store is made (array_record reads in order are twice as fast as in random order; threads do
    not help, the per-record work holds the GIL). Logs progress every 10 s."""

    def __init__(self, fetch, size: int, shape: tuple, dtype, *, name: str = "records"):
        self.data = np.zeros((size, *shape), dtype)
        self.labels = np.zeros((size,), np.int32)
        start = last = time.monotonic()
        for i in range(size):
            array, self.labels[i] = fetch(i)
            if array.shape != self.data.shape[1:]:
                raise ValueError(f"{name} {i} has shape {array.shape}, expected {shape}")
            self.data[i] = array
            if time.monotonic() - last > 10:
                last, rate = time.monotonic(), (i + 1) / (time.monotonic() - start)
                log.info(
                    "reading %s into memory: %d of %d, %.0f/s, ETA %.0f s",
                    name, i + 1, size, rate, (size - i - 1) / rate,
                )  # fmt: skip
        log.info("read %s into memory in %.1f s", name, time.monotonic() - start)

    @classmethod
    def from_arrays(cls, data: np.ndarray, labels: np.ndarray) -> RecordStore:
        """A store holding `data` [N, ...] and `labels` [N] as they are."""
        out = cls.__new__(cls)
        out.data, out.labels = data, np.asarray(labels, np.int32)
        return out

    @property
    def size(self) -> int:
        return len(self.labels)

    @property
    def nbytes(self) -> int:
        return self.data.nbytes


def store(key: str, make: Callable[[], RecordStore], *, budget_bytes: int) -> RecordStore:
    """The process's store for `key` (``make()`` on first call); the least recently used stores
    are dropped while all of them together exceed `budget_bytes`."""
    with _LOCK:
        found = _STORES.pop(key, None)
        if found is None:
            found = make()
        _STORES[key] = found
        while len(_STORES) > 1 and sum(s.nbytes for s in _STORES.values()) > budget_bytes:
            _STORES.popitem(last=False)
        return found


def decoded_file(dataset_dir, split: str, count: int, size: int) -> str:
    """Where a preparation stores split `split`'s `count` images decoded at `size` px, in record
    order (toyworld does, from the images its workers decode anyway)."""
    return os.path.join(os.fspath(dataset_dir), f"jaxcnn-decoded-{split}-{count}x{size}.npz")


def save_decoded(path: str, images_NxSxSx3: np.ndarray, labels_N: np.ndarray) -> None:
    """Write a `decoded_file` atomically (a temporary file renamed)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        np.savez(f, images=images_NxSxSx3, labels=labels_N)
    os.replace(tmp, path)


def load_decoded(path: str, fetch, *, checks: int = 8) -> RecordStore | None:
    """The `RecordStore` of a `decoded_file`, or None (with a warning naming it) when the file
    is unreadable or `checks` records spread over it differ from `fetch(i)` (a file that does not
    match its dataset): the caller then decodes the records instead."""
    try:
        with np.load(path) as z:
            images, labels = z["images"], z["labels"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        log.warning("%s is unreadable (%s): not used", path, e)
        return None
    for i in np.linspace(0, len(labels) - 1, min(checks, len(labels))).astype(int):
        array, label = fetch(int(i))
        if not (np.array_equal(array, images[i]) and label == labels[i]):
            log.warning("%s does not match its dataset at record %d: not used", path, i)
            return None
    return RecordStore.from_arrays(images, labels)


def clear() -> None:
    """Forget every store of this process (tests)."""
    with _LOCK:
        _STORES.clear()


def source_key(source, *parts) -> str:
    """A key naming `source`'s records (its class, repr, directory, record indices and class
    subset) and `parts` (what the fetch does to them)."""
    digest = hashlib.sha256()
    inner = getattr(source, "source", source)  # GtBoxSource wraps a Source
    named = (type(source).__name__, repr(source), getattr(inner, "dataset_dir", ""))
    for value in (*named, getattr(source, "classes", None), *parts):
        digest.update(repr(value).encode())
    for array in (getattr(inner, "indices", None), getattr(source, "index", None)):
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def eval_batches(
    records: RecordStore,
    *,
    batch_size: int,
    mean_SxSx3: np.ndarray | None = None,
    crop: int | None = None,
    shard_index: int = 0,
    shard_count: int = 1,
):
    """One ordered pass over `records` as `jaxcnn.data.pipeline.eval_loader` makes it: centre
    crops minus the mean's centre window (`preprocess.center_crop`; final arrays as they are),
    ``mask`` True for real rows, ``index`` the record index (-1 for padding). The records are
    padded to a multiple of ``batch_size * shard_count``; process p takes positions p, p + P, ...,
    so every process gets the same number of full batches and each record is seen once."""
    n, per = records.size, batch_size * shard_count
    positions = np.arange(shard_index, -(-n // per) * per, shard_count)
    if crop is not None:
        off = (records.data.shape[1] - crop) // 2
        mean = np.asarray(mean_SxSx3, np.float32)[off : off + crop, off : off + crop]
    for lo in range(0, len(positions), batch_size):
        index = positions[lo : lo + batch_size]
        real = index < n
        safe = np.where(real, index, 0)
        data = records.data[safe]
        if crop is None:
            image = data.astype(np.float32)
        else:
            image = data[:, off : off + crop, off : off + crop].astype(np.float32) - mean
        yield {
            "image": image,
            "label": records.labels[safe],
            "mask": real,
            "index": np.where(real, index, -1).astype(np.int64),
        }


class MemoryBatches:
    """Infinite shuffled training batches from a `RecordStore` (module doc).

    `mean_SxSx3` and `crop` given: records are uint8 [S, S, 3] images, cropped and mean-subtracted;
    both None: records are float32 examples, only mirrored."""

    def __init__(
        self,
        records: RecordStore,
        *,
        batch_size: int,
        seed: int,
        mean_SxSx3: np.ndarray | None = None,
        crop: int | None = None,
        shard_index: int = 0,
        shard_count: int = 1,
    ):
        if (mean_SxSx3 is None) != (crop is None):
            raise ValueError("give both mean_SxSx3 and crop (images) or neither (final examples)")
        if not 0 <= shard_index < shard_count:
            raise ValueError(f"shard_index {shard_index} not in [0, {shard_count})")
        self.records, self.batch_size, self.seed = records, batch_size, seed
        self.shard_index, self.shard_count = shard_index, shard_count
        self.batches_per_epoch = records.size // (batch_size * shard_count)
        if self.batches_per_epoch < 1:
            raise ValueError(
                f"{records.size} records give no batch of {batch_size} per process "
                f"over {shard_count} process(es)"
            )
        self.crop = crop
        if crop is not None:
            size = records.data.shape[1]
            if not 0 < crop <= size or mean_SxSx3.shape != records.data.shape[1:]:
                raise ValueError(
                    f"crop {crop} / mean {mean_SxSx3.shape} do not fit images {records.data.shape}"
                )
            self.mean = np.asarray(mean_SxSx3, np.float32)
        self.epoch, self.batch = 0, 0
        self._draws = None

    def _epoch_draws(self):
        if self._draws is None or self._draws[0] != self.epoch:
            n = self.records.size
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(n)[self.shard_index :: self.shard_count]
            span = 1 if self.crop is None else self.records.data.shape[1] - self.crop + 1
            offsets = rng.integers(0, span, size=(n, 2))
            mirror = rng.integers(0, 2, size=n).astype(bool)
            self._draws = (self.epoch, order, offsets, mirror)
        return self._draws[1:]

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        order, offsets, mirror = self._epoch_draws()
        lo = self.batch * self.batch_size
        idx = order[lo : lo + self.batch_size]
        data, labels = self.records.data[idx], self.records.labels[idx]
        flip = mirror[idx]
        if self.crop is None:
            image = np.where(flip[:, None, None, None], data[:, :, ::-1], data).astype(np.float32)
        else:
            image = self._crop(data, offsets[idx], flip)
        self.batch += 1
        if self.batch == self.batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
        return {"image": image, "label": labels}

    def _crop(self, images_BxSxSx3, offsets_Bx2, flip_B):
        """Window (y, x) of each image, mirrored where flip, minus the mean's same window:
        `preprocess.crop_subtract` per example (basic slices: a 4-D gather is 10x slower)."""
        c = self.crop
        out = np.empty((len(flip_B), c, c, 3), np.float32)
        for b, ((y, x), flip) in enumerate(zip(offsets_Bx2, flip_B, strict=True)):
            window = images_BxSxSx3[b, y : y + c, x : x + c] - self.mean[y : y + c, x : x + c]
            out[b] = window[:, ::-1] if flip else window
        return out

    def get_state(self) -> dict:
        return {
            "memory": {
                "epoch": self.epoch,
                "batch": self.batch,
                "seed": self.seed,
                "shard": [self.shard_index, self.shard_count],
            }
        }

    def set_state(self, state: dict) -> None:
        if "memory" not in state:
            raise ValueError(
                "this checkpoint's data state is from the streaming (grain) pipeline, but the "
                "split now fits in memory: resume with the same --memory_mib as the run had "
                "(0 streams)"
            )
        memory = state["memory"]
        if memory["seed"] != self.seed:
            raise ValueError(f"checkpoint data seed {memory['seed']} != this run's {self.seed}")
        if list(memory["shard"]) != [self.shard_index, self.shard_count]:
            raise ValueError(
                f"checkpoint data state is of process {memory['shard'][0]} of "
                f"{memory['shard'][1]}, this is {self.shard_index} of {self.shard_count}"
            )
        self.epoch, self.batch, self._draws = int(memory["epoch"]), int(memory["batch"]), None
