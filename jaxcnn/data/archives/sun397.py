"""SUN397 from SUN397.tar.gz, a plain SUN397.tar or the extracted SUN397/ tree, as sun397/tfds.

Inputs in `manual_dir` (the first found is used): `SUN397.tar.gz` (read once, in order, see
`stream`), `SUN397.tar`, or the extracted `SUN397/` directory (`manual_dir` may be that
directory itself). The class list is `SUN397/ClassName.txt` (inside the archive or tree), or a
`ClassName.txt` next to it (the copy in Partitions.zip).

Output: TFDS's `sun397/tfds` 4.0.0 (features of `tensorflow_datasets/datasets/sun397/`):
`file_name` '/a/abbey/sun_aaaulhwrhqgejnyt.jpg', `image` (RGB JPEG, at most 120,000 pixels,
as TFDS's config 'tfds' makes them, `images.limit_pixels`), `label` = the index of the image's
directory in ClassName.txt, whose 397 lines must be TFDS's class list in TFDS's order (checked;
they are the same sorted list). Every image of the tree is written: the ones in TFDS's
train / validation / test lists go to those splits, any other one to train (noted). jaxcnn
pools the three and draws the paper's seeded per-class 50/10/40 split (`sources.seeded_split`).
Undecodable images are skipped and named; CMYK / grayscale / PNG / GIF ones are converted to
RGB and counted; files outside the class directories are counted and ignored.
"""

from __future__ import annotations

import collections
import os

import tensorflow_datasets as tfds

from jaxcnn.data.archives import images, inputs, stream, writer

TFDS_NAME = "sun397/tfds"
MAX_PIXELS = 120_000
OPTIONS = {"max_pixels": MAX_PIXELS, "jpeg_quality": images.JPEG_QUALITY}
CLASS_FILE = "SUN397/ClassName.txt"
_SPLIT_LISTS = {"train": "tr", "validation": "va", "test": "te"}


def tfds_classes() -> tuple[str, ...]:
    """The 397 class names of TFDS's sun397 ('/a/abbey', ...), the readers' label order."""
    path = tfds.core.tfds_path(os.path.join("image_classification", "sun397_labels.txt"))
    return tuple(path.read_text().split())


def _tfds_splits() -> dict[str, str]:
    """file_name -> TFDS split, from the split lists TFDS ships."""
    out = {}
    for split, short in _SPLIT_LISTS.items():
        path = tfds.core.tfds_path(os.path.join("image_classification", f"sun397_tfds_{short}.txt"))
        out.update((line.strip(), split) for line in path.read_text().splitlines() if line.strip())
    return out


def shrink(data: bytes) -> tuple[bytes, list[str]]:
    """sun397/tfds's image rule (module doc)."""
    return images.limit_pixels(data, MAX_PIXELS)


def _is_image_path(name: str) -> bool:
    return name.startswith("SUN397/") and name.count("/") >= 3 and not name.endswith(".txt")


def _check_classes(text: str, where: str) -> tuple[str, ...]:
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    expected = tfds_classes()
    if names != expected:
        extra = sorted(set(names) - set(expected))[:3]
        missing = sorted(set(expected) - set(names))[:3]
        raise ValueError(
            f"{where} lists {len(names)} classes that differ from SUN397's 397 (in TFDS's "
            f"order): not expected {extra}, missing {missing}"
        )
    return names


def _inputs(manual_dir: str) -> tuple[str | None, inputs.Tree]:
    """(the gzipped archive, or None; the tree of the plain tar / extracted directory)."""
    manual_dir = os.path.abspath(os.fspath(manual_dir))
    gz, tar = os.path.join(manual_dir, "SUN397.tar.gz"), os.path.join(manual_dir, "SUN397.tar")
    roots = [manual_dir]
    if os.path.basename(manual_dir) == "SUN397":
        roots.append(os.path.dirname(manual_dir))
    describe = (
        f"SUN397 is read from SUN397.tar.gz or SUN397.tar (vision.princeton.edu/projects/2010/"
        f"SUN/) placed in {manual_dir}, or from the extracted tree {manual_dir}/SUN397/ "
        f"(with ClassName.txt; a ClassName.txt in {manual_dir} is used too)"
    )
    if os.path.exists(gz) and not os.path.exists(tar) and inputs.is_stream(gz):
        return gz, inputs.Tree(roots, describe=describe)
    return None, inputs.Tree(roots, [tar] if os.path.exists(tar) else [], describe=describe)


