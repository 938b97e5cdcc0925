"""`run_study`: the paper's study end to end as cached stages.

Stages: data -> pretrain (snapshots) -> fine-tune det x {ft, fc-ft, scratch}, det ft from
earlier snapshots (Table 4), scene x {ft, fc-ft, scratch} -> every registered analysis
(`jaxcnn.study.analyses`: probes over snapshots, over ablations, of the fine-tuned networks,
selectivity) -> report. Each analysis stage returns plain JSON numbers and writes its figures
into its folder.

Analyses run on worker threads (`_Analyses`), each as soon as the stages it needs are done
(selectivity after the first fine-tuning, the GT-box probes after the PASCAL stand-in's
fine-tunings, an analysis that reads another's results after that one): one beside the
fine-tunings (which run in the calling thread), two at once after them. A single
stream of work keeps a 2-core CPU about 80 % busy (compiles, Python and small ops are serial);
two streams fill the gaps. Results do not depend on the overlap: each stage's numbers come from
its own computations, which XLA runs the same way whatever else runs (a study run this way gave
the numbers of the same study run one stage at a time, bit for bit; tests/study/run_test.py).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jaxcnn.features import FeatureCache
from jaxcnn.storage import locks, stages
from jaxcnn.study import report, runs
from jaxcnn.study.analyses import ANALYSES
from jaxcnn.study.config import REGIMES, StudyConfig
from jaxcnn.study.registry import NEEDS, Context
from jaxcnn.train import log as training_log

# Weights of the progress line's ETA: the wall-clock minutes a stage's line comes after the line
# before it in a clean run of experiments/flags/reproduce_toy.flags on a 2-core CPU. Analyses
# overlap the fine-tunings and each other, so they add less than they run: probe-snapshots and
# probe-ablations finish during the fine-tunings, probe-transfer, selectivity, probe-layers and
# probe-regimes share the last minutes. Set on 4 December 2026 from a run with pre-training
# split over two CPU devices (1,094 images/s; the data stage from the clean runs before it,
# about 1.2 min); each analysis declares its own weight.
WEIGHTS = {"data": 1.2, "pretrain": 1.4, "finetune": 0.37, "report": 0.05}


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
        eta_txt = "" if np.isnan(eta) else f", at {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min"
        self.emit(f"[{100 * frac:5.1f}%] {name:<40s} {how}{eta_txt}")


def _pretraining(cfg: StudyConfig, root: Path, done: Callable, emit: Callable) -> dict:
    """The data and pre-training stages, by name."""

    def train_log(record):  # pre-training progress: every logged step and the validation
        emit("    pretrain " + training_log.format_progress(record, cfg.pretrain_steps))

    data = done(runs.data_stage(cfg, root), "data")
    return {
        "data": data,
        "pretrain": done(runs.pretrain_stage(cfg, root, data, train_log), "pretrain"),
    }


def _finetuning(cfg: StudyConfig, root: Path, trained: dict, ft_runs: dict, done, side) -> None:
    """The fine-tuning stages, into `ft_runs` as they finish: the PASCAL stand-in's (every
    regime, then Table 4's from earlier snapshots), then the SUN stand-in's. `side` hears of the
    PASCAL stand-in's ft run and of all its fine-tunings as soon as they are there."""
    data, pre = trained["data"], trained["pretrain"]
    for regime in REGIMES:
        ft_runs[("det", regime)] = done(
            runs.finetune_stage(cfg, root, data, pre, "det", regime, None), "finetune"
        )
        if regime == "ft":
            side.provide("finetune-det-ft")
    for step in cfg.table4_snapshots:
        ft_runs[("det", "ft", step)] = done(
            runs.finetune_stage(cfg, root, data, pre, "det", "ft", None, from_step=step),
            "finetune",
        )
    side.provide("finetunes-det")
    for regime in REGIMES:
        ft_runs[("scene", regime)] = done(
            runs.finetune_stage(cfg, root, data, pre, "scene", regime, None), "finetune"
        )


# Analyses at once after the fine-tunings; beside them, one fewer (module docstring).
WORKERS = 2


