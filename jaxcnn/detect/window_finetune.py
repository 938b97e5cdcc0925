"""Window fine-tuning for detection in the existing training harness (R-CNN's fine-tuning).

The network gets a new classifier of classes + 1 outputs (0 = background) and trains on the
32/96 window batches of `jaxcnn.detect.windows` with `jaxcnn.train.loop.train`, in the harness's
regimes (`jaxcnn.train.regimes`): ``ft`` (all layers from the source network except the new fc8),
``fc-ft`` (conv1-conv5 frozen) and ``scratch`` (random initialisation), from any checkpointed
step of a pre-training run. R-CNN's solver: lr 0.001, x 0.1 every 20,000 iterations, momentum
0.9, weight decay 5e-4, batch 128; the new layer's learning-rate multipliers are 10 (weights)
and 20 (biases), which `WindowTrainConfig` adds to Caffe's SGD (`head_lr_mult` times the
usual 1 / 2). The new layer's initialisation is the network preset's classifier filler
(CaffeNet: Gaussian std 0.01, R-CNN's).
"""

from __future__ import annotations

import dataclasses

from jaxcnn.train import loop
from jaxcnn.train.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class WindowTrainConfig(TrainConfig):
    """`TrainConfig` plus a learning-rate multiplier on the new classifier (R-CNN: 10)."""

    head_lr_mult: float = 10.0

    def classifier_lr_mult(self) -> float:
        return self.head_lr_mult


def finetune_windows(
    config: WindowTrainConfig, run_dir: str, *, train_data, eval_data=None, on_record=None
) -> dict:
    """Run (or resume) one window fine-tuning; `loop.train`'s summary."""
    return loop.train(
        config, run_dir, train_data=train_data, eval_data=eval_data, on_record=on_record
    )
