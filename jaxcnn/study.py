"""The paper's whole study as cached stages (`jaxcnn.stages`): data, pre-training with snapshots,
fine-tuning in three regimes on two targets, probes, selectivity; `jaxcnn.study_report` turns
the results into the report.

Datasets play the paper's roles (SPEC §3): `source` is ImageNet (pre-training), `det_target` is
PASCAL VOC (multi-label image classification, GT-box classification, fine-tuning on GT boxes),
`scene_target` is SUN397 (1-of-C scene classification). On the embedded default these are
toyworld's source, scenes and places parts.

Every stage's folder is keyed by its config and upstream stages, so re-running skips what is
finished, an interrupted run resumes (training from its checkpoints, feature extraction from its
last chunk), and changing one setting re-runs only what depends on it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jaxcnn import checkpoints, models, probes, stages, train_data, trainer
from jaxcnn.data import prepare, sources
from jaxcnn.feature_sets import FeatureSet, extract
from jaxcnn.probe_runs import boxes_as_multilabel, probe_layers

LAYERS = models.TAP_NAMES
ABLATIONS = ("none", "binarize", "sp-shuffle", "sp-max", "sp-max-bin")
REGIMES = ("ft", "fc-ft", "scratch")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    # Data (SPEC §3). `toyworld_size` "" means real datasets, prepared beforehand.
    source: str = "toyworld/source"
    det_target: str = "toyworld/scenes"
    scene_target: str = "toyworld/places"
    data_dir: str = ""
    toyworld_size: str = "default"
    toyworld_seed: int = 0
    resize: int = 72
    crop: int = 64
    # Network (SPEC §1).
    preset: str = "small"
    width: float = 0.25
    fc_width: int = 512
    init: str = "msra"  # small preset: "msra" or Caffe's "caffe" (see models.small_config)
    bias_one: float = 0.1  # bias of conv2/4/5, fc6/7 (CaffeNet 1, BVLC AlexNet 0.1)
    # Pre-training (SPEC §2).
    pretrain_steps: int = 1200
    pretrain_batch: int = 128
    pretrain_lr: float = 0.01
    pretrain_lr_step: int = 800
    snapshots: tuple[int, ...] = (20, 60, 150, 300, 600, 1200)
    # Fine-tuning (SPEC §2.3): lr 0.001, x0.1 every lr_step; scratch uses the pre-training lr.
    finetune_steps: int = 150  # PASCAL stand-in (paper: 70k)
    scene_finetune_steps: int = 0  # SUN stand-in (paper: 40k); 0: finetune_steps
    finetune_batch: int = 64
    finetune_lr: float = 0.001
    finetune_lr_step: int = 100
    scratch_steps: int = 300
    table4_snapshots: tuple[int, ...] = (150, 600)  # plus the final one (Table 4)
    # Probes (SPEC §4): protocol name in jaxcnn.probes.PROTOCOLS; example caps per split.
    protocol: str = "voc07_vissl"
    probe_train_images: int = 2000
    probe_test_images: int = 2000
    batch_size: int = 128
    seed: int = 0

    def model_overrides(self) -> dict:
        if self.preset == "caffenet":
            return {"bias_one": self.bias_one}
        return {
            "width": self.width,
            "fc_width": self.fc_width,
            "input_size": self.crop,
            "init": self.init,
            "bias_one": self.bias_one,
        }


@dataclasses.dataclass
class Progress:
    """Prints which stage runs, how far the study is, and an ETA from the stages' weights."""

    total_weight: float
    emit: Callable[[str], None] = print
    done_weight: float = 0.0
    start: float = dataclasses.field(default_factory=time.perf_counter)

    def stage(self, name: str, weight: float, cached: bool, seconds: float) -> None:
        self.done_weight += weight
        elapsed = time.perf_counter() - self.start
        frac = self.done_weight / self.total_weight
        eta = elapsed / frac * (1 - frac) if frac > 0 and not cached else float("nan")
        how = "cached" if cached else f"{seconds:6.1f} s"
        eta_txt = "" if np.isnan(eta) else f", ETA {eta / 60:.1f} min"
        self.emit(f"[{100 * frac:5.1f}%] {name:<40s} {how}{eta_txt}")


