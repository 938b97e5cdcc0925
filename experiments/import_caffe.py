"""Import a Caffe .caffemodel as a one-step checkpoint that analyses read like any snapshot.

  python experiments/import_caffe.py --caffemodel=bvlc_reference_caffenet.caffemodel \
      --workdir=runs/caffenet_bvlc [--mean=imagenet_mean.binaryproto]

Writes <workdir>/checkpoints/<step>/ (params + metadata naming the network), readable with
`jaxcnn.storage.restore_params(workdir)` and `jaxcnn.model.module_from_run(workdir)`, and
usable as --init_from of experiments/finetune.py. The imported network expects inputs in the
Caffe model's channel order: BGR for the BVLC models, minus their mean (--mean writes it to
<workdir>/mean_bgr.npy as an H x W x 3 array in the file's channel order).
"""

import os

import errors
from absl import app, flags, logging

from jaxcnn import model, storage

FLAGS = flags.FLAGS
flags.DEFINE_string("caffemodel", None, "Binary .caffemodel file.", required=True)
flags.DEFINE_string("workdir", None, "Directory to write the checkpoint to.", required=True)
flags.DEFINE_enum("preset", "caffenet", sorted(model.PRESETS), "Network geometry.")
flags.DEFINE_integer("num_classes", 0, "Expected fc8 outputs (0: whatever the file has).")
flags.DEFINE_integer("step", 0, "Step number to record the weights under (e.g. 310000).")
flags.DEFINE_string("mean", "", "Optional Caffe mean .binaryproto to store next to the weights.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    # A Caffe model computes on unscaled inputs with Caffe's fillers: the small preset's
    # default (MSRA stds with input scale 1/64) does not describe it.
    overrides = {"init": "caffe"} if FLAGS.preset == "small" else {}
    params = storage.load_caffemodel(
        FLAGS.caffemodel,
        preset=FLAGS.preset,
        num_classes=FLAGS.num_classes or None,
        **overrides,
    )
    num_classes = params["fc8"]["kernel"].shape[1]
    description = {
        "preset": FLAGS.preset,
        "num_classes": num_classes,
        "overrides": overrides,
        "compute_dtype": "float32",
    }
    model.module_from_meta(description)  # fails early if the description is inconsistent
    meta = {
        "model": description,
        "step": FLAGS.step,
        "channel_order": "BGR (as the Caffe model)",
        "source": os.path.abspath(FLAGS.caffemodel),
    }
    where = storage.save_params(FLAGS.workdir, params, meta=meta, step=FLAGS.step)
    logging.info("%d parameters", model.count_params(params))
    if FLAGS.mean:
        mean = storage.load_caffe_mean(FLAGS.mean)
        path = os.path.join(FLAGS.workdir, "mean_bgr.npy")
        storage.save_npy(path, mean)
        print(f"mean {mean.shape} -> {path}")
    print(
        f"imported {FLAGS.caffemodel}: {FLAGS.preset}, {num_classes} classes, "
        f"{model.count_params(params):,} parameters -> {where} (step {FLAGS.step})"
    )


if __name__ == "__main__":
    errors.run(main)
