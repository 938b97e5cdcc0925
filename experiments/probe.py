"""Linear probes of any training run (docs/methods.md §4-§5): layer x ablation (Table 7 /
thesis 5.1) and layer x snapshot (Table 3), on whole images or on ground-truth boxes (thesis
Table 2.4).

  python experiments/probe.py --run_dir=runs/study_toy/pretrain-<key>/run \
      --dataset=toyworld/scenes --out_dir=runs/probe_scenes

Features are extracted once per (checkpoint, split) into --out_dir/features (resumable); the
tables go to --out_dir as probes.json, probes.csv and probes.md, the plots as PNG. The settings'
flags are generated from `jaxcnn.features.SetPair` and `jaxcnn.probe.ProbeSpec`.
"""

import json
import logging
import os

import config_flags
import errors
from absl import app, flags

from jaxcnn import features, probe
from jaxcnn.probe import plots
from jaxcnn.storage import checkpoints

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "Training run (its checkpoints/ folder).", required=True)
flags.DEFINE_list("steps", [], "Checkpoint steps to probe (default: the latest only).")
flags.DEFINE_bool("all_snapshots", False, "Probe every kept checkpoint (Table 3).")
flags.DEFINE_string("out_dir", None, "Output folder.", required=True)
config_flags.define(features.SetPair)
config_flags.define(probe.ProbeSpec)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.getLogger("absl").setLevel(logging.ERROR)
    pair = config_flags.build(features.SetPair)
    spec = config_flags.build(probe.ProbeSpec)
    train_fs, test_fs = pair.sets()
    steps = checkpoints.available_steps(FLAGS.run_dir)
    if not steps:
        raise app.UsageError(f"no checkpoints in {FLAGS.run_dir} (--run_dir)")
    asked = [int(s) for s in FLAGS.steps]
    missing = sorted(set(asked) - set(steps))
    if missing:
        raise app.UsageError(f"--steps {missing} have no checkpoint; available: {steps}")
    if FLAGS.all_snapshots:
        asked = steps
    # Verify before any work: explicit damaged steps are errors naming them; by default the
    # newest undamaged step (a damaged newer one is named in a warning).
    steps = [checkpoints.verified_step(FLAGS.run_dir, s)[0] for s in asked or [None]]
    features.check_input(FLAGS.run_dir, steps[-1], train_fs)
    num_classes = len(features.class_names(train_fs))
    sets = (train_fs, test_fs, spec.task, num_classes)
    grid = features.ablation_grid(spec.layers, spec.ablations)
    cache = features.FeatureCache(FLAGS.out_dir, batch_size=pair.batch_size)
    results = {}
    for step in steps:
        print(f"step {step}: {len(grid)} probes", flush=True)
        results[str(step)] = probe.probe(
            cache, FLAGS.run_dir, step, sets, grid, spec.protocol, taps=spec.layers
        )
    meta = {
        "run_dir": os.path.abspath(FLAGS.run_dir),
        "dataset": pair.dataset,
        "view": pair.view,
        "task": spec.task,
        "protocol": spec.protocol,
        "metric": "mean AP %" if spec.task == "multilabel" else "mean per-class acc. %",
    }
    paths = probe.write_tables(results, meta, FLAGS.out_dir)
    if len(steps) > 1:
        values = {la: [results[str(s)][la]["none"] for s in steps] for la in spec.layers}
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
    errors.run(main)