def _data_stage(cfg: StudyConfig, root: Path):
    def fn(out_dir):
        if cfg.toyworld_size:
            dirs = prepare.prepare_toyworld(
                size=cfg.toyworld_size, seed=cfg.toyworld_seed, data_dir=cfg.data_dir or None
            )
            return {"datasets": {k: str(v) for k, v in dirs.items()}}
        for name in (cfg.source, cfg.det_target, cfg.scene_target):  # names a missing one
            sources.open_split(
                name, sources.dataset_spec(name).splits[0], data_dir=cfg.data_dir or None
            )
        return {"datasets": {}}

    conf = {
        "size": cfg.toyworld_size,
        "seed": cfg.toyworld_seed,
        "data_dir": cfg.data_dir,
        "names": [cfg.source, cfg.det_target, cfg.scene_target],
    }
    return stages.run_stage(root, "data", conf, fn)


def dataset_name(cfg: StudyConfig, name: str) -> str:
    """Toyworld part names carry their size (`toyworld/scenes_tiny`)."""
    if cfg.toyworld_size and name.startswith("toyworld/"):
        part = name.split("/", 1)[1]
        from jaxcnn.data import toyworld

        return f"toyworld/{toyworld.config_name(part, cfg.toyworld_size, cfg.toyworld_seed)}"
    return name


def _train_stage(
    cfg, root, name, tcfg: trainer.TrainConfig, dcfg: train_data.DataConfig, upstream, log_fn
):
    def fn(out_dir):
        run_dir = str(out_dir / "run")
        per_process = tcfg.batch_size
        summary = trainer.train(
            tcfg,
            run_dir,
            train_data=train_data.train_iterator(dcfg, batch_size=per_process, seed=tcfg.seed),
            eval_data=train_data.eval_batches(dcfg, batch_size=cfg.batch_size),
            on_record=log_fn,
        )
        val = summary["val"] or {}
        return {"run_dir": run_dir, "val_top1": val.get("top1"), "val_top5": val.get("top5")}

    if tcfg.init_from:  # the source run's folder is an upstream stage: key on that instead
        conf = {**tcfg.to_dict(), "init_from": "", "data": dataclasses.asdict(dcfg)}
    else:
        conf = {**tcfg.to_dict(), "data": dataclasses.asdict(dcfg)}
    return stages.run_stage(root, name, conf, fn, upstream=upstream)


def _data_config(cfg, dataset, *, gt_boxes=False, eval_split="validation", train_split="train"):
    return train_data.DataConfig(
        dataset=dataset_name(cfg, dataset),
        train_split=train_split,
        eval_split=eval_split,
        data_dir=cfg.data_dir,
        gt_boxes=gt_boxes,
        crop=cfg.crop,
        resize=cfg.resize,
    )