def _has_tree(root: str) -> bool:
    return os.path.isdir(os.path.join(root, "SUN397"))


def _class_text(tree: inputs.Tree, kept: dict, manual_dir: str) -> tuple[str, str]:
    if CLASS_FILE in kept:
        return kept[CLASS_FILE].decode("utf-8"), CLASS_FILE
    location = tree.find(CLASS_FILE) or tree.find("ClassName.txt")
    if location is None:
        tree.get(CLASS_FILE)  # raises MissingInputError saying where it was looked for
    with inputs.Reader() as reader:
        return reader.read(location).decode("utf-8"), location.path


def _examples(locations: dict, classes, processed: bool) -> tuple[dict, dict]:
    index = {name: k for k, name in enumerate(classes)}
    tfds_split = _tfds_splits()
    splits, notes = {s: [] for s in _SPLIT_LISTS}, collections.Counter()
    for name, location in sorted(locations.items()):
        key = name[len("SUN397") :]
        label = index.get(os.path.dirname(key))
        if label is None:
            notes["file outside the class directories (ignored)"] += 1
            continue
        split = tfds_split.get(key)
        if split is None:
            notes["not in TFDS's split lists (written to train)"] += 1
            split = "train"
        if location is not None:
            splits[split].append(writer.Example(key, (location,), (label, processed)))
    return splits, dict(notes)


def plan(manual_dir, *, data_dir=None, num_workers: int = 1, progress=None) -> writer.Job:
    """The sun397 preparation job (module doc). From SUN397.tar.gz this first runs the
    ordered pass (`stream.spill`, resumable) unless the dataset is already prepared."""
    gz, tree = _inputs(manual_dir)
    job = dict(dataset="sun397", tfds_name=TFDS_NAME, encode=encode, options=OPTIONS)
    directory = writer.dataset_directory(TFDS_NAME, data_dir)
    writer.check_options(directory, "sun397", OPTIONS, OPTIONS)
    if writer.is_prepared(directory):
        return writer.Job(splits={}, **job)
    kept, skipped, notes = {}, {}, {}
    if gz is not None:
        os.makedirs(os.path.join(directory, writer.WORK_DIR), exist_ok=True)
        spilled = stream.spill(
            gz, wanted=_is_image_path, process=shrink, keep={CLASS_FILE}, num_workers=num_workers,
            directory=os.path.join(directory, writer.WORK_DIR, "spill"), progress=progress,
        )  # fmt: skip
        # skipped ones are classified too (then dropped), so the notes match a tree's
        locations = {**dict.fromkeys(spilled.skipped_names), **spilled.locations}
        kept = spilled.kept
        skipped, notes = dict(spilled.skipped), dict(spilled.notes)
    else:
        locations = {n: tree.get(n) for n in tree.names("SUN397/") if _is_image_path(n)}
    text, where = _class_text(tree, kept, manual_dir)
    classes = _check_classes(text, where)
    splits, plan_notes = _examples(locations, classes, processed=gz is not None)
    return writer.Job(
        splits=splits,
        inputs=(gz,) if gz else tuple(tree.tars + [r for r in tree.roots if _has_tree(r)]),
        notes={**notes, **plan_notes}, skipped=skipped, **job,
    )  # fmt: skip


def encode(example: writer.Example, data: list[bytes], options: dict) -> tuple[dict, list]:
    """One SUN397 image -> TFDS sun397 example (already shrunk when it comes from a spill)."""
    del options
    label, processed = example.info
    image, notes = (data[0], []) if processed else shrink(data[0])
    return {"file_name": example.key, "image": image, "label": label}, notes