class _Analyses:
    """Runs analyses on `WORKERS` daemon threads: a worker that holds a free slot takes, of the
    analyses whose needs are met (`registry.NEEDS`: the pre-training is done when this starts,
    the caller `provide`s the others as its fine-tunings finish), the first of the highest
    `priority` in registry order, waiting until one is ready; the caller holds one slot while it
    trains. Daemon threads, so that an interrupted study exits at once (every stage's result is
    written atomically: an analysis cut short is run again next time)."""

    def __init__(self, analyses, run_one: Callable):
        self.run_one = run_one
        self.todo = list(analyses)
        self.ready = threading.Condition()
        self.met = {"pretrain"}
        self.stopped = False
        self.slots = threading.Semaphore(WORKERS)
        self.slots.acquire()  # the training's
        self.results: dict = {}
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(WORKERS)]
        for thread in self.threads:
            thread.start()

    def _next(self):
        """The next analysis to run, waiting until one is ready; None when there is none."""
        with self.ready:
            while self.todo and not (self.errors or self.stopped):
                ready = [a for a in self.todo if {*a.needs, *a.after} <= self.met]
                if ready:
                    analysis = max(ready, key=lambda a: a.priority)  # the first of the highest
                    self.todo.remove(analysis)
                    return analysis
                self.ready.wait()
            return None

    def _work(self) -> None:
        while True:
            with self.slots:  # a slot first, then the first ready analysis (registry order)
                analysis = self._next()
                if analysis is None:
                    return
                try:
                    self.results[analysis.name] = self.run_one(analysis)
                except BaseException as e:  # noqa: BLE001 (re-raised in the caller's thread)
                    self.errors.append(e)
                    with self.ready:
                        self.ready.notify_all()
                else:
                    self.provide(analysis.name)  # for the analyses that come `after` it

    def provide(self, need: str) -> None:
        """`need` is met from now on."""
        with self.ready:
            self.met.add(need)
            self.ready.notify_all()

    def training_done(self) -> None:
        with self.ready:
            self.met.update(NEEDS)
            self.ready.notify_all()
        self.slots.release()

    def stop(self) -> None:
        """No analysis starts any more (the training failed); running ones end with the process."""
        self.stopped = True
        self.training_done()

    def join(self) -> dict:
        """Every analysis's stage result by name; re-raises the first error of a worker."""
        for thread in self.threads:
            while thread.is_alive():
                thread.join(timeout=0.5)  # wakes for KeyboardInterrupt
        if self.errors:
            raise self.errors[0]
        return self.results


def run_study(cfg: StudyConfig, root: str, *, emit: Callable[[str], None] = print) -> dict:
    """Run (or resume) the whole study in `root`; returns the report's paths and timings.

    The workdir belongs to this process while it runs (`jaxcnn.storage.locks`): a second study
    in the same workdir raises `DirectoryInUseError` at once, naming this one."""
    with locks.holding(root, what="study workdir"):
        return _run_study(cfg, Path(root), emit)


def _run_study(cfg: StudyConfig, root: Path, emit: Callable[[str], None]) -> dict:
    nft = 2 * len(REGIMES) + len(cfg.table4_snapshots)
    analyses = [a for a in ANALYSES if a.enabled(cfg)]
    names = [a.name for a in analyses]
    for a in analyses:
        if set(a.after) - set(names):
            raise ValueError(f"{a.name} comes after {sorted(set(a.after) - set(names))}: enable it")
    weights = {**WEIGHTS, **{a.name: a.weight for a in analyses}}
    total = sum(weights.values()) + WEIGHTS["finetune"] * (nft - 1)
    progress = Progress(total, emit)
    timings = []

    lock = threading.Lock()  # analyses finish on worker threads

    def done(res: stages.StageResult, weight_key: str):
        name = res.name if weight_key != "finetune" else Path(res.out_dir).name.rsplit("-", 1)[0]
        with lock:
            timings.append((name, res.seconds, res.cached))
            progress.stage(name, weights[weight_key], res.cached, res.seconds)
        return res

    def run_one(analysis):
        res = stages.run_stage(
            root,
            analysis.name,
            analysis.config(cfg),
            lambda d: analysis.run(ctx, d),
            upstream=ctx.upstream(analysis.needs, analysis.after),
        )
        ctx.stages[analysis.name] = res  # before `after` analyses start
        return done(res, analysis.name)

    runs.check_datasets(cfg)  # before any stage: an unprepared real dataset is named now
    emit(f"study in {root}")
    trained = _pretraining(cfg, root, done, emit)
    ctx = Context(cfg, FeatureCache(root, batch_size=cfg.batch_size), trained, {})
    side = _Analyses(analyses, run_one)
    try:
        _finetuning(cfg, root, trained, ctx.runs, done, side)
    except BaseException:
        side.stop()
        raise
    side.training_done()
    results = side.join()
    # Training stages in their order, then the analyses in registry order (as they may finish
    # in another): one row order for every run (experiments/seeds_table.py lines runs up).
    timings.sort(key=lambda t: names.index(t[0]) if t[0] in names else -1)
    wall = time.perf_counter() - progress.start
    md, html = report.write(
        root, analyses, results, trained["pretrain"], ctx.runs, timings, wall_seconds=wall
    )
    progress.stage("report", WEIGHTS["report"], False, 0.0)
    return {"report_md": str(md), "report_html": str(html), "timings": timings}