def pretrain_stage(cfg, root, data, log_fn):
    dcfg = _data_config(cfg, cfg.source)
    tcfg = trainer.TrainConfig(
        num_classes=train_data.num_classes(dcfg),
        num_steps=cfg.pretrain_steps,
        batch_size=cfg.pretrain_batch,
        preset=cfg.preset,
        model_overrides=cfg.model_overrides(),
        base_lr=cfg.pretrain_lr,
        lr_step_size=cfg.pretrain_lr_step,
        seed=cfg.seed,
        snapshot_steps=tuple(cfg.snapshots),
        checkpoint_every=max(cfg.pretrain_steps // 6, 1),
        log_every=max(cfg.pretrain_steps // 20, 1),
    )
    return _train_stage(cfg, root, "pretrain", tcfg, dcfg, (data,), log_fn)


def finetune_stage(cfg, root, data, pre, target, regime, log_fn, *, from_step=None):
    """One fine-tuning run of `regime` on `target` ("det" or "scene")."""
    if target == "det":
        dcfg = _data_config(
            cfg, cfg.det_target, gt_boxes=True, train_split="trainval", eval_split="test"
        )
    else:
        dcfg = _data_config(cfg, cfg.scene_target, eval_split="val")
    scratch = regime == "scratch"
    steps = (
        cfg.scene_finetune_steps
        if target == "scene" and cfg.scene_finetune_steps
        else cfg.finetune_steps
    )
    step = cfg.pretrain_steps if from_step is None else from_step
    tcfg = trainer.TrainConfig(
        num_classes=train_data.num_classes(dcfg),
        num_steps=cfg.scratch_steps if scratch else steps,
        batch_size=cfg.finetune_batch,
        preset=cfg.preset,
        model_overrides=cfg.model_overrides(),
        regime=regime,
        init_from="" if scratch else pre.result["run_dir"],
        init_step=-1 if scratch else step,
        base_lr=cfg.pretrain_lr if scratch else cfg.finetune_lr,
        lr_step_size=cfg.pretrain_lr_step if scratch else cfg.finetune_lr_step,
        seed=cfg.seed,
        checkpoint_every=10**9,
        log_every=10**9,
    )
    name = f"finetune-{target}-{regime}" + ("" if from_step is None else f"-from{step}")
    upstream = (data,) if scratch else (data, pre)
    res = _train_stage(cfg, root, name, tcfg, dcfg, upstream, log_fn)
    return res


def feature_sets(cfg: StudyConfig) -> dict[str, tuple[FeatureSet, FeatureSet, str, int]]:
    """Train/test feature sets of the probe tasks: (train, test, task, num_classes)."""
    det = dataset_name(cfg, cfg.det_target)
    scene = dataset_name(cfg, cfg.scene_target)
    common = dict(data_dir=cfg.data_dir, crop=cfg.crop, resize=cfg.resize)
    ntr, nte = cfg.probe_train_images, cfg.probe_test_images
    det_classes = sources.open_split(det, "test", data_dir=cfg.data_dir or None).num_classes
    scene_classes = sources.open_split(scene, "test", data_dir=cfg.data_dir or None).num_classes
    return {
        "cls": (
            FeatureSet(det, "trainval", mean_split="trainval", max_examples=ntr, **common),
            FeatureSet(det, "test", mean_split="trainval", max_examples=nte, **common),
            "multilabel",
            det_classes,
        ),
        "gt": (
            FeatureSet(det, "trainval", "gt_boxes", "trainval", max_examples=ntr, **common),
            FeatureSet(det, "test", "gt_boxes", "trainval", max_examples=nte, **common),
            "multilabel",
            det_classes,
        ),
        "scene": (
            FeatureSet(scene, "train", max_examples=ntr, **common),
            FeatureSet(scene, "test", max_examples=nte, **common),
            "multiclass",
            scene_classes,
        ),
    }


class FeatureCache:
    """Extracted features shared by the analyses: one folder per (run, step, feature set).

    `run` is a training stage's result or a run directory; `step` None means its latest
    checkpoint (named by its number, so that both spellings share one folder)."""

    def __init__(self, root, *, batch_size: int = 128):
        self.root, self.batch_size = Path(root) / "features", batch_size

    def get(self, run, step: int | None, fs: FeatureSet, taps=LAYERS):
        run_dir = run if isinstance(run, str) else run.result["run_dir"]
        if step is None:
            step = checkpoints.available_steps(run_dir)[-1]
        tag = hashlib.sha256(os.path.abspath(run_dir).encode()).hexdigest()[:10]
        out = self.root / f"{tag}-{step}-{fs.name}"
        feats = extract(run_dir, step, fs, str(out), taps=taps, batch_size=self.batch_size)
        if fs.view == "gt_boxes":  # per-class AP of boxes: one-vs-rest columns
            feats["box_labels"] = feats["labels"]
            feats["labels"] = boxes_as_multilabel(
                feats["labels"], feats["difficult"], len(feats["class_names"])
            )
        return feats

    def pair(self, run, step, task_sets, taps=LAYERS):
        train_fs, test_fs, task, num_classes = task_sets
        train = self.get(run, step, train_fs, taps)
        return train, self.get(run, step, test_fs, taps), task, num_classes


def probe(cache, run, step, task_sets, grid, protocol, taps=LAYERS) -> dict:
    train, test, task, num_classes = cache.pair(run, step, task_sets, taps)
    return probe_layers(
        train, test, grid, task=task, num_classes=num_classes, protocol=probes.PROTOCOLS[protocol]
    )


def snapshot_steps(pre: stages.StageResult) -> list[int]:
    return checkpoints.available_steps(pre.result["run_dir"])


def ensure_dir(path) -> Path:
    os.makedirs(path, exist_ok=True)
    return Path(path)
