"""Training: Caffe's solver, the pure train/eval steps, the typed run config, the fine-tuning
regimes and layer transplants, the training input adapter, the loop with checkpoints and exact
resumption, the metrics log, and multi-device / multi-host plumbing (docs/methods.md §2)."""

from jaxcnn.train.config import TrainConfig, initial_state, model_meta
from jaxcnn.train.data import DataConfig, eval_batches, num_classes, train_iterator
from jaxcnn.train.loop import params_digest, train
from jaxcnn.train.regimes import NEEDS_SOURCE, REGIMES, start_params, transplant
from jaxcnn.train.solver import caffe_multipliers, caffe_sgd, step_schedule
from jaxcnn.train.step import TrainState, eval_step, train_flops_per_image, train_step

__all__ = [
    "DataConfig",
    "NEEDS_SOURCE",
    "REGIMES",
    "TrainConfig",
    "TrainState",
    "caffe_multipliers",
    "caffe_sgd",
    "eval_batches",
    "eval_step",
    "initial_state",
    "model_meta",
    "num_classes",
    "params_digest",
    "start_params",
    "step_schedule",
    "train",
    "train_flops_per_image",
    "train_iterator",
    "train_step",
    "transplant",
]
