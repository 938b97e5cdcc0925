"""Prepares a dataset on disk (toyworld or a real TFDS dataset) and its training-set mean.

  python experiments/prepare_data.py --flagfile=experiments/flags/toyworld.flags

Prints where each dataset went and how big it is. With --grid_dir it also writes an example
grid PNG per dataset (docs/toyworld/*.png are made this way).
"""

import logging
import os
import time

import errors
from absl import flags
from PIL import Image

from jaxcnn.data import grids, pipeline, prepare, sources

FLAGS = flags.FLAGS
flags.DEFINE_enum(
    "dataset", "toyworld", ["toyworld", "imagenet2012", "voc2007", "voc2012", "sun397"], "What."
)
flags.DEFINE_enum("size", "default", ["default", "tiny"], "toyworld size.")
flags.DEFINE_integer("seed", 0, "toyworld generation seed.")
flags.DEFINE_string(
    "data_dir", None, "TFDS data_dir (default $TFDS_DATA_DIR or ~/tensorflow_datasets)."
)
flags.DEFINE_string("manual_dir", None, "Directory with manually downloaded files (imagenet2012).")
flags.DEFINE_integer("num_workers", None, "Worker processes (default: all cores).")
flags.DEFINE_integer("resize", 72, "Size the training-set mean is computed at (256 for real data).")
flags.DEFINE_string("grid_dir", None, "If set, write <grid_dir>/<part>.png example grids.")


def _grid(name: str, split: str, path: str) -> None:
    source = sources.open_split(name, split, data_dir=FLAGS.data_dir)
    pixels = grids.example_grid(source, rows=6, cols=10, size=72, scale=2)
    tmp = path + ".tmp.png"
    Image.fromarray(pixels).save(tmp)
    os.replace(tmp, path)
    logging.info("wrote %s", path)
    print(f"grid {path}")


def main(argv):
    del argv
    start = time.time()
    if FLAGS.dataset == "toyworld":
        dirs = prepare.prepare_toyworld(
            size=FLAGS.size, seed=FLAGS.seed, data_dir=FLAGS.data_dir, num_workers=FLAGS.num_workers
        )
    else:
        paths = prepare.prepare_tfds(
            FLAGS.dataset, data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir
        )
        dirs = {FLAGS.dataset: paths[0]}
    for name in dirs:
        for dataset, split in prepare.training_splits(name):
            source = sources.open_split(dataset, split, data_dir=FLAGS.data_dir)
            mean = pipeline.get_mean(source, resize=FLAGS.resize)
            print(f"mean {dataset}/{split} @{FLAGS.resize}: RGB {mean.channel.round(2).tolist()}")
    total = 0
    for name, path in dirs.items():
        size = prepare.directory_size(path)
        total += size
        print(f"{name}: {path} ({size / 2**20:.1f} MiB)")
    print(f"total {total / 2**20:.1f} MiB in {time.time() - start:.1f} s")
    if FLAGS.grid_dir and FLAGS.dataset == "toyworld":
        os.makedirs(FLAGS.grid_dir, exist_ok=True)
        for name in dirs:
            split = "train"
            part = name.split("/")[1].split("_")[0]
            _grid(name, split, os.path.join(FLAGS.grid_dir, f"{part}.png"))


if __name__ == "__main__":
    errors.run(main)
