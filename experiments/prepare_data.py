"""Prepares a dataset on disk (toyworld, or a real one from its archives) and its training mean.

  python experiments/prepare_data.py --flagfile=experiments/flags/toyworld.flags
  python experiments/prepare_data.py --dataset=voc2007 --manual_dir=/data/voc
  python experiments/prepare_data.py --dataset=imagenet2012 --manual_dir=/data/ilsvrc --resize=256

Real datasets are read from the original archives (or their extracted trees) in --manual_dir,
without TensorFlow or a download (jaxcnn.data.archives): VOCtrainval_06-Nov-2007.tar and
VOCtest_06-Nov-2007.tar (voc2007), VOCtrainval_11-May-2012.tar (voc2012), SUN397.tar.gz
(sun397), ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar and validation labels (imagenet2012;
see jaxcnn/data/archives/imagenet_labels.py for the accepted label files). Prints a progress
line, the summary of each preparation, the training-set mean, where each dataset went and how
big it is. With --grid_dir it also writes an example grid PNG per toyworld part
(docs/toyworld/*.png are made this way). An interrupted run resumes when started again.
"""

import logging
import os
import sys
import time

import config_flags
import errors
from absl import flags
from PIL import Image

from jaxcnn.data import grids, pipeline, prepare, sources

FLAGS = flags.FLAGS
config_flags.define(prepare.PrepareConfig)
flags.DEFINE_string(
    "data_dir", None, "TFDS data_dir (default $TFDS_DATA_DIR or ~/tensorflow_datasets)."
)
flags.DEFINE_string(
    "manual_dir", None, "Directory with the original archives or extracted trees (real data)."
)
flags.DEFINE_string("grid_dir", None, "If set, write <grid_dir>/<part>.png example grids.")


def _grid(name: str, split: str, path: str) -> None:
    source = sources.open_split(name, split, data_dir=FLAGS.data_dir)
    pixels = grids.example_grid(source, rows=6, cols=10, size=72, scale=2)
    tmp = path + ".tmp.png"
    Image.fromarray(pixels).save(tmp)
    os.replace(tmp, path)
    logging.info("wrote %s", path)
    print(f"grid {path}")


def _progress(p) -> None:
    """One overwritten line: images done, rate, time left."""
    eta = time.strftime("%H:%M:%S", time.gmtime(p.eta_seconds))
    sys.stdout.write(
        f"\r{p.done}/{p.total} images ({100 * p.done / max(p.total, 1):.1f} %), "
        f"{p.per_second:.1f} images/s, ETA {eta}   "
    )
    sys.stdout.flush()


def _prepare_real(cfg: prepare.PrepareConfig, num_workers: int) -> dict:
    summaries = prepare.prepare_real(
        cfg.dataset, manual_dir=FLAGS.manual_dir, data_dir=FLAGS.data_dir,
        resize=cfg.resize or None, num_workers=num_workers, progress=_progress,
    )  # fmt: skip
    print()
    for summary in summaries:
        print("\n".join(summary.lines()))
    return {summary.dataset: summary.directory for summary in summaries}


def main(argv):
    del argv
    start = time.time()
    cfg = config_flags.build(prepare.PrepareConfig)
    num_workers = cfg.num_workers or os.cpu_count()
    logging.info("flags: %s", FLAGS.flags_into_string())
    if cfg.dataset == "toyworld":
        dirs = prepare.prepare_toyworld(
            size=cfg.size, seed=cfg.seed, data_dir=FLAGS.data_dir, num_workers=num_workers
        )
    else:
        dirs = _prepare_real(cfg, num_workers)
    mean_size = cfg.mean_size or (72 if cfg.dataset == "toyworld" else 256)
    for name in dirs if cfg.dataset == "toyworld" else [cfg.dataset]:
        for dataset, split in prepare.training_splits(name):
            source = sources.open_split(dataset, split, data_dir=FLAGS.data_dir)
            mean = pipeline.get_mean(source, resize=mean_size)
            print(f"mean {dataset}/{split} @{mean_size}: RGB {mean.channel.round(2).tolist()}")
    total = 0
    for name, path in dirs.items():
        size = prepare.directory_size(path)
        total += size
        print(f"{name}: {path} ({size / 2**20:.1f} MiB)")
    print(f"total {total / 2**20:.1f} MiB in {time.time() - start:.1f} s")
    if FLAGS.grid_dir and cfg.dataset == "toyworld":
        os.makedirs(FLAGS.grid_dir, exist_ok=True)
        for name in dirs:
            split = "train"
            part = name.split("/")[1].split("_")[0]
            _grid(name, split, os.path.join(FLAGS.grid_dir, f"{part}.png"))


if __name__ == "__main__":
    errors.run(main)
