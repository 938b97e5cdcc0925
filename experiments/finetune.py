"""Fine-tune a pre-trained network on a target task, or train the same schedule from scratch
(docs/methods.md §2.3).

  python experiments/finetune.py --flagfile=experiments/flags/finetune_toy_places.flags \
      --regime=fc-ft --init_from=runs/pretrain_toy --init_step=2000 --run_dir=runs/places_fcft

Regimes: ft (every layer trains), fc-ft (conv1-conv5 frozen, not back-propagated into),
scratch (random initialisation). ft and fc-ft start from a snapshot of a pre-training run (any
checkpointed step, default the latest) with a new fc8 for the target's classes.
"""

import errors
import training_flags
from absl import app, flags

FINETUNE_REGIMES = ("ft", "fc-ft", "scratch")
flags.DEFINE_enum("regime", "ft", FINETUNE_REGIMES, "Fine-tuning regime.")
training_flags.define(finetuning=True)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if (FLAGS.regime == "scratch") == bool(FLAGS.init_from):
        raise app.UsageError("--init_from is required for ft and fc-ft, and not used by scratch")
    training_flags.run(FLAGS.regime)


if __name__ == "__main__":
    errors.run(main)
