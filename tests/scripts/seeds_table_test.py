"""experiments/seeds_table.py: runs side by side, disagreeing verdicts marked unstable."""

import os
import sys

EXPERIMENTS = os.path.join(os.path.dirname(__file__), "..", "..", "experiments")
sys.path.insert(0, EXPERIMENTS)

import seeds_table  # noqa: E402


def _run(top1, verdicts, seconds):
    return {
        "pretrain_val_top1": top1,
        "pretrain_images_per_s": 350.0,
        "findings": [
            {"claim": f"claim {i}", "verdict": v, "evidence": f"x {i}"}
            for i, v in enumerate(verdicts)
        ],
        "timings": [
            {"stage": "data", "seconds": seconds[0]},
            {"stage": "pretrain", "seconds": seconds[1]},
        ],
    }


def test_tables_mark_disagreement_and_give_shares_of_the_total():
    runs = [_run(0.2, ["holds", "undecided"], (25, 75)), _run(0.3, ["holds", "holds"], (50, 50))]
    text = seeds_table.tables(runs, ["a", "b"])
    lines = text.splitlines()
    assert "| pre-training top-1 | 0.200 | 0.300 |" in lines
    assert "| total, wall (s) | 100 (1.7 min) | 100 (1.7 min) |" in lines
    assert "| pre-training images/s | 350 | 350 |" in lines
    assert any(line.startswith("| claim 0 |") and line.endswith("| all holds |") for line in lines)
    assert any(line.startswith("| claim 1 |") and "**unstable**" in line for line in lines)
    assert "| data | 25 (25 %) | 50 (50 %) |" in lines


def test_total_is_the_wall_time_when_stages_overlap():
    runs = [{**_run(0.2, ["holds"], (60, 90)), "wall_seconds": 120.0}]
    lines = seeds_table.tables(runs, ["a"]).splitlines()
    assert "| total, wall (s) | 120 (2.0 min) |" in lines
    assert "| pretrain | 90 (75 %) |" in lines
