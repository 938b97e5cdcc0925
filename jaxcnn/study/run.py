"""`run_study`: the paper's study end to end as cached stages.

Stages: data -> pretrain (snapshots) -> fine-tune {det, scene} x {ft, fc-ft, scratch} and ft
from earlier snapshots (Table 4) -> every registered analysis (`jaxcnn.study.analyses`: probes
over snapshots, over ablations, of the fine-tuned networks, selectivity) -> report. Each analysis
stage returns plain JSON numbers and writes its figures into its folder.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jaxcnn.features import FeatureCache
from jaxcnn.storage import locks, stages
from jaxcnn.study import report, runs
from jaxcnn.study.analyses import ANALYSES
from jaxcnn.study.config import REGIMES, StudyConfig
from jaxcnn.study.registry import Context
from jaxcnn.train import log as training_log

# Cost of the training stages for the progress line's ETA, in minutes of a clean run of
# experiments/flags/reproduce_toy.flags on a 2-core CPU (mean of seeds 0-2 at 529-603
# pre-training images/s, 3 December 2026); each analysis declares its own weight.
WEIGHTS = {"data": 1.05, "pretrain": 2.5, "finetune": 0.37, "report": 0.05}


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


def _training(cfg: StudyConfig, root: Path, done: Callable, emit: Callable) -> tuple:
    """The data, pre-training and fine-tuning stages -> (stages by name, fine-tuning runs)."""

    def train_log(record):  # pre-training progress: every logged step and the validation
        emit("    pretrain " + training_log.format_progress(record, cfg.pretrain_steps))

    data = done(runs.data_stage(cfg, root), "data")
    pre = done(runs.pretrain_stage(cfg, root, data, train_log), "pretrain")
    ft_runs = {}
    for target in ("det", "scene"):
        for regime in REGIMES:
            ft_runs[(target, regime)] = done(
                runs.finetune_stage(cfg, root, data, pre, target, regime, None), "finetune"
            )
    for step in cfg.table4_snapshots:
        ft_runs[("det", "ft", step)] = done(
            runs.finetune_stage(cfg, root, data, pre, "det", "ft", None, from_step=step),
            "finetune",
        )
    return {"data": data, "pretrain": pre}, ft_runs


def run_study(cfg: StudyConfig, root: str, *, emit: Callable[[str], None] = print) -> dict:
    """Run (or resume) the whole study in `root`; returns the report's paths and timings.

    The workdir belongs to this process while it runs (`jaxcnn.storage.locks`): a second study
    in the same workdir raises `DirectoryInUseError` at once, naming this one."""
    with locks.holding(root, what="study workdir"):
        return _run_study(cfg, Path(root), emit)


def _run_study(cfg: StudyConfig, root: Path, emit: Callable[[str], None]) -> dict:
    nft = 2 * len(REGIMES) + len(cfg.table4_snapshots)
    analyses = [a for a in ANALYSES if a.enabled(cfg)]
    weights = {**WEIGHTS, **{a.name: a.weight for a in analyses}}
    total = sum(weights.values()) + WEIGHTS["finetune"] * (nft - 1)
    progress = Progress(total, emit)
    timings = []

    def done(res: stages.StageResult, weight_key: str):
        name = res.name if weight_key != "finetune" else Path(res.out_dir).name.rsplit("-", 1)[0]
        timings.append((name, res.seconds, res.cached))
        progress.stage(name, weights[weight_key], res.cached, res.seconds)
        return res

    runs.check_datasets(cfg)  # before any stage: an unprepared real dataset is named now
    emit(f"study in {root}")
    trained, ft_runs = _training(cfg, root, done, emit)
    ctx = Context(cfg, FeatureCache(root, batch_size=cfg.batch_size), trained, ft_runs)
    results = {}
    for analysis in analyses:
        results[analysis.name] = done(
            stages.run_stage(
                root,
                analysis.name,
                analysis.config(cfg),
                lambda d, a=analysis: a.run(ctx, d),
                upstream=ctx.upstream(analysis.needs),
            ),
            analysis.name,
        )
    md, html = report.write(root, analyses, results, trained["pretrain"], ft_runs, timings)
    progress.stage("report", WEIGHTS["report"], False, 0.0)
    return {"report_md": str(md), "report_html": str(html), "timings": timings}
