"""A/B class splits of a source dataset (docs/methods.md §Transferability, "Splits").

Yosinski et al. split ImageNet's 1000 classes into two halves A and B of 500 by a random draw
(four draws in the paper) and, for their dissimilar-task experiment, into man-made and natural
classes listed in two files. Both are here: `random_split` (seeded) and `split_from_files`.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np


@dataclasses.dataclass(frozen=True)
class ClassSplit:
    """Two disjoint, non-empty sets of class indices, each sorted ascending."""

    a: tuple[int, ...]
    b: tuple[int, ...]
    name: str  # e.g. "seed0" or "files"

    def __post_init__(self):
        a = tuple(int(c) for c in self.a)
        b = tuple(int(c) for c in self.b)
        if not a or not b:
            raise ValueError(f"split {self.name!r}: both halves need classes ({len(a)}, {len(b)})")
        for half, members in (("A", a), ("B", b)):
            if len(set(members)) != len(members) or min(members) < 0:
                raise ValueError(f"split {self.name!r}: half {half} has repeated or negative ids")
        both = sorted(set(a) & set(b))
        if both:
            raise ValueError(f"split {self.name!r}: classes {both[:10]} are in both halves")
        object.__setattr__(self, "a", tuple(sorted(a)))
        object.__setattr__(self, "b", tuple(sorted(b)))

    def half(self, name: str) -> tuple[int, ...]:
        """The classes of half "A" or "B"."""
        if name not in ("A", "B"):
            raise ValueError(f"a split has halves 'A' and 'B', not {name!r}")
        return self.a if name == "A" else self.b


def random_split(num_classes: int, *, seed: int, size_a: int | None = None) -> ClassSplit:
    """Classes 0..num_classes-1 in the order of `np.random.default_rng(seed).permutation`; the
    first `size_a` (default num_classes // 2) form A, the rest B. Equal seeds give equal splits."""
    if num_classes < 2:
        raise ValueError(f"need at least 2 classes to split, got {num_classes}")
    size_a = num_classes // 2 if size_a is None else size_a
    if not 0 < size_a < num_classes:
        raise ValueError(f"size_a must be in [1, {num_classes - 1}], got {size_a}")
    order = np.random.default_rng(seed).permutation(num_classes)
    return ClassSplit(tuple(order[:size_a]), tuple(order[size_a:]), f"seed{seed}")


def read_class_file(path: str | os.PathLike) -> tuple[int, ...]:
    """Class indices from a text file: integers separated by white space or commas; ``#``
    starts a comment."""
    ids = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            for word in line.split("#", 1)[0].replace(",", " ").split():
                try:
                    ids.append(int(word))
                except ValueError:
                    raise ValueError(f"{path}:{number}: {word!r} is not a class index") from None
    return tuple(ids)


def split_from_files(
    path_a: str | os.PathLike, path_b: str | os.PathLike, *, num_classes: int | None = None
) -> ClassSplit:
    """The split given by two class-index files (e.g. man-made vs natural). With `num_classes`,
    every index must be below it. The halves need not cover every class."""
    split = ClassSplit(read_class_file(path_a), read_class_file(path_b), "files")
    if num_classes is not None and max(split.a[-1], split.b[-1]) >= num_classes:
        raise ValueError(f"class files name indices >= num_classes ({num_classes})")
    return split
