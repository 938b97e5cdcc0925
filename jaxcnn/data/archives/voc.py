"""PASCAL VOC 2007 / 2012 from the original tars or an extracted VOCdevkit/, as TFDS's voc.

Inputs in `manual_dir` (either form; tars are read in place, never extracted):

| dataset | archives                                              | or extracted              |
|---------|-------------------------------------------------------|---------------------------|
| voc2007 | VOCtrainval_06-Nov-2007.tar, VOCtest_06-Nov-2007.tar  | VOCdevkit/VOC2007/        |
| voc2012 | VOCtrainval_11-May-2012.tar                           | VOCdevkit/VOC2012/        |

(`manual_dir` may also be the VOCdevkit/ directory itself.) Output: TFDS's `voc/2007` /
`voc/2012` 5.0.0, the features of TFDS's builder (`tensorflow_datasets/object_detection/
voc.py`): splits train / validation / test from `ImageSets/Main/{train,val,test}.txt` (VOC
2012's test has no annotations and is not prepared; jaxcnn's `trainval` is train+validation,
checked against `trainval.txt`); per image the JPEG bytes as they are, `image/filename`
'<id>.jpg', objects (label, bbox, pose, is_truncated, is_difficult) in XML order,
`labels` / `labels_no_difficult` (sorted class sets, all objects / non-difficult ones).

Boxes follow the box convention (`boxes.voc_to_normalised`, docs/methods.md §Box convention):
VOC's 1-based inclusive pixels divided by the annotation's width / height, as TFDS stores
them. Boxes reaching outside the image are clipped to it (a note counts them); an inverted
box, an unknown class or an unparsable annotation stops the preparation with the file's name.
`truncated` / `difficult` are '1' or not, as in TFDS; a missing one counts as 0 (noted).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np
import tensorflow_datasets as tfds

from jaxcnn.data import boxes
from jaxcnn.data.archives import images, inputs, writer

CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
POSES = ("frontal", "rear", "left", "right", "unspecified")

YEARS = {
    "voc2007": (
        "2007",
        ("VOCtrainval_06-Nov-2007.tar", "VOCtest_06-Nov-2007.tar"),
        {"train": "train", "validation": "val", "test": "test"},
    ),
    "voc2012": ("2012", ("VOCtrainval_11-May-2012.tar",), {"train": "train", "validation": "val"}),
}


def _tree(name: str, manual_dir: str) -> inputs.Tree:
    year, tars, _ = YEARS[name]
    manual_dir = os.path.abspath(os.fspath(manual_dir))
    roots = [manual_dir]
    if os.path.basename(manual_dir) == "VOCdevkit":
        roots.append(os.path.dirname(manual_dir))
    found = [p for p in (os.path.join(manual_dir, t) for t in tars) if os.path.exists(p)]
    describe = (
        f"VOC {year} is read from {' and '.join(tars)} "
        f"(host.robots.ox.ac.uk/pascal/VOC/voc{year}/) placed in {manual_dir}, or from their "
        f"extracted tree {os.path.join(manual_dir, 'VOCdevkit', f'VOC{year}')}/"
    )
    return inputs.Tree(roots, found, describe=describe)


def _ids(tree: inputs.Tree, reader: inputs.Reader, path: str) -> list[str]:
    text = reader.read(tree.get(path)).decode("utf-8")
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def plan(name: str, manual_dir: str) -> writer.Job:
    """The preparation job of `voc2007` or `voc2012` (module doc)."""
    year, _, split_files = YEARS[name]
    tree = _tree(name, manual_dir)
    base = f"VOCdevkit/VOC{year}"
    splits, notes = {}, {}
    with inputs.Reader() as reader:
        for split, set_name in split_files.items():
            examples = []
            for image_id in _ids(tree, reader, f"{base}/ImageSets/Main/{set_name}.txt"):
                annotation = f"{base}/Annotations/{image_id}.xml"
                image = f"{base}/JPEGImages/{image_id}.jpg"
                locations = (tree.get(annotation), tree.get(image))
                examples.append(writer.Example(image_id, locations, (annotation,)))
            splits[split] = examples
        trainval = tree.find(f"{base}/ImageSets/Main/trainval.txt")
        if trainval is not None:
            listed = set(_ids(tree, reader, f"{base}/ImageSets/Main/trainval.txt"))
            if listed != {e.key for s in ("train", "validation") for e in splits[s]}:
                notes["ImageSets/Main/trainval.txt is not train.txt + val.txt"] = 1
    return writer.Job(
        dataset=name, tfds_name=f"voc/{year}", splits=splits, encode=encode, options={},
        inputs=tuple(tree.tars + [r for r in tree.roots if os.path.isdir(os.path.join(r, base))]),
        notes=notes, shard_size=256,
    )  # fmt: skip


def _flag(obj, tag: str, notes: list[str]) -> bool:
    node = obj.find(tag)
    if node is None or node.text is None:
        notes.append(f"object without <{tag}> (taken as 0)")
        return False
    return node.text.strip() == "1"


def _number(node, tag: str, where: str) -> float:
    child = node.find(tag) if node is not None else None
    if child is None or child.text is None:
        raise ValueError(f"{where}: an object has no <bndbox><{tag}>")
    return float(child.text)


def _object(obj, width: float, height: float, where: str, notes: list[str]) -> dict:
    label = (obj.findtext("name") or "").strip().lower()
    if label not in CLASSES:
        raise ValueError(f"{where}: unknown class {label!r}; VOC's are {', '.join(CLASSES)}")
    pose = (obj.findtext("pose") or "unspecified").strip().lower()
    if pose not in POSES:
        notes.append(f"pose {pose!r} stored as 'unspecified'")
        pose = "unspecified"
    bndbox = obj.find("bndbox")
    xyxy = [_number(bndbox, t, where) for t in ("xmin", "ymin", "xmax", "ymax")]
    box = boxes.voc_to_normalised(xyxy, height=height, width=width)
    if box[0] > box[2] or box[1] > box[3]:
        raise ValueError(f"{where}: inverted box {xyxy} (xmin, ymin, xmax, ymax)")
    if np.any((box < 0) | (box > 1)):
        notes.append("box outside the image (clipped to it)")
        box = np.clip(box, 0.0, 1.0)
    return {
        "label": label,
        "bbox": tfds.features.BBox(*(float(v) for v in box)),
        "pose": pose,
        "is_truncated": _flag(obj, "truncated", notes),
        "is_difficult": _flag(obj, "difficult", notes),
    }


def parse_annotation(xml: bytes, where: str, image_size: tuple[int, int]) -> tuple[list, list]:
    """(TFDS objects, notes) of one VOC XML; `image_size` (W, H) is used if <size> is absent."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise ValueError(f"{where}: not a valid annotation ({e})") from e
    notes = []
    try:
        width, height = float(root.findtext("size/width")), float(root.findtext("size/height"))
    except (TypeError, ValueError):
        notes.append("annotation without <size> (the image's size used)")
        width, height = image_size
    if width <= 0 or height <= 0:
        raise ValueError(f"{where}: image size {width} x {height} in the annotation")
    if (width, height) != tuple(float(v) for v in image_size):
        notes.append("annotation <size> differs from the image's (boxes use the annotation's)")
    objects = [_object(obj, width, height, where, notes) for obj in root.findall("object")]
    return objects, notes


def encode(example: writer.Example, data: list[bytes], options: dict) -> tuple[dict, list]:
    """One VOC image -> TFDS voc example (module doc)."""
    del options
    xml, jpeg = data
    image, notes = images.keep_jpeg(jpeg)
    objects, annotation_notes = parse_annotation(xml, example.info[0], images.size_of(jpeg))
    if not objects:
        notes.append("image without objects")
    return {
        "image": image,
        "image/filename": f"{example.key}.jpg",
        "objects": objects,
        "labels": sorted({o["label"] for o in objects}),
        "labels_no_difficult": sorted({o["label"] for o in objects if not o["is_difficult"]}),
    }, notes + annotation_notes
