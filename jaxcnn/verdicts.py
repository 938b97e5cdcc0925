"""Three-valued verdicts from repeated measurements (docs/methods.md §13).

A deciding number is measured several times (the probe's repeated train/test splits, CKA on
disjoint image subsets) and summarised as mean ± standard deviation. A claim about it is

- ``True`` (*holds*) when the claim is true of every value within ``Z`` standard deviations of
  the mean,
- ``False`` (*does not hold*) when it is false of every such value,
- ``None`` (*undecided*) otherwise: the noise covers both answers.

The band is ``Z`` times the standard deviation of one measurement, not the standard error of
the mean: the repetitions share one trained network, so they do not see the noise of training
(seed, floating-point differences between machines); the wider band stands in for it. With one
measurement the band is zero and the rules are plain comparisons.

Comparisons of two quantities measured on the same splits use the per-split differences
(`paired`), whose spread is smaller than either quantity's. A claim made of several parts is
combined with Kleene's three-valued AND (`all_of`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

Z = 2.0


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Mean and standard deviation (ddof 1; 0 for a single value) of repeated measurements."""

    mean: float
    std: float
    n: int

    @property
    def band(self) -> float:
        return Z * self.std

    def text(self, digits: int = 1) -> str:
        if self.n <= 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


def estimate(values) -> Estimate:
    """`values`: a number or a sequence of repeated measurements (NaNs are an error)."""
    v = np.atleast_1d(np.asarray(values, float))
    if v.size == 0 or not np.all(np.isfinite(v)):
        return Estimate(float("nan"), float("nan"), int(v.size))
    std = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
    return Estimate(float(np.mean(v)), std, int(v.size))


def paired(a, b) -> np.ndarray:
    """Per-measurement differences ``a_i - b_i`` (same splits); a scalar side broadcasts."""
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    if a.size != b.size and min(a.size, b.size) != 1:
        raise ValueError(f"paired measurements need equal counts, got {a.size} and {b.size}")
    return a - b


def above(values, threshold: float = 0.0) -> bool | None:
    """Is the quantity above `threshold`? True / False beyond the band, None within it."""
    e = estimate(values)
    if math.isnan(e.mean):
        return None
    if e.mean - e.band > threshold:
        return True
    if e.mean + e.band < threshold:
        return False
    return None


def below(values, threshold: float = 0.0) -> bool | None:
    """Is the quantity below `threshold`? The mirror of `above`."""
    return above(-np.atleast_1d(np.asarray(values, float)), -threshold)


def within(values, margin: float) -> bool | None:
    """Is ``|quantity| <= margin`` (an equivalence claim)? True when the whole band lies inside
    ``[-margin, margin]``, False when it lies wholly outside, None otherwise."""
    e = estimate(values)
    if math.isnan(e.mean):
        return None
    if abs(e.mean) + e.band <= margin:
        return True
    if abs(e.mean) - e.band > margin:
        return False
    return None


def all_of(*verdicts: bool | None) -> bool | None:
    """Kleene AND: False if any is False, True if all are True, else None."""
    if any(v is False for v in verdicts):
        return False
    return True if all(v is True for v in verdicts) else None


def describe(name: str, values: Sequence[float] | float, digits: int = 1) -> str:
    """``name m ± s`` for a report's evidence column."""
    return f"{name} {estimate(values).text(digits)}"
