"""Fine-tune a pre-trained network on a target task, or train the same schedule from scratch
(SPEC §2, paper §2.3).

  python experiments/finetune.py --flagfile=experiments/flags/finetune_toy_places.flags \
      --regime=fc-ft --init_from=runs/pretrain_toy --init_step=2000 --run_dir=runs/places_fcft

Regimes: ft (every layer trains), fc-ft (conv1-conv5 frozen, not back-propagated into),
scratch (random initialisation). ft and fc-ft start from a snapshot of a pre-training run (any
checkpointed step, default the latest) with a new fc8 for the target's classes.
"""

import training_flags
from absl import app, flags

flags.DEFINE_enum("regime", "ft", ["ft", "fc-ft", "scratch"], "Fine-tuning regime.")
flags.DEFINE_string(
    "init_from",
    "",
    "Run directory of the pre-trained network (ft, fc-ft), "
    "or a directory written by experiments/import_caffe.py.",
)
flags.DEFINE_integer("init_step", -1, "Its checkpoint step (-1: the latest).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if (FLAGS.regime == "scratch") == bool(FLAGS.init_from):
        raise app.UsageError("--init_from is required for ft and fc-ft, and not used by scratch")
    training_flags.run(FLAGS.regime, FLAGS.init_from, FLAGS.init_step)


if __name__ == "__main__":
    app.run(main)
