"""How transferable are features (Yosinski et al. 2014): the AnB / BnB / AnB+ / BnB+ grid.

  python experiments/transfer.py --flagfile=experiments/flags/transfer_toy.flags

The source classes are split into halves A and B (--split_seeds, or --class_files); base
networks are trained from scratch on each half, then for n = 1..7 (--depths) the transfer
networks: layers 1..n copied from baseB (BnB) or baseA (AnB), frozen or trained ("+"), the layers
above re-initialised, trained on B with the same solver. Every network is a job in
<run_dir>/jobs that any process may claim: start this same command in several processes
(launch/transfer_local.sh) or SLURM array tasks (launch/transfer_slurm_array.sh) on a shared
--run_dir to spread the grid; an interrupted grid resumes where it stopped. When the grid is
complete, <run_dir>/report holds results.json, transfer.png, report.md and report.html.

Each worker is a single JAX process using its local devices (--num_local_devices); give each
worker its own device (e.g. CUDA_VISIBLE_DEVICES) to run several networks at once.
"""

import dataclasses
import logging
import os
import time

import config_flags
import errors
import jax
import training_flags
from absl import app, flags

from jaxcnn import model, train
from jaxcnn.transfer import experiment

training_flags.define(finetuning=False)

config_flags.define(experiment.TransferConfig, skip=("data", "train"))
flags.DEFINE_float("poll_s", 5.0, "Seconds between looks for claimable jobs while waiting.")
flags.DEFINE_integer("max_jobs", 0, "Stop after running this many jobs (0: until done).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if not FLAGS.run_dir:
        raise app.UsageError("--run_dir is required")
    if FLAGS.compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", FLAGS.compilation_cache_dir)
    logging.getLogger("absl").setLevel(logging.WARNING)  # Orbax's per-save chatter
    logging.getLogger("jaxcnn").setLevel(logging.INFO)
    data_cfg = config_flags.build(train.DataConfig)
    network = config_flags.build(model.NetworkSpec)
    cfg = config_flags.build(
        experiment.TransferConfig,
        data=data_cfg,
        # num_classes is set per network (the size of its half).
        train=config_flags.build(
            train.TrainConfig,
            num_classes=0,
            preset=network.preset,
            model_overrides=network.overrides(data_cfg.crop),
            regime="pretrain",
            init_from="",  # each network's start is the transplant (jaxcnn.transfer)
            init_step=-1,
        ),
    )
    cfg = dataclasses.replace(cfg, class_files=tuple(os.path.abspath(p) for p in cfg.class_files))
    logging.info("config %s", cfg)
    logging.info("pid %d, devices %s", os.getpid(), jax.local_devices())
    start = time.time()
    result = experiment.run_experiment(
        cfg,
        FLAGS.run_dir,
        poll_s=FLAGS.poll_s,
        max_jobs=FLAGS.max_jobs or None,
        log=lambda line: print(line, flush=True),
    )
    seconds = time.time() - start
    if result is None:
        print(
            f"pid {os.getpid()}: stopped after {seconds:.0f} s without writing the report "
            "(--max_jobs reached, or another process completed the grid and writes it)"
        )
        return
    report = os.path.join(FLAGS.run_dir, "report")
    print(f"grid complete in {seconds:.0f} s (this process); report {report}/report.md")
    print(open(os.path.join(report, "report.md")).read(), flush=True)


if __name__ == "__main__":
    errors.run(main)
