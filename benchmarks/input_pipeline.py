"""Training input pipeline throughput: jaxcnn's grain loader against torch's DataLoader.

Both read the same `Source` (records decoded by PIL from the array_record bytes) and apply
the same transform (resize, random crop + mirror, mean subtraction; `pipeline.TrainTransform`),
batch it and hand numpy batches to the caller, with the same number of worker processes.
Rounds alternate grain / torch so that noise from other processes hits both; medians of
the rounds are printed in images/s, with the ratio (grain over torch).

Data: toyworld/source train (72 px stored, 64 crops; prepare it first) and/or
tfds.testing.mock_data imagenet2012 (random small images, resized to 256, 227 crops).

    pip install -e '.[bench]'
    python experiments/prepare_data.py --flagfile=experiments/flags/toyworld.flags
    python benchmarks/input_pipeline.py --workers=0,2
"""

import contextlib
import statistics
import time

import numpy as np
import tensorflow_datasets as tfds
from absl import app, flags

from jaxcnn.data import pipeline, sources

FLAGS = flags.FLAGS
flags.DEFINE_list("data", ["toyworld", "mock"], "toyworld and/or mock (imagenet2012 mock).")
flags.DEFINE_list("workers", ["0", "2"], "Worker process counts to time.")
flags.DEFINE_integer("batch", 128, "Images per batch.")
flags.DEFINE_integer("batches", 20, "Batches timed per round (after one warm-up batch).")
flags.DEFINE_integer("rounds", 3, "Alternating grain/torch rounds; medians are reported.")
flags.DEFINE_string("data_dir", None, "TFDS data_dir holding toyworld.")


class _TorchDataset:
    """The same source and transform as a torch map-style dataset (per-index seeded rng)."""

    def __init__(self, source, transform, seed):
        self.source, self.transform, self.seed = source, transform, seed

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, i])
        return self.transform.random_map(self.source[i], rng)


def _torch_loader(source, mean, crop, workers):
    import torch

    dataset = _TorchDataset(source, pipeline.TrainTransform(mean, crop=crop), seed=0)
    collate = lambda items: {k: np.stack([x[k] for x in items]) for k in items[0]}  # numpy out
    return torch.utils.data.DataLoader(
        dataset, batch_size=FLAGS.batch, shuffle=True, num_workers=workers, collate_fn=collate,
        drop_last=True, persistent_workers=workers > 0, prefetch_factor=2 if workers else None,
    )  # fmt: skip


def _grain_loader(source, mean, crop, workers):
    return pipeline.train_loader(
        source, batch_size=FLAGS.batch, mean_SxSx3=mean, crop=crop, seed=0,
        worker_count=workers, shard_index=0, shard_count=1,
    )  # fmt: skip


def _rate(iterator) -> float:
    next(iterator)  # warm-up: workers started, first batch out
    start = time.perf_counter()
    for _ in range(FLAGS.batches):
        batch = next(iterator)
    assert batch["image"].shape[0] == FLAGS.batch
    return FLAGS.batches * FLAGS.batch / (time.perf_counter() - start)


def _bench(name, source, mean, crop):
    for workers in map(int, FLAGS.workers):
        # iterators are created once per side and reused, so worker start-up is not timed
        grain_it = iter(_grain_loader(source, mean, crop, workers))
        torch_it = iter(_torch_loader(source, mean, crop, workers))
        rates = {"grain": [], "torch": []}
        for _ in range(FLAGS.rounds):
            rates["grain"].append(_rate(grain_it))
            rates["torch"].append(_rate(torch_it))
        g, t = statistics.median(rates["grain"]), statistics.median(rates["torch"])
        print(
            f"{name:10s} crop {crop:3d} workers {workers}: grain {g:7.0f} img/s  "
            f"torch {t:7.0f} img/s  ratio {g / t:.2f}"
        )
        del grain_it, torch_it


def main(argv):
    del argv
    if "toyworld" in FLAGS.data:
        source = sources.open_split("toyworld/source", "train", data_dir=FLAGS.data_dir)
        mean = pipeline.get_mean(source, resize=72).array()
        _bench("toyworld", source, mean, 64)
    if "mock" in FLAGS.data:
        n = FLAGS.batch * (FLAGS.batches + 1) * FLAGS.rounds * 2
        mock = tfds.testing.mock_data(num_examples=n, policy=tfds.testing.MockPolicy.USE_CODE)
        with contextlib.ExitStack() as stack:
            stack.enter_context(mock)
            source = sources.open_split("imagenet2012", "train", decode="tfds")
            mean = np.full((256, 256, 3), 120.0, np.float32)
            # the mock patches live in this process only: workers would see the real TFDS
            saved = FLAGS.workers
            FLAGS.workers = ["0"]
            _bench("mock-inet", source, mean, 227)
            FLAGS.workers = saved


if __name__ == "__main__":
    app.run(main)
