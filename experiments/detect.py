"""R-CNN detection with any pre-trained network (paper §3.1, Tables 1, 2, 4, 8; thesis 2.3).

  python experiments/detect.py --flagfile=experiments/flags/detect_toy.flags

For the source network (a training run at --source_step) and each of --regimes -- none (the
network as it is), ft, fc-ft, scratch (window fine-tuning, classes + background) -- the script
caches pool5 of every window in float16, trains the per-class SVMs with hard-negative mining on
--layers (and conv5 with --conv5_ablations), detects on the test split (top 100 per class and
image, NMS 0.3) and writes per-class APs (JSON, CSV, Markdown), precision-recall curves, a
figure of top detections, and summary.json / summary.md to --out_dir. Every stage is cached.
"""

import logging

import config_flags
from absl import app, flags

from jaxcnn.detect import data as data_lib
from jaxcnn.detect import mining, run
from jaxcnn.detect import search as ss
from jaxcnn.features import ABLATIONS
from jaxcnn.model import TAP_NAMES

FLAGS = flags.FLAGS
flags.DEFINE_string("source_run", None, "Pre-training run directory.", required=True)
flags.DEFINE_integer("source_step", -1, "Its checkpoint step (-1: the latest).")
flags.DEFINE_list("regimes", list(run.REGIMES), "Networks: none, ft, fc-ft, scratch.")
flags.DEFINE_string("out_dir", None, "Output and cache folder.", required=True)
# Data and proposals.
flags.DEFINE_string("dataset", "toyworld/scenes", "Detection dataset (jaxcnn.data.sources).")
flags.DEFINE_string("data_dir", "", "TFDS data_dir ('': default).")
flags.DEFINE_string("train_split", "trainval", "Training split.")
flags.DEFINE_string("test_split", "test", "Test split.")
flags.DEFINE_integer("train_images", 0, "First N training images (0: all).")
flags.DEFINE_integer("test_images", 0, "First N test images (0: all).")
flags.DEFINE_integer("crop", 64, "Network input / warp size (227 for CaffeNet).")
flags.DEFINE_integer("resize", 72, "Size of the stored mean (256 for CaffeNet).")
flags.DEFINE_string("rcnn_proposals", "", "R-CNN .mat proposals, '{split}' in the name.")
flags.DEFINE_integer("ss_width", 0, "Selective search working width (R-CNN 500; 0: own).")
flags.DEFINE_integer("ss_max_boxes", 150, "Keep the first N proposals in rank order (0: all).")
flags.DEFINE_integer("proposal_workers", 2, "Selective-search processes.")
# Fine-tuning (R-CNN: lr 0.001 x0.1 every 20k, batch 128 = 32 fg + 96 bg).
flags.DEFINE_integer("ft_steps", 300, "Window fine-tuning iterations (ft, fc-ft).")
flags.DEFINE_integer("scratch_steps", 600, "Iterations from scratch.")
flags.DEFINE_integer("ft_batch", 128, "Windows per batch.")
flags.DEFINE_integer("ft_fg", 32, "Foreground windows per batch.")
flags.DEFINE_float("ft_lr", 0.001, "Fine-tuning base learning rate.")
flags.DEFINE_float("scratch_lr", 0.01, "Base learning rate from scratch.")
flags.DEFINE_integer("ft_lr_step", 20000, "Iterations between x0.1 steps.")
flags.DEFINE_float("head_lr_mult", 10.0, "lr multiplier of the new layer (bias: x2 more).")
# Detectors and evaluation.
flags.DEFINE_list("layers", ["conv5", "fc6", "fc7"], "Feature layers.")
flags.DEFINE_list("conv5_ablations", ["none"], "conv5: none, binarize, sp-max, sp-shuffle, ...")
flags.DEFINE_list("ablation_networks", ["ft"], "Networks whose conv5 gets the ablations.")
flags.DEFINE_float("svm_C", 0.001, "SVM C (R-CNN 0.001).")
flags.DEFINE_enum("ap_method", "voc07", ["voc07", "voc12"], "AP: 11-point or envelope.")
flags.DEFINE_integer("batch_size", 256, "Feature extraction batch.")
config_flags.require_items("regimes", run.REGIMES)
config_flags.require_items("layers", TAP_NAMES)
config_flags.require_items("conv5_ablations", ABLATIONS)
config_flags.require_items("ablation_networks", run.REGIMES)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.getLogger("absl").setLevel(logging.ERROR)
    data = data_lib.DataSpec(
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        train_split=FLAGS.train_split,
        test_split=FLAGS.test_split,
        train_images=FLAGS.train_images,
        test_images=FLAGS.test_images,
        resize=FLAGS.resize,
        crop=FLAGS.crop,
        rcnn_proposals=FLAGS.rcnn_proposals,
        proposal_workers=FLAGS.proposal_workers,
        search=ss.SearchConfig(im_width=FLAGS.ss_width, max_boxes=FLAGS.ss_max_boxes),
    )
    detectors = run.DetectorSpec(
        layers=tuple(FLAGS.layers),
        conv5_ablations=tuple(FLAGS.conv5_ablations),
        ablation_networks=tuple(FLAGS.ablation_networks),
        mining=mining.MiningConfig(C=FLAGS.svm_C),
        method=FLAGS.ap_method,
        batch_size=FLAGS.batch_size,
    )
    finetune = run.FinetuneSpec(
        steps=FLAGS.ft_steps,
        scratch_steps=FLAGS.scratch_steps,
        batch_size=FLAGS.ft_batch,
        fg_per_batch=FLAGS.ft_fg,
        base_lr=FLAGS.ft_lr,
        scratch_lr=FLAGS.scratch_lr,
        lr_step=FLAGS.ft_lr_step,
        head_lr_mult=FLAGS.head_lr_mult,
    )
    print(f"data {data}\ndetectors {detectors}\nfine-tuning {finetune}", flush=True)
    run.run_detection(
        data,
        detectors,
        finetune,
        FLAGS.out_dir,
        source_run=FLAGS.source_run,
        source_step=FLAGS.source_step,
        regimes=tuple(FLAGS.regimes),
        log=lambda line: print(line, flush=True),
    )
    print(open(f"{FLAGS.out_dir}/summary.md").read(), flush=True)


if __name__ == "__main__":
    app.run(main)
