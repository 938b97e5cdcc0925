"""Flags shared by experiments/pretrain.py and experiments/finetune.py, and their main().

Flags become two frozen configs, `jaxcnn.trainer.TrainConfig` and
`jaxcnn.train_data.DataConfig`; the run is one call to `jaxcnn.trainer.train`.
"""

import logging
import os
import time

import jax
from absl import flags

from jaxcnn import distributed, finetune, train_data, trainer

FLAGS = flags.FLAGS

# Where and what.
flags.DEFINE_string(
    "run_dir",
    None,
    "Run directory (checkpoints, metrics.jsonl, curves.png). "
    "Re-running with the same run_dir resumes from its latest checkpoint.",
)
flags.DEFINE_string("dataset", "toyworld/source", "Dataset name (jaxcnn.data.sources).")
flags.DEFINE_string("data_dir", "", "TFDS data_dir ('': $TFDS_DATA_DIR or ~/tensorflow_datasets).")
flags.DEFINE_string("train_split", "train", "Training split.")
flags.DEFINE_string("eval_split", "validation", "Validation split.")
flags.DEFINE_integer("split_seed", 0, "Seed of seeded splits (sun397, toyworld/places).")
flags.DEFINE_bool("gt_boxes", False, "Detection datasets: train on ground-truth box crops.")
flags.DEFINE_integer(
    "crop",
    64,
    "Network input size (random crop for training, centre crop for validation); 227 for CaffeNet.",
)
flags.DEFINE_integer("resize", 72, "Images are resized to this before cropping (Caffe: 256).")
flags.DEFINE_enum(
    "mean_kind",
    "image",
    ["image", "channel"],
    "Mean subtracted: per pixel or per channel, of the training split.",
)
flags.DEFINE_integer("eval_examples", 0, "Validate on the first N examples (0: all).")
flags.DEFINE_integer("worker_count", 0, "grain worker processes (0: in-process).")
# Network.
flags.DEFINE_enum("preset", "small", ["small", "caffenet"], "Network geometry preset.")
flags.DEFINE_float("width", None, "small preset: conv width multiplier (default 0.25).")
flags.DEFINE_integer("fc_width", None, "small preset: fc6/fc7 width (default 512).")
flags.DEFINE_enum(
    "init",
    None,
    ["caffe", "msra"],
    "small preset: CaffeNet's Gaussian stds "
    "(caffe, the default) or MSRA stds with Caffe's input scale 1/64 (msra).",
)
flags.DEFINE_float(
    "bias_one",
    None,
    "small preset: bias of conv2/4/5 and fc6/7 (CaffeNet 1, BVLC AlexNet 0.1; default 1).",
)
flags.DEFINE_integer("num_classes", 0, "Classifier outputs (0: the dataset's classes).")
flags.DEFINE_enum(
    "compute_dtype",
    "float32",
    ["float32", "bfloat16"],
    "Compute precision (parameters and optimizer stay float32); bfloat16 is for GPUs/TPUs.",
)
# Solver (Caffe's solver.prototxt).
flags.DEFINE_integer("batch_size", 256, "Global batch size (all processes and devices).")
flags.DEFINE_integer("num_steps", 1000, "Iterations (Caffe's max_iter).")
flags.DEFINE_float("base_lr", 0.01, "Base learning rate.")
flags.DEFINE_float("lr_gamma", 0.1, "Learning rate factor at every step of the schedule.")
flags.DEFINE_integer("lr_step_size", 100_000, "Iterations between learning-rate steps.")
flags.DEFINE_float("momentum", 0.9, "Momentum.")
flags.DEFINE_float("weight_decay", 5e-4, "Weight decay (L2).")
flags.DEFINE_float("bias_lr_mult", 2.0, "Learning-rate multiplier of the biases.")
flags.DEFINE_float("bias_decay_mult", 0.0, "Weight-decay multiplier of the biases.")
flags.DEFINE_integer("seed", 0, "Initialisation, dropout and data-order seed.")
# Snapshots, logging, devices.
flags.DEFINE_list("snapshot_steps", [], "Iterations whose checkpoints are kept permanently.")
flags.DEFINE_integer("checkpoint_every", 1000, "Iterations between rolling checkpoints.")
flags.DEFINE_integer("log_every", 50, "Iterations between progress lines.")
flags.DEFINE_integer("eval_every", 0, "Iterations between validations (0: only at the end).")
flags.DEFINE_integer("eval_batch_size", 0, "Validation batch per process (0: training batch).")
flags.DEFINE_integer("num_local_devices", 0, "Local devices to use (0: all).")
flags.DEFINE_string("compilation_cache_dir", "", "JAX persistent compilation cache ('': off).")
# Multi-host (or set JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID, or SLURM).
flags.DEFINE_string("coordinator_address", "", "host:port of process 0 (multi-process runs).")
flags.DEFINE_integer("num_processes", None, "Number of processes (multi-process runs).")
flags.DEFINE_integer("process_id", None, "This process's index (multi-process runs).")


