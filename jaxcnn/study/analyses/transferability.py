"""Yosinski et al.'s transfer experiment (AnB / BnB / AnB+ / BnB+, docs/methods.md §11) as the
study's optional analysis (``--transfer``): the source dataset's classes split into halves, every
network trained with the study's pre-training solver for `transfer_steps` iterations (as
experiments/flags/transfer_toy.flags: batch 64, top-1 every quarter, mean of the 2 best)."""

from __future__ import annotations

from pathlib import Path

from jaxcnn import train
from jaxcnn.study import runs
from jaxcnn.study.config import StudyConfig
from jaxcnn.study.registry import Analysis, Context
from jaxcnn.transfer import experiment
from jaxcnn.transfer import report as transfer_report


def transfer_config(cfg: StudyConfig) -> experiment.TransferConfig:
    steps = cfg.transfer_steps
    data = train.DataConfig(
        dataset=runs.dataset_name(cfg, cfg.source),
        data_dir=cfg.data_dir,
        crop=cfg.crop,
        resize=cfg.resize,
    )
    solver = train.TrainConfig(
        num_classes=0,  # set per network (the size of its half)
        num_steps=steps,
        batch_size=64,
        preset=cfg.network.preset,
        model_overrides=cfg.model_overrides(),
        base_lr=cfg.pretrain_lr,
        lr_step_size=max(steps * 3 // 4, 1),
        seed=cfg.seed,
        eval_every=max(steps // 4, 1),
        checkpoint_every=max(steps // 2, 1),
        log_every=max(steps // 4, 1),
        num_local_devices=1,
    )
    return experiment.TransferConfig(data, solver, best_k=2)


def run(ctx: Context, out_dir: Path) -> dict:
    result = experiment.run_experiment(transfer_config(ctx.cfg), out_dir)
    if result is None:
        raise RuntimeError(f"another process is writing {out_dir}/report; run again")
    return result


def report(res) -> tuple:
    return transfer_report.sections(res["result"], Path(res["out_dir"]) / "report")


# name (its stage), needs, run, report, weight of the ETA (minutes: ~18 on 2 cores)
ANALYSIS = Analysis(
    "transfer",
    (),
    run,
    report,
    weight=18.0,
    config=lambda cfg: {"transfer": repr(transfer_config(cfg))},
    enabled=lambda cfg: cfg.transfer,
)
