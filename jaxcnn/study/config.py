"""The study's settings: one frozen `StudyConfig` (experiments/reproduce.py's flags are generated
from it, nested `NetworkSpec` included).

Datasets play the paper's roles (docs/methods.md §3): `source` is ImageNet (pre-training),
`det_target` is PASCAL VOC (multi-label image classification, GT-box classification, fine-tuning
on GT boxes), `scene_target` is SUN397 (1-of-C scene classification). On the embedded default
these are toyworld's source, scenes and places parts.
"""

from __future__ import annotations

import dataclasses

from jaxcnn.data import sources
from jaxcnn.features import TABLE7_ABLATIONS
from jaxcnn.model import TAP_NAMES, NetworkSpec
from jaxcnn.probe import PROTOCOLS

LAYERS = TAP_NAMES
ABLATIONS = TABLE7_ABLATIONS
REGIMES = ("ft", "fc-ft", "scratch")
TOYWORLD_SIZES = ("", "default", "tiny")


def _f(default, help_text, **meta):
    return dataclasses.field(default=default, metadata={"help": help_text, **meta})


def _dataset(default, role):
    return _f(default, f"{role} dataset (jaxcnn.data.sources name).", check=sources.dataset_spec)


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    # Data (docs/methods.md §3). `toyworld_size` "" means real datasets, prepared beforehand.
    source: str = _dataset("toyworld/source", "Pre-training (ImageNet's role)")
    det_target: str = _dataset("toyworld/scenes", "Detection target (PASCAL VOC's role)")
    scene_target: str = _dataset("toyworld/places", "Scene target (SUN397's role)")
    data_dir: str = _f("", "TFDS data_dir ('': $TFDS_DATA_DIR or ~/tensorflow_datasets).")
    toyworld_size: str = _f(
        "default", "Toyworld size to generate ('' = real datasets).", choices=TOYWORLD_SIZES
    )
    toyworld_seed: int = _f(0, "Toyworld generation seed.")
    resize: int = _f(72, "Images are resized to this before cropping (Caffe: 256).")
    crop: int = _f(64, "Network input size (CaffeNet: 227).")
    # Network (docs/methods.md §1).
    network: NetworkSpec = dataclasses.field(default_factory=NetworkSpec)
    # Pre-training (docs/methods.md §2).
    pretrain_steps: int = _f(1200, "Pre-training iterations.")
    pretrain_batch: int = _f(128, "Pre-training batch size.")
    pretrain_lr: float = _f(0.01, "Pre-training base learning rate.")
    pretrain_lr_step: int = _f(800, "Iterations between learning-rate steps (x0.1).")
    snapshots: tuple[int, ...] = _f((20, 60, 150, 300, 600, 1200), "Snapshot iterations kept.")
    # Fine-tuning (docs/methods.md §2.3): lr 0.001, x0.1 every lr_step; scratch uses the
    # pre-training lr.
    finetune_steps: int = _f(150, "Fine-tuning iterations, PASCAL stand-in (paper: 70k).")
    scene_finetune_steps: int = _f(0, "Fine-tuning iterations, SUN stand-in (0: finetune_steps).")
    finetune_batch: int = _f(64, "Fine-tuning batch size.")
    finetune_lr: float = _f(0.001, "Fine-tuning base learning rate.")
    finetune_lr_step: int = _f(100, "Fine-tuning iterations between learning-rate steps.")
    scratch_steps: int = _f(300, "Iterations of training from scratch on a target.")
    finetune_eval_images: int = _f(
        1000, "Validation images of each fine-tuning run (GT boxes: theirs; 0: all)."
    )
    table4_snapshots: tuple[int, ...] = _f((150, 600), "Snapshots also fine-tuned (Table 4).")
    # Probes (docs/methods.md §4): example caps per split.
    protocol: str = _f("voc07_vissl", "Probe protocol.", choices=tuple(PROTOCOLS))
    probe_train_images: int = _f(2000, "Probe training images (0: all).")
    probe_test_images: int = _f(2000, "Probe test images (0: all).")
    probe_splits: int = _f(
        5, "Train/test splits per probe, for mean +- std and the verdicts (docs/methods.md §13)."
    )
    # Detection (docs/methods.md §9.2): R-CNN on det_target, optional (slow on a CPU).
    # Transferability (docs/methods.md §11): Yosinski et al.'s grid on `source`, optional.
    transfer: bool = _f(False, "Also run the AnB / BnB transfer grid on the source dataset.")
    transfer_steps: int = _f(240, "Iterations of each of the transfer grid's 30 networks.")
    detection: bool = _f(False, "Also run R-CNN detection on det_target (Tables 1, 2, 8 DET).")
    detect_images: int = _f(200, "Detection training and test images, each (0: all).")
    detect_steps: int = _f(
        0, "Window fine-tuning iterations (ft, fc-ft; scratch twice; 0: finetune_steps)."
    )
    batch_size: int = _f(128, "Feature extraction and evaluation batch size.")
    seed: int = _f(0, "Initialisation, dropout and data-order seed.")

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {tuple(PROTOCOLS)}, got {self.protocol!r}")
        if self.toyworld_size not in TOYWORLD_SIZES:
            raise ValueError(f"toyworld_size must be one of {TOYWORLD_SIZES}")
        object.__setattr__(self, "snapshots", tuple(int(s) for s in self.snapshots))
        object.__setattr__(self, "table4_snapshots", tuple(int(s) for s in self.table4_snapshots))
        self._check_numbers()
        self.network.check(self.crop)

    def _check_numbers(self) -> None:
        """Sizes and step counts, each error naming its flag (before any stage runs)."""
        positive = ("crop", "pretrain_steps", "pretrain_batch", "finetune_steps")
        positive += ("finetune_batch", "scratch_steps", "batch_size", "pretrain_lr_step")
        positive += ("finetune_lr_step", "probe_splits", "transfer_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "scene_finetune_steps",
            "detect_steps",
            "probe_train_images",
            "probe_test_images",
            "finetune_eval_images",
            "detect_images",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if self.resize < self.crop:
            raise ValueError(f"--resize ({self.resize}) must be >= --crop ({self.crop})")
        outside = [s for s in self.snapshots if not 0 <= s <= self.pretrain_steps]
        if outside:
            raise ValueError(
                f"--snapshots {outside} lie outside [0, --pretrain_steps={self.pretrain_steps}]"
            )
        kept = {*self.snapshots, self.pretrain_steps}
        missing = [s for s in self.table4_snapshots if s not in kept]
        if missing:
            raise ValueError(
                f"--table4_snapshots {missing} are not kept: each must be one of --snapshots "
                f"{list(self.snapshots)} or --pretrain_steps"
            )

    def model_overrides(self) -> dict:
        return self.network.overrides(self.crop)
