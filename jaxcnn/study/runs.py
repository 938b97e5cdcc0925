"""The study's data and training stages: data preparation, pre-training with snapshots, and
fine-tuning in three regimes on two targets (docs/methods.md §2-§3), each a cached stage
(`jaxcnn.study.stages`) whose folder is keyed by its settings; plus the feature sets the
analyses probe.

Re-running skips what is finished, an interrupted run resumes (training from its checkpoints),
and changing one setting re-runs only what depends on it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from jaxcnn import train
from jaxcnn.data import prepare, sources
from jaxcnn.features import FeatureSet
from jaxcnn.storage import checkpoints
from jaxcnn.study import stages
from jaxcnn.study.config import StudyConfig


def data_stage(cfg: StudyConfig, root: Path):
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
    cfg, root, name, tcfg: train.TrainConfig, dcfg: train.DataConfig, upstream, log_fn
):
    def fn(out_dir):
        run_dir = str(out_dir / "run")
        per_process = tcfg.batch_size
        summary = train.train(
            tcfg,
            run_dir,
            train_data=train.train_iterator(dcfg, batch_size=per_process, seed=tcfg.seed),
            eval_data=train.eval_batches(dcfg, batch_size=cfg.batch_size),
            on_record=log_fn,
        )
        val = summary["val"] or {}
        return {"run_dir": run_dir, "val_top1": val.get("top1"), "val_top5": val.get("top5")}

    # How the batch is split over devices is not part of a stage's key (keys stay as they were
    # before the setting existed; the modes agree to float rounding, jaxcnn.train.parallel).
    settings = {k: v for k, v in tcfg.to_dict().items() if k != "parallelism"}
    if tcfg.init_from:  # the source run's folder is an upstream stage: key on that instead
        conf = {**settings, "init_from": "", "data": dataclasses.asdict(dcfg)}
    else:
        conf = {**settings, "data": dataclasses.asdict(dcfg)}
    return stages.run_stage(root, name, conf, fn, upstream=upstream)


def _data_config(cfg, dataset, *, gt_boxes=False, eval_split="validation", train_split="train"):
    return train.DataConfig(
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
    tcfg = train.TrainConfig(
        num_classes=train.num_classes(dcfg),
        num_steps=cfg.pretrain_steps,
        batch_size=cfg.pretrain_batch,
        preset=cfg.network.preset,
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
    tcfg = train.TrainConfig(
        num_classes=train.num_classes(dcfg),
        num_steps=cfg.scratch_steps if scratch else steps,
        batch_size=cfg.finetune_batch,
        preset=cfg.network.preset,
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


def snapshot_steps(pre: stages.StageResult) -> list[int]:
    return checkpoints.available_steps(pre.result["run_dir"])
