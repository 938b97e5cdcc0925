"""grain input pipelines over `Source`s: host numpy batches, deterministic, resumable.

- `train_loader`: infinite (or `num_epochs`) shuffled batches of random crops + mirror,
  mean-subtracted. The order and the crops depend only on (seed, epoch, record index), not on
  `worker_count`; this host reads shard `shard_index` of `shard_count` (default: JAX process
  index / count). Iterate with `iter(loader)`; the iterator's `get_state()` (JSON bytes) and
  `set_state()` resume exactly, see `StatefulIterator`.
- `eval_loader`: one pass over a split in order, centre crops, the last batch padded; every
  batch has `mask` (True for real examples) and `index` (the record index, -1 for padding),
  so each example is seen exactly once over all hosts.
- `dataset_mean` / `get_mean`: the training-set mean, computed once and stored (preprocess).

Batches: `{'image': float32 [B, crop, crop, 3], 'label': int32 [B]}` for classification
sources; detection sources give `'label': int32 [B, C]` coded 1 / 0 / -1 (positive /
absent / difficult-only, see `records`).
"""

from __future__ import annotations

import concurrent.futures
import json
import math

import grain
import numpy as np
from absl import flags

from jaxcnn.data import preprocess


def _label(record: dict):
    if "label" in record:
        return np.int32(record["label"])
    return record["labels"].astype(np.int32)


class TrainTransform(grain.transforms.RandomMap):
    """record -> {'image': random crop + mirror minus mean, 'label'} (preprocess)."""

    def __init__(self, mean_SxSx3: np.ndarray, *, crop: int):
        self.mean, self.crop, self.resize = mean_SxSx3.astype(np.float32), crop, mean_SxSx3.shape[0]

    def random_map(self, record: dict, rng: np.random.Generator) -> dict:
        image = preprocess.resize_image(record["image"], self.resize)
        image = preprocess.random_crop(image, self.mean, crop=self.crop, rng=rng)
        return {"image": image, "label": _label(record)}


class EvalTransform(grain.transforms.Map):
    """record -> {'image': centre crop minus mean, 'label'} (preprocess)."""

    def __init__(self, mean_SxSx3: np.ndarray, *, crop: int):
        self.mean, self.crop, self.resize = mean_SxSx3.astype(np.float32), crop, mean_SxSx3.shape[0]

    def map(self, record: dict) -> dict:
        image = preprocess.resize_image(record["image"], self.resize)
        return {
            "image": preprocess.center_crop(image, self.mean, crop=self.crop),
            "label": _label(record),
        }


def _grain_ready() -> None:
    """grain reads its settings from absl flags; outside `app.run` (tests, notebooks) they are
    unparsed and grain raises, so mark them parsed (their defaults) if nobody has."""
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def _shard_options(shard_index, shard_count, drop_remainder):
    _grain_ready()
    if shard_index is None or shard_count is None:
        import jax  # only for the process index; batches stay on the host

        shard_index, shard_count = jax.process_index(), jax.process_count()
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index {shard_index} not in [0, {shard_count})")
    return grain.sharding.ShardOptions(shard_index, shard_count, drop_remainder=drop_remainder)


def train_loader(
    source,
    *,
    batch_size: int,
    mean_SxSx3: np.ndarray,
    crop: int,
    seed: int,
    worker_count: int = 0,
    read_threads: int = 1,
    num_epochs: int | None = None,
    shard_index: int | None = None,
    shard_count: int | None = None,
) -> grain.DataLoader:
    """Shuffled training batches of this host's shard (module doc). `batch_size` is per host;
    the resize size is the mean's size; worker_count=0 runs in-process. `read_threads`
    reader threads per process (1 was fastest on 2 cores; grain's default is 16)."""
    if batch_size <= 0 or len(source) < batch_size:
        raise ValueError(f"batch_size {batch_size} must be in [1, {len(source)}] for {source!r}")
    shard = _shard_options(shard_index, shard_count, drop_remainder=True)
    sampler = grain.samplers.IndexSampler(
        num_records=len(source), shard_options=shard, shuffle=True, num_epochs=num_epochs, seed=seed
    )
    return grain.DataLoader(
        data_source=source,
        sampler=sampler,
        operations=[
            TrainTransform(mean_SxSx3, crop=crop),
            grain.transforms.Batch(batch_size, drop_remainder=True),
        ],
        worker_count=worker_count,
        worker_buffer_size=2,
        read_options=grain.ReadOptions(num_threads=read_threads),
    )


