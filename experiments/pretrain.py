"""Pre-train a network from Caffe's random initialisation (docs/methods.md §2).

  python experiments/pretrain.py --flagfile=experiments/flags/pretrain_toy.flags

Data parallel over all local devices, and over processes when started by launch/ (or with
--coordinator_address/--num_processes/--process_id). The snapshot steps are kept permanently in
<run_dir>/checkpoints; running the same command again resumes from the latest checkpoint.
"""

import errors
import training_flags
from absl import app

training_flags.define(finetuning=False)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    training_flags.run("pretrain")


if __name__ == "__main__":
    errors.run(main)
