"""Random-access sources over TFDS array_record datasets: `open_split(name, split)`.

Dataset names and their splits:

| name                | TFDS dataset        | kind           | splits                         |
|---------------------|---------------------|----------------|--------------------------------|
| imagenet2012        | imagenet2012        | classification | train, validation              |
| voc2007             | voc/2007            | detection      | trainval, test, train, val.    |
| voc2012             | voc/2012            | detection      | trainval, train, validation    |
| voc2007+2012        | voc/2007 + voc/2012 | detection      | trainval (PASCAL-DET+DATA)     |
| sun397              | sun397/tfds         | classification | train, val, test (seeded)      |
| toyworld/source[_*] | toyworld/source[_*] | classification | train, validation              |
| toyworld/scenes[_*] | toyworld/scenes[_*] | detection      | trainval, test, train, val.    |
| toyworld/places[_*] | toyworld/places[_*] | classification | train, val, test (seeded)      |

"seeded" splits pool every image of the dataset and split each class 50/10/40 % into
train/val/test with `seeded_split` (the paper's SUN-CLS protocol; seeds 0-4 give the +-).
Records are normalised by `jaxcnn.data.records` (formats and bad-input rules are there).

Images are decoded by PIL from the stored bytes (`decode='pil'`, robust to CMYK/grayscale).
`decode='tfds'` lets TFDS decode instead; `tfds.testing.mock_data` needs it, because its
fake records can only be encoded with TensorFlow, which jaxcnn never imports.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxcnn.data import integrity, records

_TRAINVAL = {"trainval": "train+validation", "train": "train", "validation": "validation"}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    tfds_names: tuple[str, ...]  # several = concatenated (voc2007+2012)
    kind: str  # 'classification' | 'detection'
    splits: dict  # our split name -> TFDS split expression ({} for seeded datasets)
    id_key: str
    pool: str | None = None  # TFDS split expression pooled by `seeded_split`


DATASETS = {
    "imagenet2012": DatasetSpec(
        ("imagenet2012",),
        "classification",
        {"train": "train", "validation": "validation"},
        "file_name",
    ),
    "voc2007": DatasetSpec(
        ("voc/2007",), "detection", {**_TRAINVAL, "test": "test"}, "image/filename"
    ),
    "voc2012": DatasetSpec(("voc/2012",), "detection", _TRAINVAL, "image/filename"),
    "voc2007+2012": DatasetSpec(
        ("voc/2007", "voc/2012"), "detection", {"trainval": "train+validation"}, "image/filename"
    ),
    "sun397": DatasetSpec(
        ("sun397/tfds",), "classification", {}, "file_name", "train+validation+test"
    ),
}
_TOYWORLD = {
    "source": DatasetSpec(
        (), "classification", {"train": "train", "validation": "validation"}, "file_name"
    ),
    "scenes": DatasetSpec((), "detection", {**_TRAINVAL, "test": "test"}, "image/filename"),
    "places": DatasetSpec((), "classification", {}, "file_name", "pool"),
}
SEEDED_SPLITS = ("train", "val", "test")


# Every split name of every dataset here (a dataset's own: `check_split`).
SPLITS = tuple(sorted({s for d in DATASETS.values() for s in d.splits} | set(SEEDED_SPLITS)))


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of a dataset name (table above); toyworld config suffixes are allowed."""
    if name.startswith("toyworld/"):
        part = name.split("/", 1)[1].split("_", 1)[0]
        if part in _TOYWORLD:
            return dataclasses.replace(_TOYWORLD[part], tfds_names=(name,))
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)} and toyworld/<part>")
    return DATASETS[name]


def check_split(dataset: str, split: str, what: str = "split") -> None:
    """ValueError naming `dataset`'s splits unless `split` is one of them (as `open_split`)."""
    spec = dataset_spec(dataset)
    allowed = SEEDED_SPLITS if spec.pool is not None else tuple(spec.splits)
    if split not in allowed:
        raise ValueError(f"--{what}={split!r}: {dataset} has the splits {list(allowed)}")


def data_dir_or_default(data_dir: str | os.PathLike | None) -> epath.Path:
    """`data_dir`, else $TFDS_DATA_DIR, else ~/tensorflow_datasets (TFDS's own default)."""
    return epath.Path(
        data_dir if data_dir is not None else tfds.core.constants.get_default_data_dir()
    )


