"""Selectivity analyses of a pre-trained / fine-tuned pair on ground-truth boxes (SPEC §6-§8):
entropy, AuE and MCAuE before and after fine-tuning (Fig. 1, Table 2.1, thesis Fig. 2-1),
grandmother cells and filter subsets on conv-5 sp-max (Figs. 3-5, Table 5), sparsity (Table 6).

  python experiments/selectivity.py --pre_run_dir=runs/.../pretrain-<key>/run \
      --ft_run_dir=runs/.../finetune-det-ft-<key>/run --dataset=toyworld/scenes \
      --out_dir=runs/selectivity

Writes selectivity.json, selectivity.md and the figures (PNG) to --out_dir.
"""

import json
import logging
import os

from absl import app, flags

from jaxcnn import reproduce, study
from jaxcnn.analysis import selectivity as sel
from jaxcnn.feature_sets import FeatureSet
from jaxcnn.probe_runs import class_names

FLAGS = flags.FLAGS
flags.DEFINE_string("pre_run_dir", None, "Pre-trained run (latest checkpoint).", required=True)
flags.DEFINE_string("ft_run_dir", None, "Fine-tuned run (latest checkpoint).", required=True)
flags.DEFINE_string("dataset", "toyworld/scenes", "Detection dataset with boxes.")
flags.DEFINE_string("data_dir", "", "TFDS data_dir ('': default).")
flags.DEFINE_string("train_split", "trainval", "Boxes for the filter-subset SVMs.")
flags.DEFINE_string("test_split", "test", "Boxes for every measure (the thesis: VOC07 test).")
flags.DEFINE_integer("max_train", 0, "Boxes of the first N training images (0: all).")
flags.DEFINE_integer("max_test", 0, "Boxes of the first N test images (0: all).")
flags.DEFINE_integer("crop", 64, "Network input size (227 for CaffeNet).")
flags.DEFINE_integer("resize", 72, "Resize before cropping (256 for CaffeNet).")
flags.DEFINE_string("protocol", "voc07_vissl", "Protocol choosing the subset SVMs' cost.")
flags.DEFINE_integer("batch_size", 128, "Extraction batch size.")
flags.DEFINE_string("out_dir", None, "Output folder.", required=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.getLogger("absl").setLevel(logging.ERROR)
    common = dict(
        view="gt_boxes",
        mean_split=FLAGS.train_split,
        data_dir=FLAGS.data_dir,
        crop=FLAGS.crop,
        resize=FLAGS.resize,
    )
    train_fs = FeatureSet(FLAGS.dataset, FLAGS.train_split, max_examples=FLAGS.max_train, **common)
    test_fs = FeatureSet(FLAGS.dataset, FLAGS.test_split, max_examples=FLAGS.max_test, **common)
    names = class_names(test_fs)
    sets = (train_fs, test_fs, "multilabel", len(names))
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    cache = study.FeatureCache(FLAGS.out_dir, batch_size=FLAGS.batch_size)
    res = reproduce.selectivity_study(
        cache, FLAGS.pre_run_dir, FLAGS.ft_run_dir, sets, FLAGS.protocol, FLAGS.out_dir
    )
    nets = res["nets"]
    md = "\n\n".join(
        [
            "Table 2.1: % decrease of MCAuE with fine-tuning",
            sel.table_2_1_markdown(res["table_2_1"]),
            "Table 5: filters needed for 50% / 90% of the full AP (conv-5 sp-max)",
            sel.table_5_markdown({n: nets[n]["filters_needed"] for n in ("pre", "ft")}, names),
            "Table 6: % non-zero per box (mean ± std)",
            sel.table_6_markdown({n: nets[n]["sparsity"] for n in ("pre", "ft")}),
        ]
    )
    for name, text in (("selectivity.json", json.dumps(res, indent=1)), ("selectivity.md", md)):
        path = os.path.join(FLAGS.out_dir, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    print(md)
    print("figures:", ", ".join(sorted(res["figures"].values())))


if __name__ == "__main__":
    app.run(main)