def data_config() -> train_data.DataConfig:
    return train_data.DataConfig(
        dataset=FLAGS.dataset,
        train_split=FLAGS.train_split,
        eval_split=FLAGS.eval_split,
        data_dir=FLAGS.data_dir,
        split_seed=FLAGS.split_seed,
        gt_boxes=FLAGS.gt_boxes,
        crop=FLAGS.crop,
        resize=FLAGS.resize,
        mean_kind=FLAGS.mean_kind,
        eval_examples=FLAGS.eval_examples,
        worker_count=FLAGS.worker_count,
    )


def _model_overrides() -> dict:
    small_only = {"width": FLAGS.width, "fc_width": FLAGS.fc_width, "init": FLAGS.init}
    if FLAGS.preset == "caffenet":
        if any(v is not None for v in small_only.values()) or FLAGS.crop != 227:
            raise flags.ValidationError(
                "caffenet has a fixed geometry: leave --width, --fc_width and --init unset and "
                "use --crop=227"
            )
        return {} if FLAGS.bias_one is None else {"bias_one": FLAGS.bias_one}
    out = {"input_size": FLAGS.crop, **small_only, "bias_one": FLAGS.bias_one}
    return {k: v for k, v in out.items() if v is not None}


def train_config(
    regime: str, init_from: str, init_step: int, num_classes: int
) -> trainer.TrainConfig:
    return trainer.TrainConfig(
        num_classes=num_classes,
        num_steps=FLAGS.num_steps,
        batch_size=FLAGS.batch_size,
        preset=FLAGS.preset,
        model_overrides=_model_overrides(),
        compute_dtype=FLAGS.compute_dtype,
        regime=regime,
        init_from=init_from,
        init_step=init_step,
        base_lr=FLAGS.base_lr,
        lr_gamma=FLAGS.lr_gamma,
        lr_step_size=FLAGS.lr_step_size,
        momentum=FLAGS.momentum,
        weight_decay=FLAGS.weight_decay,
        bias_lr_mult=FLAGS.bias_lr_mult,
        bias_decay_mult=FLAGS.bias_decay_mult,
        seed=FLAGS.seed,
        snapshot_steps=tuple(int(s) for s in FLAGS.snapshot_steps),
        checkpoint_every=FLAGS.checkpoint_every,
        log_every=FLAGS.log_every,
        eval_every=FLAGS.eval_every,
        eval_batch_size=FLAGS.eval_batch_size,
        num_local_devices=FLAGS.num_local_devices,
    )


def run(regime: str, init_from: str = "", init_step: int = -1) -> dict:
    """Start multi-process JAX if asked, build the configs and data, train, report."""
    if not FLAGS.run_dir:
        raise flags.ValidationError("--run_dir is required")
    distributed.initialize(
        coordinator_address=FLAGS.coordinator_address or None,
        num_processes=FLAGS.num_processes,
        process_id=FLAGS.process_id,
    )
    if FLAGS.compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", FLAGS.compilation_cache_dir)
    logging.getLogger("absl").setLevel(logging.WARNING)  # Orbax's per-save chatter
    logging.getLogger("jaxcnn").setLevel(logging.INFO)
    data_cfg = data_config()
    classes = FLAGS.num_classes or train_data.num_classes(data_cfg)
    if init_from:
        init_from = os.path.abspath(init_from)
    cfg = train_config(regime, init_from, init_step, classes)
    if regime not in finetune.REGIMES:
        raise flags.ValidationError(f"unknown regime {regime!r}")
    logging.info("config %s", cfg)
    logging.info("data %s", data_cfg)
    logging.info(
        "process %d/%d, devices %s", jax.process_index(), jax.process_count(), jax.local_devices()
    )
    per_process = cfg.batch_size // jax.process_count()
    start = time.time()
    summary = trainer.train(
        cfg,
        FLAGS.run_dir,
        train_data=train_data.train_iterator(data_cfg, batch_size=per_process, seed=cfg.seed),
        eval_data=train_data.eval_batches(data_cfg, batch_size=cfg.eval_batch_size or per_process),
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