def seeded_split(labels_N: np.ndarray, *, seed: int, fractions=(0.5, 0.1, 0.4)) -> dict:
    """Per-class random split, uniform over classes: {'train', 'val', 'test'} -> sorted indices.

    For each class with n images (in increasing class order) a permutation is drawn from
    `np.random.default_rng([seed, class])`; the first round(0.5 n) go to train, the next
    round(0.1 n) to val, the rest to test (round half up: a single image goes to train).
    """
    if labels_N.ndim != 1 or not np.issubdtype(labels_N.dtype, np.integer):
        raise ValueError(f"labels must be 1-D integers, got {labels_N.dtype} {labels_N.shape}")
    if len(fractions) != 3 or not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"fractions must be three non-negatives summing to 1, got {fractions}")
    parts = {s: [] for s in SEEDED_SPLITS}
    for c in np.unique(labels_N):
        members = np.nonzero(labels_N == c)[0]
        members = members[np.random.default_rng([seed, int(c)]).permutation(members.size)]
        n_train = int(np.floor(fractions[0] * members.size + 0.5))
        n_val = int(np.floor(fractions[1] * members.size + 0.5))
        parts["train"].append(members[:n_train])
        parts["val"].append(members[n_train : n_train + n_val])
        parts["test"].append(members[n_train + n_val :])
    return {s: np.sort(np.concatenate(v)) for s, v in parts.items()}


class Source:
    """A random-access source of normalised records (grain's RandomAccessDataSource).

    Picklable (grain ships it to worker processes). `indices` maps our index i to a position
    in the concatenation of the underlying TFDS sources; `where(i)` names an example.
    """

    def __init__(
        self,
        name,
        split,
        spec,
        tfds_sources,
        *,
        num_classes,
        class_names,
        decode,
        min_side,
        dataset_dir,
    ):
        self.name, self.split, self.spec = name, split, spec
        self.dataset_dir = str(dataset_dir)  # where the mean and label caches are stored
        self.num_classes, self.class_names = num_classes, tuple(class_names)
        self.kind = spec.kind
        self._sources = list(tfds_sources)
        self._offsets = np.cumsum([0] + [len(s) for s in self._sources])
        self._decode, self._min_side = decode, min_side
        self.indices = np.arange(self._offsets[-1])

    def __len__(self) -> int:
        return int(self.indices.size)

    def __repr__(self) -> str:
        return f"Source({self.name}/{self.split}, {len(self)} {self.kind} records)"

    def where(self, index: int) -> str:
        return f"{self.name}/{self.split}[{index}]"

    def raw(self, index: int) -> dict:
        """The TFDS record at our index (image still encoded with decode='pil')."""
        if not 0 <= index < len(self):
            raise IndexError(f"{self.where(index)}: index out of range for {len(self)} records")
        position = int(self.indices[index])
        k = int(np.searchsorted(self._offsets, position, side="right")) - 1
        return self._sources[k][position - int(self._offsets[k])]

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        kwargs = dict(
            where=self.where(index),
            id_key=self.spec.id_key,
            num_classes=self.num_classes,
            min_side=self._min_side,
        )
        if self.kind == "detection":
            return records.normalise_detection(self.raw(index), **kwargs)
        return records.normalise_classification(self.raw(index), **kwargs)

    @property
    def num_records(self) -> int:
        """Records in the split's files (our indices are positions among them)."""
        return int(self._offsets[-1])

    def whole(self) -> Source:
        """Every record of the split's files, in file order (whatever this view keeps)."""
        out = Source.__new__(Source)
        out.__dict__.update(self.__dict__)
        out.indices = np.arange(self.num_records)
        return out

    def subset(self, keep: Sequence[int], split: str | None = None) -> Source:
        """The same source restricted to our indices `keep` (e.g. the good ones of a scan)."""
        out = Source.__new__(Source)
        out.__dict__.update(self.__dict__)
        out.indices = self.indices[np.asarray(keep, dtype=np.int64)]
        out.split = split or self.split
        return out


