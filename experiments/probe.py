"""Linear probes of any training run (SPEC §4-§5): layer x ablation (Table 7 / thesis 5.1) and
layer x snapshot (Table 3), on whole images or on ground-truth boxes (thesis Table 2.4).

  python experiments/probe.py --run_dir=runs/study_toy/pretrain-<key>/run \
      --dataset=toyworld/scenes --out_dir=runs/probe_scenes

Features are extracted once per (checkpoint, split) into --out_dir/features (resumable); the
tables go to --out_dir as probes.json, probes.csv and probes.md, the plots as PNG.
"""

import json
import logging
import os

from absl import app, flags

from jaxcnn import checkpoints, probe_runs, study
from jaxcnn.analysis import plots
from jaxcnn.feature_sets import FeatureSet

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "Training run (its checkpoints/ folder).", required=True)
flags.DEFINE_list("steps", [], "Checkpoint steps to probe (default: the latest only).")
flags.DEFINE_bool("all_snapshots", False, "Probe every kept checkpoint (Table 3).")
flags.DEFINE_string("dataset", "toyworld/scenes", "Dataset (jaxcnn.data.sources name).")
flags.DEFINE_string("data_dir", "", "TFDS data_dir ('': default).")
flags.DEFINE_string("train_split", "trainval", "Split the SVMs are trained on.")
flags.DEFINE_string("test_split", "test", "Split they are scored on.")
flags.DEFINE_enum("view", "image", ["image", "gt_boxes"], "Whole images or GT-box crops.")
flags.DEFINE_enum("task", "multilabel", probe_runs.TASKS, "mean AP (VOC) or accuracy (SUN).")
flags.DEFINE_list("layers", list(study.LAYERS), "Layers (taps) to probe.")
flags.DEFINE_list("ablations", list(study.ABLATIONS), "Ablations (fc layers: binarize only).")
flags.DEFINE_string("protocol", "voc07_vissl", "Probe protocol (jaxcnn.probes.PROTOCOLS).")
flags.DEFINE_integer("max_train", 0, "Use the first N training images (0: all).")
flags.DEFINE_integer("max_test", 0, "Use the first N test images (0: all).")
flags.DEFINE_integer("crop", 64, "Network input size (227 for CaffeNet).")
flags.DEFINE_integer("resize", 72, "Resize before cropping (256 for CaffeNet).")
flags.DEFINE_integer("batch_size", 128, "Extraction batch size.")
flags.DEFINE_string("out_dir", None, "Output folder.", required=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.getLogger("absl").setLevel(logging.ERROR)
    steps = checkpoints.available_steps(FLAGS.run_dir)
    if not steps:
        raise app.UsageError(f"no checkpoints in {FLAGS.run_dir}")
    if not FLAGS.all_snapshots:
        steps = [int(s) for s in FLAGS.steps] or steps[-1:]
    common = dict(
        data_dir=FLAGS.data_dir,
        crop=FLAGS.crop,
        resize=FLAGS.resize,
        view=FLAGS.view,
        mean_split=FLAGS.train_split,
    )
    train_fs = FeatureSet(FLAGS.dataset, FLAGS.train_split, max_examples=FLAGS.max_train, **common)
    test_fs = FeatureSet(FLAGS.dataset, FLAGS.test_split, max_examples=FLAGS.max_test, **common)
    num_classes = len(probe_runs.class_names(train_fs))
    sets = (train_fs, test_fs, FLAGS.task, num_classes)
    grid = probe_runs.ablation_grid(FLAGS.layers, FLAGS.ablations)
    cache = study.FeatureCache(FLAGS.out_dir, batch_size=FLAGS.batch_size)
    results = {}
    for step in steps:
        print(f"step {step}: {len(grid)} probes", flush=True)
        results[str(step)] = study.probe(
            cache, FLAGS.run_dir, step, sets, grid, FLAGS.protocol, taps=tuple(FLAGS.layers)
        )
    meta = {
        "run_dir": os.path.abspath(FLAGS.run_dir),
        "dataset": FLAGS.dataset,
        "view": FLAGS.view,
        "task": FLAGS.task,
        "protocol": FLAGS.protocol,
        "metric": "mean AP %" if FLAGS.task == "multilabel" else "mean per-class acc. %",
    }
    paths = probe_runs.write_tables(results, meta, FLAGS.out_dir)
    if len(steps) > 1:
        values = {la: [results[str(s)][la]["none"] for s in steps] for la in FLAGS.layers}
        paths.append(
            plots.plot_metric_vs_iteration(
                steps,
                values,
                os.path.join(FLAGS.out_dir, "metric_vs_iteration.png"),
                ylabel=meta["metric"],
            )
        )
    print(open(os.path.join(FLAGS.out_dir, "probes.md")).read())
    print("wrote", json.dumps([str(p) for p in paths]))


if __name__ == "__main__":
    app.run(main)
