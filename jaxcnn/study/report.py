"""The study's report: a setup section, the findings checklist, each registered analysis's
sections with this run's numbers beside the paper's (docs/methods.md §12), and the stage
timings; each verdict is computed from the numbers by its analysis (rules: §13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxcnn import storage
from jaxcnn.documents import Section, Table, verdict, write_report
from jaxcnn.storage.stages import StageResult
from jaxcnn.study.config import REGIMES
from jaxcnn.train import log as training_log

STAND_IN = (
    "This run uses the embedded default, toyworld (a generated stand-in for ImageNet, "
    "PASCAL VOC and SUN397) and a small network of CaffeNet's topology, so its numbers "
    "are not expected to match the paper's; the findings are what can be compared."
)


def _setup(pre: StageResult, runs: dict) -> Section:
    pre_val = pre.result.get("val_top1")
    ft_val = {
        f"{t}/{r}": runs[(t, r)].result.get("val_top1") for t in ("det", "scene") for r in REGIMES
    }
    vals = ", ".join(f"{k} {v:.3f}" for k, v in ft_val.items() if v is not None)
    return Section(
        "Setup",
        STAND_IN
        + "\n\nValidation top-1 of the networks' own classifiers: pre-training "
        + ("–" if pre_val is None else f"{pre_val:.3f}")
        + f"; fine-tuning: {vals}.",
    )


def _images_per_s(pre: StageResult) -> float | None:
    """Median logged pre-training speed: the figure to compare machines by."""
    speeds = [
        r["img_per_s"]
        for r in training_log.read_records(pre.result["run_dir"])
        if r.get("split") == "train" and "img_per_s" in r
    ]
    return float(np.median(speeds)) if speeds else None


def write(root, analyses, results: dict, pre: StageResult, runs: dict, timings, *, wall_seconds):
    """Sections of every analysis (in registry order) from its stage `results[name]`, the
    findings checklist, timings; writes report.md, report.html and summary.json (top-1,
    verdicts, timings and this call's wall time: what `experiments/seeds_table.py` compares)
    into `root`."""
    sections, findings = [], []
    for analysis in analyses:
        res = results[analysis.name]
        secs, found = analysis.report({"result": res.result, "out_dir": res.out_dir})
        sections += [secs] if isinstance(secs, Section) else list(secs)
        findings += list(found)
    timing_rows = tuple(
        (name, f"{sec:.1f}", "cached" if cached else "ran") for name, sec, cached in timings
    )
    total = sum(sec for _, sec, _ in timings)
    storage.write_json(
        Path(root) / "summary.json",
        {
            "pretrain_val_top1": pre.result.get("val_top1"),
            "pretrain_images_per_s": _images_per_s(pre),
            "findings": [
                {"claim": f.claim, "verdict": verdict(f), "evidence": f.evidence} for f in findings
            ],
            "timings": [{"stage": n, "seconds": s, "cached": c} for n, s, c in timings],
            "wall_seconds": wall_seconds,
        },
        indent=1,
    )
    return write_report(
        Path(root),
        "jaxcnn study report",
        [
            _setup(pre, runs),
            Section("Findings checklist", findings=tuple(findings)),
            *sections,
            Section(
                "Stage timings",
                f"This call took {wall_seconds:.0f} s. Stage run times add up to {total:.0f} s: "
                "analyses run beside the fine-tunings and beside each other; cached stages show "
                "the time of the run that made them.",
                (Table(("stage", "seconds", "this call"), timing_rows),),
            ),
        ],
    )