class PaddedSource:
    """`source` extended to `length` records; extra ones repeat record 0 with mask False."""

    def __init__(self, source, length: int, transform=None):
        if length < len(source) or len(source) == 0:
            raise ValueError(f"cannot pad {len(source)} records to {length}")
        self.source, self.length, self.transform = source, length, transform

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        real = index < len(self.source)
        record = self.source[index if real else 0]
        out = dict(self.transform.map(record) if self.transform is not None else record)
        out["mask"], out["index"] = np.bool_(real), np.int64(index if real else -1)
        return out


def eval_loader(
    source,
    *,
    batch_size: int,
    transform=None,
    worker_count: int = 0,
    read_threads: int = 1,
    shard_index: int | None = None,
    shard_count: int | None = None,
) -> grain.DataLoader:
    """One ordered pass over `source` (module doc). `transform` is a grain Map (e.g.
    `EvalTransform`) or None for sources whose records are already arrays (GT boxes). The
    split is padded to a multiple of batch_size * shard_count, so all hosts get the same
    number of full batches."""
    shard = _shard_options(shard_index, shard_count, drop_remainder=False)
    per_pass = batch_size * shard.shard_count
    padded = PaddedSource(source, math.ceil(len(source) / per_pass) * per_pass, transform)
    sampler = grain.samplers.IndexSampler(
        num_records=len(padded), shard_options=shard, shuffle=False, num_epochs=1, seed=0
    )
    return grain.DataLoader(
        data_source=padded,
        sampler=sampler,
        operations=[grain.transforms.Batch(batch_size, drop_remainder=False)],
        worker_count=worker_count,
        read_options=grain.ReadOptions(num_threads=read_threads),
    )


class StatefulIterator:
    """An iterator over a grain DataLoader's batches (only the `keys` of each) whose position is a
    JSON-able dict: `get_state()` for a checkpoint, `set_state(state)` to resume exactly there."""

    def __init__(self, loader: grain.DataLoader, keys=("image", "label")):
        self._it, self._keys = iter(loader), keys

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        batch = next(self._it)
        return {k: batch[k] for k in self._keys}

    def get_state(self) -> dict:
        return json.loads(self._it.get_state().decode("utf-8"))

    def set_state(self, state: dict) -> None:
        self._it.set_state(json.dumps(state).encode("utf-8"))


def _pixel_sum(source, indices, resize):
    total = np.zeros((resize, resize, 3), np.float64)
    for i in indices:
        total += preprocess.resize_image(source[int(i)]["image"], resize)
    return total


def dataset_mean(source, *, resize: int, num_threads: int = 2, chunk: int = 1024):
    """Mean of all of `source`'s images at resize x resize (float64 sums) -> preprocess.Mean.

    A plain loop over the records in `num_threads` threads (PIL decodes without the GIL);
    the chunk sums are added in chunk order, so the result does not depend on num_threads.
    """
    chunks = [range(lo, min(lo + chunk, len(source))) for lo in range(0, len(source), chunk)]
    with concurrent.futures.ThreadPoolExecutor(max(1, num_threads)) as pool:
        sums = list(pool.map(lambda c: _pixel_sum(source, c, resize), chunks))
    return preprocess.mean_from_sum(np.sum(sums, axis=0), len(source))


def get_mean(source, *, resize: int, compute_if_missing: bool = True, num_threads: int = 2):
    """The stored mean of `source` at `resize` (computed and stored first if missing)."""
    path = preprocess.mean_path(source.dataset_dir, source.split, resize)
    if path.exists() or not compute_if_missing:
        return preprocess.load_mean(path)
    mean = dataset_mean(source, resize=resize, num_threads=num_threads)
    preprocess.save_mean(mean, path)
    return mean
