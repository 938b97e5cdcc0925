"""Tests for jaxcnn.transfer.splits: seeded A/B splits and splits from class-index files."""

import numpy as np
import pytest

from jaxcnn.transfer import splits


@pytest.mark.parametrize("num_classes", [2, 7, 100])
def test_random_split_is_a_disjoint_cover_of_halves(num_classes):
    s = splits.random_split(num_classes, seed=3)
    assert len(s.a) == num_classes // 2 and len(s.b) == num_classes - num_classes // 2
    assert not set(s.a) & set(s.b)
    assert sorted(s.a + s.b) == list(range(num_classes))
    assert list(s.a) == sorted(s.a) and list(s.b) == sorted(s.b)
    assert s.half("A") == s.a and s.half("B") == s.b


def test_random_split_is_deterministic_per_seed_and_matches_numpy():
    assert splits.random_split(100, seed=0) == splits.random_split(100, seed=0)
    assert splits.random_split(100, seed=0).a != splits.random_split(100, seed=1).a
    # Independent reference: the first half of numpy's seeded permutation.
    order = np.random.default_rng(5).permutation(10)
    assert splits.random_split(10, seed=5, size_a=3).a == tuple(sorted(order[:3].tolist()))


def test_split_from_files(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("# man-made\n4, 1\n 7 # trailing comment\n")
    b.write_text("0 2 3\n\n9\n")
    s = splits.split_from_files(a, b, num_classes=10)
    assert s.a == (1, 4, 7) and s.b == (0, 2, 3, 9) and s.name == "files"
    with pytest.raises(ValueError, match="num_classes"):
        splits.split_from_files(a, b, num_classes=9)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="in both halves"):
        splits.ClassSplit((1, 2), (2, 3), "x")
    with pytest.raises(ValueError, match="repeated"):
        splits.ClassSplit((1, 1), (2,), "x")
    with pytest.raises(ValueError, match="both halves need"):
        splits.ClassSplit((), (2,), "x")
    with pytest.raises(ValueError, match="size_a"):
        splits.random_split(4, seed=0, size_a=4)
    with pytest.raises(ValueError, match="halves"):
        splits.random_split(4, seed=0).half("C")
    bad = tmp_path / "bad.txt"
    bad.write_text("1\ncat\n")
    with pytest.raises(ValueError, match="bad.txt:2: 'cat'"):
        splits.read_class_file(bad)
