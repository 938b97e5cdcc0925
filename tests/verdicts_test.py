"""The three-valued verdict rules (docs/methods.md §13) on hand-made numbers."""

import math

import numpy as np
import pytest

from jaxcnn import verdicts as V


def test_estimate_mean_and_sample_std():
    e = V.estimate([1.0, 2.0, 3.0])
    assert e.mean == 2.0 and e.std == pytest.approx(1.0) and e.n == 3
    assert e.band == pytest.approx(2.0)
    assert V.estimate(4.0).std == 0.0 and V.estimate([4.0]).text() == "4.0"
    assert V.estimate([1.0, 2.0, 3.0]).text() == "2.0 ± 1.0"
    assert math.isnan(V.estimate([1.0, float("nan")]).mean)


def test_above_clear_holds_clear_fails_and_undecided():
    # mean 5, std 1: band 2 -> [3, 7]
    xs = [4.0, 5.0, 6.0]
    assert V.above(xs, 2.9) is True  # the whole band above 2.9
    assert V.above(xs, 7.1) is False  # the whole band below 7.1
    assert V.above(xs, 4.0) is None  # 4 lies inside [3, 7]
    assert V.above(xs, 3.0) is None  # on the edge: not beyond it
    assert V.below(xs, 7.1) is True and V.below(xs, 2.9) is False and V.below(xs, 5) is None


def test_single_measurement_is_a_plain_comparison():
    assert V.above(0.1) is True and V.above(-0.1) is False and V.above(0.0) is None


def test_within_is_an_equivalence_claim():
    assert V.within([0.5, 1.0, 1.5], 4.0) is True  # |1| + 2*0.5 = 2 <= 4
    assert V.within([-6.0, -5.0, -4.0], 2.0) is False  # |-5| - 2 = 3 > 2
    assert V.within([1.0, 2.0, 3.0], 2.0) is None  # band [0, 4] straddles 2


def test_paired_differences_cancel_a_shared_split_effect():
    split_effect = np.array([-3.0, 0.0, 3.0, -1.0, 1.0])
    a, b = 40 + split_effect + 0.5, 40 + split_effect
    assert V.above(a, 40) is None  # unpaired: the split effect hides the difference
    assert V.above(V.paired(a, b)) is True  # paired: exactly +0.5 on every split
    with pytest.raises(ValueError, match="equal counts"):
        V.paired([1.0, 2.0], [1.0, 2.0, 3.0])


def test_nan_is_undecided_and_kleene_and():
    assert V.above([float("nan"), 1.0]) is None and V.within([float("nan")], 1.0) is None
    assert V.all_of(True, True) is True
    assert V.all_of(True, None) is None
    assert V.all_of(None, False) is False
    assert V.all_of() is True
