"""Tests for jaxcnn.transfer.findings on hand-made curves: the authors' curves hold, flat curves
are undecided, reversed curves do not hold; the noise estimate against a hand computation."""

import math

import numpy as np
import pytest

from jaxcnn.transfer import findings

# Yosinski et al.'s means (mean of the 10 best top-1); AnB+ and BnB+ inside their ranges.
PAPER = {
    "baseB": {0: 0.625},
    "BnB": dict(zip(range(1, 8), (0.627, 0.624, 0.621, 0.605, 0.594, 0.619, 0.623), strict=True)),
    "AnB": dict(zip(range(1, 8), (0.628, 0.624, 0.619, 0.600, 0.578, 0.581, 0.543), strict=True)),
    "BnB+": {n: 0.625 for n in range(1, 8)},
    "AnB+": {n: 0.642 for n in range(1, 8)},
}


def _rows(curves, blocks=(("s0", "B"), ("s1", "B")), jitter=0.0, block_shift=None):
    """One run per cell and block; block b's runs shifted by block_shift[b] and alternately
    by +-jitter (so the two-way residuals are exactly +-jitter)."""
    rows = []
    for b, (split, target) in enumerate(blocks):
        shift = 0.0 if block_shift is None else block_shift[b]
        for i, (name, by_n) in enumerate(sorted(curves.items())):
            for n, value in by_n.items():
                sign = 1 if (b + i + n) % 2 == 0 else -1
                rows.append(
                    {
                        "treatment": name,
                        "n": n,
                        "split": split,
                        "target": target,
                        "best": value + shift + sign * jitter,
                    }
                )
    return rows


def test_paper_curves_hold():
    found, nz = findings.decide(_rows(PAPER), val_count=25_000)
    assert [f.holds for f in found] == [True, True, True]
    assert nz.replicate_sigma == pytest.approx(0.0, abs=1e-12) and nz.blocks == 2
    # sigma falls back to the binomial std at baseB's accuracy: sqrt(.625 * .375 / 25000)
    assert nz.sigma == pytest.approx(math.sqrt(0.625 * 0.375 / 25_000))


def test_flat_curves_are_undecided_and_reversed_curves_fail():
    flat = {name: {n: 0.5 for n in by_n} for name, by_n in PAPER.items()}
    found, _ = findings.decide(_rows(flat), val_count=1000)
    assert [f.holds for f in found] == [None, None, None]
    reversed_ = {name: {n: 1.25 - v for n, v in by_n.items()} for name, by_n in PAPER.items()}
    found, _ = findings.decide(_rows(reversed_), val_count=25_000)
    assert [f.holds for f in found] == [False, False, False]


def test_large_run_to_run_noise_makes_the_paper_curves_undecided():
    # residuals +-0.05: the authors' 0.02-0.08 effects drown in it
    found, nz = findings.decide(_rows(PAPER, jitter=0.05), val_count=25_000)
    assert [f.holds for f in found] == [None, None, None]
    assert nz.sigma == nz.replicate_sigma


def test_noise_is_the_two_way_residual_std_and_ignores_block_offsets():
    # Hand computation: with residuals exactly +-j in a C x 2 table, the residual sum of squares
    # is 2 C j^2 over (C - 1) degrees of freedom.
    # (six cells whose +-jitter signs sum to zero in each block, so the residuals are exact)
    curves = {
        "baseB": {0: 0.3},
        "BnB": {1: 0.2, 2: 0.4},
        "AnB": {1: 0.25, 2: 0.1},
        "AnB+": {1: 0.3},
    }
    rows = _rows(curves, jitter=0.01)
    cells = 6
    want = math.sqrt(2 * cells * 0.01**2 / (cells - 1))
    assert findings.noise(rows, 10**9).replicate_sigma == pytest.approx(want)
    shifted = _rows(curves, jitter=0.01, block_shift=(0.0, 0.2))  # a harder target half
    assert findings.noise(shifted, 10**9).replicate_sigma == pytest.approx(want)
    one_block = [r for r in rows if r["split"] == "s0"]
    nz = findings.noise(one_block, 400)
    assert nz.replicate_sigma is None
    p = next(r["best"] for r in one_block if r["treatment"] == "baseB")  # 0.3 -+ jitter
    assert nz.sigma == pytest.approx(math.sqrt(p * (1 - p) / 400))


def test_compare_and_kleene_and():
    c = findings.compare([0.6, 0.6], [0.5], sigma=0.01)
    assert c.above is True and c.delta == pytest.approx(2 * 0.01 * math.sqrt(1 / 2 + 1))
    assert findings.compare([0.5], [0.6], sigma=0.01).above is False
    assert findings.compare([0.5], [0.51], sigma=0.01).above is None  # within 0.028
    assert np.isnan(findings.compare([], [0.5], sigma=0.01).diff)
    assert findings.all_of(True, True) is True
    assert findings.all_of(True, None) is None
    assert findings.all_of(None, False) is False


def test_missing_cells_are_undecided_and_incomplete_grids_rejected():
    only_bnb = {"baseB": {0: 0.6}, "BnB": {1: 0.6, 7: 0.6}}
    found, _ = findings.decide(_rows(only_bnb, blocks=(("s0", "B"),)), val_count=100)
    assert [f.holds for f in found] == [None, None, None]
    assert "not run" in found[0].evidence
    rows = _rows(only_bnb)[:-1]
    with pytest.raises(ValueError, match="incomplete"):
        findings.noise(rows, 100)
