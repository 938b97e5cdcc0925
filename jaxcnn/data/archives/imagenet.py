"""ImageNet (ILSVRC-2012) from ILSVRC2012_img_train.tar / _val.tar or extracted trees.

Inputs in `manual_dir` (tars are read in place; the train tar's 1,000 per-class tars are
indexed inside it, in worker processes, and never extracted):

| split      | archive                  | or extracted                                    |
|------------|--------------------------|-------------------------------------------------|
| train      | ILSVRC2012_img_train.tar | train/<wnid>/<file>.JPEG                        |
| validation | ILSVRC2012_img_val.tar   | val/<file>.JPEG (labels: `imagenet_labels`), or |
|            |                          | val/<wnid>/<file>.JPEG (labels from directories)|

Output: TFDS's `imagenet2012` 5.1.0 (features of `tensorflow_datasets/datasets/imagenet2012/`):
`image`, `label` = the synset's index in TFDS's labels.txt (the 1,000 WNIDs sorted, the
standard order), `file_name` ('n01440764_10026.JPEG', 'ILSVRC2012_val_00000001.JPEG').
Images are stored as they are (RGB or grayscale JPEG; CMYK and PNG files are re-encoded as
RGB JPEG, as TFDS does), or, with `resize=S`, with the shorter side scaled down to S (never
up; `images.shrink_shorter_side`). The choice is recorded in the dataset's metadata
(`options`), and preparing into a directory prepared with another `resize` is refused.
"""

from __future__ import annotations

import multiprocessing
import os

import tensorflow_datasets as tfds

from jaxcnn.data.archives import imagenet_labels, images, inputs, writer

TFDS_NAME = "imagenet2012"
TRAIN_TAR, VAL_TAR = "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"


def synsets() -> tuple[str, ...]:
    """TFDS's 1,000 WNIDs in their order (sorted), the readers' label order."""
    path = tfds.core.tfds_path(os.path.join("datasets", "imagenet2012", "labels.txt"))
    return tuple(path.read_text().split())


def _describe(manual_dir: str, split: str) -> str:
    tar, tree = (TRAIN_TAR, "train/<wnid>/") if split == "train" else (VAL_TAR, "val/")
    return (
        f"ImageNet's {split} images are read from {tar} (image-net.org, after registration) "
        f"placed in {manual_dir}, or from the extracted tree {os.path.join(manual_dir, tree)}"
    )


def _index_class_tars(tar: str, num_workers: int) -> dict[str, dict]:
    """{wnid: {file name: Location}} of the per-class tars inside the train tar."""
    outer = {n: loc for n, loc in inputs.index_tar(tar).items() if n.endswith(".tar")}
    names = sorted(outer)
    if num_workers <= 1:
        indexed = [inputs.index_tar(outer[n]) for n in names]
    else:
        with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
            indexed = pool.map(inputs.index_tar, [outer[n] for n in names], chunksize=4)
    return {n[: -len(".tar")]: members for n, members in zip(names, indexed, strict=True)}


def _listing(directory: str) -> dict[str, dict]:
    """{wnid or '': {file name: Location}} of an extracted directory (flat files under '')."""
    out = {}
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        if os.path.isdir(path):
            out[entry] = {f: inputs.Location(os.path.join(path, f)) for f in os.listdir(path)}
        else:
            out.setdefault("", {})[entry] = inputs.Location(path)
    return out


def _split_files(manual_dir: str, split: str, num_workers: int) -> tuple[dict, str]:
    tar = os.path.join(manual_dir, TRAIN_TAR if split == "train" else VAL_TAR)
    tree = os.path.join(manual_dir, "train" if split == "train" else "val")
    if os.path.exists(tar):
        if split == "train":
            return _index_class_tars(tar, num_workers), tar
        return {"": inputs.index_tar(tar)}, tar
    if os.path.isdir(tree):
        listing = _listing(tree)
        if split == "train" and "" in listing:
            raise ValueError(
                f"{tree} must hold one directory per synset (train/<wnid>/<file>.JPEG); it "
                f"also holds files {sorted(listing[''])[:3]}"
            )
        return listing, tree
    raise inputs.MissingInputError(
        f"{TRAIN_TAR if split == 'train' else VAL_TAR} not found: {_describe(manual_dir, split)}"
    )


def _examples(by_class: dict, labels: dict | None, where: str) -> list[writer.Example]:
    index = {w: k for k, w in enumerate(synsets())}
    examples = []
    for wnid, files in by_class.items():
        for name, location in files.items():
            label = wnid or (labels or {}).get(name)
            if label is None:
                raise ValueError(f"no validation label for {name} in {where}")
            if label not in index:
                raise ValueError(f"{name}: {label!r} is not one of ImageNet's 1,000 synsets")
            examples.append(writer.Example(name, (location,), (index[label],)))
    return examples


def options(resize: int | None) -> dict:
    """What is recorded, and must match, for a preparation with `resize`."""
    return {"resize": resize, "jpeg_quality": images.JPEG_QUALITY}


def plan(manual_dir, *, resize: int | None = None, num_workers: int = 1) -> writer.Job:
    """The imagenet2012 preparation job (module doc)."""
    manual_dir = os.path.abspath(os.fspath(manual_dir))
    if resize is not None and resize < 1:
        raise ValueError(f"resize must be a positive side length, got {resize}")
    train, train_from = _split_files(manual_dir, "train", num_workers)
    val, val_from = _split_files(manual_dir, "validation", num_workers)
    labels, labels_from = None, "directory names"
    if "" in val:
        labels, labels_from = imagenet_labels.validation_labels(manual_dir, sorted(val[""]))
    notes = {}
    missing = len(set(synsets()) - set(train))
    if missing:
        notes["synsets without training images"] = missing
    return writer.Job(
        dataset="imagenet2012",
        tfds_name=TFDS_NAME,
        splits={
            "train": _examples(train, None, train_from),
            "validation": _examples(val, labels, labels_from),
        },
        encode=encode,
        options=options(resize),
        tfds_options=options(None),
        inputs=(train_from, val_from, f"validation labels: {labels_from}"),
        notes=notes,
    )


def encode(example: writer.Example, data: list[bytes], options: dict) -> tuple[dict, list]:
    """One ImageNet image -> TFDS imagenet2012 example (module doc)."""
    if options["resize"] is None:
        image, notes = images.keep_jpeg(data[0])
    else:
        image, notes = images.shrink_shorter_side(data[0], options["resize"])
    return {"image": image, "label": example.info[0], "file_name": example.key}, notes
