"""Flags shared by experiments/pretrain.py and experiments/finetune.py, and their main().

Every flag is generated (experiments/config_flags.py) from the typed configs:
`jaxcnn.train.TrainConfig` (the solver and schedule), `jaxcnn.train.DataConfig` (the data),
`jaxcnn.model.NetworkSpec` (the network) and `jaxcnn.train.distributed.ProcessConfig` (joining
a multi-process run). The run is one call to `jaxcnn.train.train`.
"""

import logging
import os
import time

import config_flags
import jax
from absl import flags

from jaxcnn import model, train
from jaxcnn.train import distributed

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "run_dir",
    None,
    "Run directory (checkpoints, metrics.jsonl, curves.png). "
    "Re-running with the same run_dir resumes from its latest checkpoint.",
)
# Set by the script (regime) or derived (network, classes), not flags of their own.
_DERIVED = ("num_classes", "preset", "regime")


def define(*, finetuning: bool) -> None:
    """The flags of a pre-training (no source run) or fine-tuning script."""
    skip = _DERIVED if finetuning else (*_DERIVED, "init_from", "init_step")
    config_flags.define(train.TrainConfig, skip=skip)
    config_flags.define(train.DataConfig)
    config_flags.define(model.NetworkSpec)
    config_flags.define(distributed.ProcessConfig)


def run(regime: str) -> dict:
    """Start multi-process JAX if asked, build the configs and data, train, report."""
    if not FLAGS.run_dir:
        raise flags.ValidationError("--run_dir is required")
    config_flags.build(distributed.ProcessConfig).start()
    logging.getLogger("absl").setLevel(logging.WARNING)  # Orbax's per-save chatter
    logging.getLogger("jaxcnn").setLevel(logging.INFO)
    data_cfg = config_flags.build(train.DataConfig)
    network = config_flags.build(model.NetworkSpec)
    init_from = getattr(FLAGS, "init_from", "")
    cfg = config_flags.build(
        train.TrainConfig,
        num_classes=train.num_classes(data_cfg),
        preset=network.preset,
        model_overrides=network.overrides(data_cfg.crop),
        regime=regime,
        init_from=os.path.abspath(init_from) if init_from else "",
        init_step=getattr(FLAGS, "init_step", -1),
    )
    logging.info("config %s", cfg)
    logging.info("data %s", data_cfg)
    logging.info(
        "process %d/%d, devices %s", jax.process_index(), jax.process_count(), jax.local_devices()
    )
    per_process = cfg.batch_size // jax.process_count()
    start = time.time()
    summary = train.train(
        cfg,
        FLAGS.run_dir,
        train_data=train.train_iterator(data_cfg, batch_size=per_process, seed=cfg.seed),
        eval_data=train.eval_batches(data_cfg, batch_size=cfg.eval_batch_size or per_process),
    )
    if jax.process_index() == 0:
        print(_summary_line(cfg, summary, time.time() - start), flush=True)
    if jax.process_count() > 1:
        print(
            f"process {jax.process_index()}/{jax.process_count()}: final parameters sha256 "
            f"{summary['params_sha256']}",
            flush=True,
        )
    return summary


def _summary_line(cfg, summary: dict, seconds: float) -> str:
    val = summary["val"]
    result = (
        f"validation top-1 {val['top1']:.4f}, top-5 {val['top5']:.4f} on {val['count']} images"
        if val
        else "no validation"
    )
    resumed = summary["resumed_from"]
    how = "fresh" if resumed is None else f"resumed from step {resumed}"
    curves = os.path.join(FLAGS.run_dir, "curves.png")
    return (
        f"{cfg.regime} {FLAGS.run_dir}: step {summary['step']} ({how}), {result}; "
        f"{seconds:.0f} s; curves {curves}"
    )
