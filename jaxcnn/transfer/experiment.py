"""The AnB / BnB / AnB+ / BnB+ experiment of Yosinski et al. as a grid of claimable jobs
(docs/methods.md §Transferability).

`build_jobs` lists, for every A/B split: the two base networks (each half trained from scratch
with the run's solver), then for every treatment and n the transfer network trained on the target
half (B; with ``both_directions`` also A, the two halves swapping roles). Every job is a cached
stage in ``<root>/jobs`` (`jaxcnn.transfer.grid`), so any number of processes or hosts can run
`run_experiment` on the same root at once, and an interrupted grid resumes where it stopped.
When the grid is complete `gather` collects one row per run, and `jaxcnn.transfer.report`
writes the table, the figure and the findings.

Seeds: each network's seed is drawn from (the config's seed, split, target half, n), so the
treatments at one (split, target, n) share their re-initialised layers and data order: their
differences come from the treatment (a paired design).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from jaxcnn.storage import checkpoints, stages
from jaxcnn.train import data as train_data
from jaxcnn.train import log as training_log
from jaxcnn.train import loop
from jaxcnn.train.config import TrainConfig
from jaxcnn.transfer import grid, splits, treatments
from jaxcnn.transfer import report as transfer_report

DEPTHS = tuple(range(1, len(treatments.LAYERS) + 1))  # n = 1 (conv1) ... 7 (fc7)


def _f(default, help_text, **meta):
    return dataclasses.field(default=default, metadata={"help": help_text, **meta})


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """One transfer experiment. `train` is the solver and network of every run (base and
    transfer networks alike, as the authors trained them); its ``num_classes`` and ``seed``
    are set per job."""

    data: train_data.DataConfig
    train: TrainConfig
    split_seeds: tuple[int, ...] = _f((0,), "Seeds of random A/B splits (one split per seed).")
    class_files: tuple[str, ...] = _f(
        (), "Two files of class indices, A then B (replaces --split_seeds)."
    )
    both_directions: bool = _f(False, "Also transfer towards A (A and B swap roles).")
    treatments: tuple[str, ...] = _f(
        treatments.TREATMENTS, "Treatments to run.", choices=treatments.TREATMENTS
    )
    depths: tuple[int, ...] = _f(DEPTHS, "Values of n (1 = conv1 ... 7 = fc7).", choices=DEPTHS)
    random_control: bool = _f(
        False, "Also run random frozen lower layers (the 'random, untrained filters' control)."
    )
    best_k: int = _f(10, "Metric: mean of the k best evaluations of top-1 (authors: 10).")

    def __post_init__(self):
        for name in self.treatments:
            treatments.treatment(name)
        if self.class_files and len(self.class_files) != 2:
            raise ValueError(f"class_files needs two files (A, B), got {self.class_files}")
        if not self.class_files and not self.split_seeds:
            raise ValueError("give split_seeds or class_files")
        if any(not 1 <= n <= len(treatments.LAYERS) for n in self.depths):
            raise ValueError(f"depths must be in 1..{len(treatments.LAYERS)}, got {self.depths}")
        if self.train.regime != "pretrain" or self.train.init_from:
            raise ValueError("the train config is the from-scratch solver (regime 'pretrain')")
        if self.best_k < 1:
            raise ValueError(f"best_k must be >= 1, got {self.best_k}")

    def class_splits(self, num_classes: int) -> list[splits.ClassSplit]:
        if self.class_files:
            return [splits.split_from_files(*self.class_files, num_classes=num_classes)]
        return [splits.random_split(num_classes, seed=s) for s in self.split_seeds]

    def grid_treatments(self) -> tuple[str, ...]:
        return (*self.treatments, *([treatments.CONTROL] if self.random_control else []))

    def directions(self) -> tuple[str, ...]:
        """Target halves: "B", and "A" with both_directions."""
        return ("B", "A") if self.both_directions else ("B",)


def _seed(base: int, *parts) -> int:
    words = [base, *[int.from_bytes(str(p).encode(), "little") % 2**32 for p in parts]]
    return int(np.random.SeedSequence(words).generate_state(1)[0] % 2**31)


def build_jobs(cfg: TransferConfig, num_classes: int) -> list[grid.Job]:
    """Base jobs first (they are the others' dependencies), then the transfer jobs."""
    data = dataclasses.asdict(cfg.data)
    class_splits = cfg.class_splits(num_classes)
    jobs = [_base_job(cfg, data, s, half) for s in class_splits for half in ("A", "B")]
    for split in class_splits:
        for target in cfg.directions():
            for n in cfg.depths:
                jobs += [
                    _transfer_job(cfg, data, split, target, n, name)
                    for name in cfg.grid_treatments()
                ]
    return jobs


def _base_name(split_name: str, half: str) -> str:
    return f"base-{split_name}-{half}"


def _job_train(cfg: TransferConfig, classes, seed: int) -> TrainConfig:
    return dataclasses.replace(cfg.train, num_classes=len(classes), seed=seed)


def _base_job(cfg: TransferConfig, data: dict, split: splits.ClassSplit, half: str) -> grid.Job:
    classes = split.half(half)
    tcfg = _job_train(cfg, classes, _seed(cfg.train.seed, split.name, half))
    config = {
        "treatment": treatments.BASE,
        "n": 0,
        "split": split.name,
        "target": half,
        "classes": list(classes),
        "data": data,
        "train": tcfg.to_dict(),
    }
    run = functools.partial(_train_job, cfg, tcfg, classes, treatments.BASE, 0)
    return grid.Job(_base_name(split.name, half), config, run)


def _transfer_job(
    cfg: TransferConfig, data: dict, split: splits.ClassSplit, target: str, n: int, name: str
) -> grid.Job:
    """Treatment `name` at depth `n` trained on half `target`; "B" treatments copy from the
    target half's base network, "A" treatments from the other half's."""
    other = "A" if target == "B" else "B"
    source = treatments.treatment(name).source
    deps = () if source is None else (_base_name(split.name, target if source == "B" else other),)
    classes = split.half(target)
    tcfg = _job_train(cfg, classes, _seed(cfg.train.seed, split.name, target, n))
    config = {
        "treatment": name,
        "n": n,
        "split": split.name,
        "target": target,
        "classes": list(classes),
        "data": data,
        "train": tcfg.to_dict(),
    }
    run = functools.partial(_train_job, cfg, tcfg, classes, name, n)
    return grid.Job(f"{name}-n{n}-{split.name}-to{target}", config, run, deps)


def _train_job(
    cfg: TransferConfig,
    tcfg: TrainConfig,
    classes,
    name: str,
    n: int,
    out_dir: Path,
    deps: dict,
) -> dict:
    """Train one network of the grid in ``out_dir/run`` and return its evaluations."""
    if jax.process_count() > 1:
        raise ValueError("transfer jobs are single-process; spread the grid over processes")
    source = None
    if deps:
        (base,) = deps.values()
        source = checkpoints.restore_params(base.out_dir / "run")
    run_dir = str(Path(out_dir) / "run")
    loop.train(
        tcfg,
        run_dir,
        train_data=train_data.train_iterator(
            cfg.data, batch_size=tcfg.batch_size, seed=tcfg.seed, classes=classes
        ),
        eval_data=train_data.eval_batches(
            cfg.data, batch_size=tcfg.eval_batch_size or tcfg.batch_size, classes=classes
        ),
        initial=treatments.initial_state(tcfg, name, n, source),
    )
    evals = [r for r in training_log.read_records(run_dir) if r["split"] == "val"]
    return {
        "evals": [[r["step"], r["top1"]] for r in evals],
        "val_count": evals[-1]["count"] if evals else 0,
    }


def best_k_mean(top1s, k: int) -> float:
    """Mean of the `k` highest values (all of them when there are fewer)."""
    if not len(top1s):
        return float("nan")
    return float(np.mean(np.sort(np.asarray(top1s, np.float64))[::-1][:k]))


def gather(cfg: TransferConfig, jobs: list[grid.Job], job_root: str | Path) -> dict:
    """One row per run of the finished grid: treatment, n, split, target half, final top-1 and
    ``best`` (the mean of the `best_k` best evaluations). The base network of each target half
    is a ``baseB`` row at n = 0 (once per split and direction)."""
    dirs = grid.job_dirs(jobs, job_root)
    results = {j.name: grid.finished(dirs[j.name]) for j in jobs}
    missing = [k for k, v in results.items() if v is None]
    if missing:
        raise ValueError(f"{len(missing)} jobs are not finished (e.g. {missing[:3]})")
    rows, targets = [], {}
    for job in jobs:
        conf = job.config
        if conf["treatment"] == treatments.BASE:
            continue
        targets[(conf["split"], conf["target"])] = None
        rows.append(_row(conf["treatment"], conf["n"], conf, results[job.name].result, cfg))
    for split, target in targets:
        base = results[_base_name(split, target)].result
        rows.append(_row("baseB", 0, {"split": split, "target": target}, base, cfg))
    return {
        "rows": rows,
        "val_count": int(np.median([r["val_count"] for r in rows])),
        "best_k": cfg.best_k,
        "train_seconds": float(sum(r.seconds for r in results.values())),
    }


def _row(name: str, n: int, conf: dict, res: dict, cfg: TransferConfig) -> dict:
    top1s = [t for _, t in res["evals"]]
    return {
        "treatment": name,
        "n": n,
        "split": conf["split"],
        "target": conf["target"],
        "final": top1s[-1] if top1s else float("nan"),
        "best": best_k_mean(top1s, cfg.best_k),
        "evals": len(top1s),
        "val_count": res["val_count"],
    }


def run_experiment(
    cfg: TransferConfig,
    root: str | os.PathLike,
    *,
    jobs_dir: str | os.PathLike | None = None,
    poll_s: float = 5.0,
    max_jobs: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict | None:
    """Work on the grid in `jobs_dir` (default ``<root>/jobs``), with any other processes doing
    the same, until it is complete, then gather it and write ``<root>/report``
    (`jaxcnn.transfer.report.write`). Job folders are keyed by their own configs, so
    experiments that differ only in `best_k` or in the jobs they list can share a `jobs_dir`.

    Returns the gathered result (JSON-serialisable: ``rows``, ``val_count``, ``best_k``,
    ``train_seconds``), or None when this process stopped early (`max_jobs`) or another
    process is writing the report."""
    root = Path(root)
    jobs_dir = root / "jobs" if jobs_dir is None else Path(jobs_dir)
    jobs = build_jobs(cfg, train_data.num_classes(cfg.data))
    grid.work(jobs, jobs_dir, poll_s=poll_s, max_jobs=max_jobs, log=log)
    done, total = grid.progress(jobs, jobs_dir)
    if done < total:
        return None
    with grid.claim(root / "report") as mine:
        if not mine:
            return None
        result = gather(cfg, jobs, jobs_dir)
        transfer_report.write(result, root / "report")
    return result


def experiment_stage(
    cfg: TransferConfig,
    root: str | os.PathLike,
    *,
    upstream: tuple[stages.StageResult, ...] = (),
    log: Callable[[str], None] | None = None,
) -> stages.StageResult:
    """The whole experiment as one cached stage of a larger pipeline (e.g. the study's optional
    stage): folder ``<root>/transfer-<key>`` keyed by `cfg` and `upstream`, result = `gather`'s
    (report in ``<folder>/report``, sections via `jaxcnn.transfer.report.sections`). The
    networks live in ``<root>/transfer-jobs``, shared by every variant of the stage (a new
    `best_k` re-gathers without training). Other processes may help by running
    ``run_experiment(cfg, <folder>, jobs_dir=<root>/transfer-jobs)``."""

    def fn(out_dir: Path) -> dict:
        result = run_experiment(cfg, out_dir, jobs_dir=Path(root) / "transfer-jobs", log=log)
        if result is None:
            raise RuntimeError(f"another process is writing {out_dir}/report; run again")
        return result

    config = {"transfer": dataclasses.asdict(cfg)}
    return stages.run_stage(root, "transfer", config, fn, upstream=upstream)
