"""The three findings of Yosinski et al. (Fig. 2), decided from a run's numbers by rules fixed
before the run (docs/methods.md §Transferability, "Findings").

Every run contributes its metric ``best`` (mean of the k best evaluations of top-1 on the target
half's validation set). A comparison of two groups of runs, ``mean(a) - mean(b)``, is

- ``True`` (a above b) when the difference exceeds ``delta = Z * sigma * sqrt(1/N_a + 1/N_b)``,
- ``False`` (a below b) when it is below ``-delta``,
- ``None`` (undecided: within noise) otherwise,

with N the number of runs in each group and `noise` giving sigma. A finding made of several
comparisons holds when all hold, does not hold when one fails, and is undecided otherwise
(Kleene's three-valued AND).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

import numpy as np

from jaxcnn.documents import Finding
from jaxcnn.verdicts import all_of

Z = 2.0  # about a two-sided 95 % band
MIDDLE = (3, 4, 5)  # BnB's dip (authors: lowest at n = 4, 5)
TOP = (7,)
LOW = (1, 2)
HIGH = (6, 7)  # AnB's fall


@dataclasses.dataclass(frozen=True)
class Noise:
    sigma: float  # standard deviation of one run's metric
    replicate_sigma: float | None  # two-way residual std over (split, target) blocks, if >= 2
    validation_sigma: float  # binomial std of one top-1 estimate on the validation set
    blocks: int  # (split, target) blocks

    def describe(self) -> str:
        rep = (
            "unmeasured (one run per cell)"
            if self.replicate_sigma is None
            else f"{self.replicate_sigma:.4f} from {self.blocks} (split, target) blocks"
        )
        return (
            f"sigma {self.sigma:.4f} = max(run-to-run {rep}, validation-set binomial "
            f"{self.validation_sigma:.4f})"
        )


def noise(rows: Sequence[dict], val_count: int) -> Noise:
    """sigma of one run's metric: the larger of the run-to-run noise (residual std of the
    additive model cell (treatment, n) + block (split, target) over a complete grid, so that
    easier or harder target halves do not count as noise) and the binomial std
    sqrt(p (1 - p) / val_count) of a top-1 estimate at baseB's mean accuracy p."""
    p = float(np.mean([r["best"] for r in rows if r["treatment"] == "baseB"]))
    val_sigma = math.sqrt(max(p * (1 - p), 0.0) / max(val_count, 1))
    cells = sorted({(r["treatment"], r["n"]) for r in rows})
    blocks = sorted({(r["split"], r["target"]) for r in rows})
    rep = None
    if len(blocks) >= 2 and len(cells) >= 2:
        table = np.full((len(cells), len(blocks)), np.nan)
        for r in rows:
            cell = cells.index((r["treatment"], r["n"]))
            table[cell, blocks.index((r["split"], r["target"]))] = r["best"]
        if np.isnan(table).any():
            raise ValueError("the grid is incomplete: every cell needs one run per block")
        resid = (
            table - table.mean(axis=1, keepdims=True) - table.mean(axis=0, keepdims=True)
        ) + table.mean()
        dof = (len(cells) - 1) * (len(blocks) - 1)
        rep = float(math.sqrt((resid**2).sum() / dof))
    sigma = max(rep or 0.0, val_sigma)
    return Noise(sigma, rep, val_sigma, len(blocks))


def values(rows: Iterable[dict], treatment: str, depths: Iterable[int]) -> list[float]:
    depths = set(depths)
    return [r["best"] for r in rows if r["treatment"] == treatment and r["n"] in depths]


@dataclasses.dataclass(frozen=True)
class Comparison:
    diff: float  # mean(a) - mean(b); NaN when a group is empty
    delta: float
    above: bool | None  # True: a above b beyond noise, False: below, None: within noise

    def text(self, a: str, b: str) -> str:
        if math.isnan(self.diff):
            return f"{a} vs {b}: not run"
        return f"{a} - {b} = {self.diff:+.4f} (noise band +-{self.delta:.4f})"


def compare(a: Sequence[float], b: Sequence[float], sigma: float) -> Comparison:
    if not len(a) or not len(b):
        return Comparison(float("nan"), float("nan"), None)
    diff = float(np.mean(a) - np.mean(b))
    delta = Z * sigma * math.sqrt(1 / len(a) + 1 / len(b))
    return Comparison(diff, delta, True if diff > delta else False if diff < -delta else None)


def decide(rows: Sequence[dict], val_count: int) -> tuple[list[Finding], Noise]:
    """The three findings (module docstring) from the rows of `experiment.gather`."""
    nz = noise(rows, val_count)
    s = nz.sigma
    base = values(rows, "baseB", (0,))
    dip = compare(base, values(rows, "BnB", MIDDLE), s)
    recover = compare(values(rows, "BnB", TOP), values(rows, "BnB", MIDDLE), s)
    fall = compare(values(rows, "AnB", LOW), values(rows, "AnB", HIGH), s)
    specific = compare(values(rows, "BnB", TOP), values(rows, "AnB", TOP), s)
    boost = compare(values(rows, "AnB+", range(1, 8)), base, s)
    return [
        Finding(
            "BnB dips in the middle layers (n = 3-5) below baseB and recovers at the top "
            "(n = 7): fragile co-adaptation",
            all_of(dip.above, recover.above),
            f"{dip.text('baseB', 'BnB[3-5]')}; {recover.text('BnB[7]', 'BnB[3-5]')}",
        ),
        Finding(
            "AnB falls as n grows at the top (n = 6-7 below n = 1-2) and ends below BnB "
            "(n = 7): specificity",
            all_of(fall.above, specific.above),
            f"{fall.text('AnB[1-2]', 'AnB[6-7]')}; {specific.text('BnB[7]', 'AnB[7]')}",
        ),
        Finding(
            "AnB+ is above baseB (mean over n = 1-7): transfer plus fine-tuning helps",
            boost.above,
            boost.text("AnB+[1-7]", "baseB"),
        ),
    ], nz