def _open_tfds(tfds_name, split_expr, data_dir, decode):
    decoders = {"image": tfds.decode.SkipDecoding()} if decode == "pil" else None
    if tfds_name.startswith("toyworld/"):
        from jaxcnn.data import toyworld  # registers the builder

        path = data_dir_or_default(data_dir) / tfds_name / str(toyworld.Toyworld.VERSION)
        if not (path / "dataset_info.json").exists():
            raise FileNotFoundError(
                f"{tfds_name} is not prepared under {path}; run `python "
                "experiments/prepare_data.py --flagfile=experiments/flags/toyworld.flags` "
                "(with the same --data_dir)"
            )
        integrity.verify(path)  # sizes against the recorded checksums: names a damaged file
        builder = tfds.builder_from_directory(os.fspath(path))
        return builder, builder.as_data_source(split=split_expr, decoders=decoders)
    builder = tfds.builder(tfds_name, data_dir=data_dir, file_format="array_record")
    try:
        source = builder.as_data_source(split=split_expr, decoders=decoders)
    except KeyError as e:  # TFDS's "splits is empty": the dataset was never prepared there
        if "empty" not in str(e):
            raise
        ours = next((k for k, v in DATASETS.items() if tfds_name in v.tfds_names), tfds_name)
        raise FileNotFoundError(
            f"{tfds_name} is not prepared under {builder.data_dir}; run `python "
            f"experiments/prepare_data.py --dataset={ours}` (with the same --data_dir)"
        ) from None
    integrity.verify(builder.data_dir)
    return builder, source


def _class_names(builder, kind):
    feature = (
        builder.info.features["objects"]["label"]
        if kind == "detection"
        else builder.info.features["label"]
    )
    return feature.names


def open_split(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    decode: str = "pil",
    min_side: int = records.MIN_SIDE,
) -> Source:
    """Opens one split of a dataset (module table) as a random-access `Source`.

    `seed` selects the seeded split of sun397 / toyworld places (ignored otherwise). Raises
    FileNotFoundError naming the directory and the command to run if it is not prepared.
    """
    if decode not in ("pil", "tfds"):
        raise ValueError(f"decode must be 'pil' or 'tfds', got {decode!r}")
    spec = dataset_spec(name)
    seeded = spec.pool is not None
    allowed = SEEDED_SPLITS if seeded else tuple(spec.splits)
    if split not in allowed:
        raise ValueError(f"{name} has splits {allowed}, not {split!r}")
    expr = spec.pool if seeded else spec.splits[split]
    opened = [_open_tfds(n, expr, data_dir, decode) for n in spec.tfds_names]
    builder = opened[0][0]
    names = _class_names(builder, spec.kind)
    source = Source(
        name, split, spec, [s for _, s in opened], num_classes=len(names), class_names=names,
        decode=decode, min_side=min_side, dataset_dir=builder.data_dir,
    )  # fmt: skip
    if not seeded:
        return source
    labels = pool_labels(source, cache_dir=None if decode == "tfds" else builder.data_dir)
    return source.subset(seeded_split(labels, seed=seed)[split], split=f"{split}(seed={seed})")


def pool_labels(source: Source, *, cache_dir=None) -> np.ndarray:
    """int64 [N] labels of every record of a classification source, read once.

    With `cache_dir` they are stored there as `jaxcnn-labels-<n>.npy` (atomic write) and
    reused; the images are not decoded (labels only).
    """
    cache = (
        None if cache_dir is None else epath.Path(cache_dir) / f"jaxcnn-labels-{len(source)}.npy"
    )
    if cache is not None and cache.exists():
        with cache.open("rb") as f:
            return np.load(f)
    labels = np.array([int(source.raw(i)["label"]) for i in range(len(source))], np.int64)
    if cache is not None:
        tmp = cache.with_name(cache.name + ".tmp")
        with tmp.open("wb") as f:
            np.save(f, labels)
        tmp.replace(cache)
    return labels


@dataclasses.dataclass(frozen=True)
class ScanReport:
    """What a full pass over a source found: `good` indices, `bad` (index, message) pairs
    and how often each repair (`records` fixes) was applied."""

    num_records: int
    good: np.ndarray
    bad: tuple[tuple[int, str], ...]
    fixes: dict[str, int]

    def summary(self) -> str:
        fixes = ", ".join(f"{k}: {v}" for k, v in sorted(self.fixes.items())) or "none"
        return (
            f"{self.num_records} records: {self.good.size} usable, {len(self.bad)} rejected; "
            f"repairs: {fixes}"
        )


def scan(source: Source) -> ScanReport:
    """Decodes every record once; rejected ones are reported, never silently dropped.

    Use `source.subset(report.good)` to train on the usable records only.
    """
    good, bad, fixes = [], [], collections.Counter()
    for i in range(len(source)):
        try:
            record = source[i]
        except records.BadExampleError as e:
            bad.append((i, str(e)))
            continue
        good.append(i)
        # "clipped 2 boxes" and "clipped 1 boxes" count as one kind of repair
        fixes.update(" ".join(w for w in f.split() if not w.isdigit()) for f in record["fixes"])
    return ScanReport(len(source), np.array(good, np.int64), tuple(bad), dict(fixes))
