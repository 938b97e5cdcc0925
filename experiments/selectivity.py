"""Selectivity analyses of a pre-trained / fine-tuned pair on ground-truth boxes
(docs/methods.md §6-§8): entropy, AuE and MCAuE before and after fine-tuning (Fig. 1, Table 2.1,
thesis Fig. 2-1), grandmother cells and filter subsets on conv-5 sp-max (Figs. 3-5, Table 5),
sparsity (Table 6).

  python experiments/selectivity.py --pre_run_dir=runs/.../pretrain-<key>/run \
      --ft_run_dir=runs/.../finetune-det-ft-<key>/run --dataset=toyworld/scenes \
      --out_dir=runs/selectivity

Writes selectivity.json, selectivity.md and the figures (PNG) to --out_dir. The settings' flags
are generated from `jaxcnn.features.SetPair` (view: GT boxes) and `jaxcnn.probe.ProbeSpec`
(the protocol choosing the subset SVMs' cost).
"""

import json
import logging
import os

import config_flags
import errors
from absl import app, flags

from jaxcnn import features, probe, storage
from jaxcnn.selectivity import analysis as sel
from jaxcnn.selectivity import compare_pair

FLAGS = flags.FLAGS
flags.DEFINE_string("pre_run_dir", None, "Pre-trained run (latest checkpoint).", required=True)
flags.DEFINE_string("ft_run_dir", None, "Fine-tuned run (latest checkpoint).", required=True)
flags.DEFINE_string("out_dir", None, "Output folder.", required=True)
config_flags.define(features.SetPair, skip=("view",))
config_flags.define(probe.ProbeSpec, skip=("layers", "ablations", "task"))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.getLogger("absl").setLevel(logging.ERROR)
    pair = config_flags.build(features.SetPair, view="gt_boxes")
    protocol = FLAGS.protocol
    train_fs, test_fs = pair.sets()
    names = features.class_names(test_fs)
    sets = (train_fs, test_fs, "multilabel", len(names))
    for run_dir in (FLAGS.pre_run_dir, FLAGS.ft_run_dir):  # before any work
        features.check_input(run_dir, None, train_fs)
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    cache = features.FeatureCache(FLAGS.out_dir, batch_size=pair.batch_size)
    res = compare_pair(cache, FLAGS.pre_run_dir, FLAGS.ft_run_dir, sets, protocol, FLAGS.out_dir)
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
    storage.write_text(os.path.join(FLAGS.out_dir, "selectivity.json"), json.dumps(res, indent=1))
    storage.write_text(os.path.join(FLAGS.out_dir, "selectivity.md"), md)
    print(md)
    print("figures:", ", ".join(sorted(res["figures"].values())))


if __name__ == "__main__":
    errors.run(main)
