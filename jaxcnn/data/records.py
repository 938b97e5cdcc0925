"""Turning raw TFDS records into jaxcnn's normalised numpy records, with validation.

Normalised records (what every `Source` yields):

- classification (imagenet2012, sun397, toyworld source/places):
  `{'image': uint8 [H, W, 3] RGB, 'label': int, 'id': str, 'fixes': tuple[str, ...]}`
- detection (voc, toyworld scenes):
  `{'image', 'id', 'fixes', 'labels': int8 [C], 'objects': {'bbox': float32 [K, 4],
  'label': int64 [K], 'difficult': bool [K], 'truncated': bool [K]}}`
  `labels` follows the VOC devkit's three-way ground truth, re-coded: 1 = the class has a
  non-difficult object, -1 = it has only difficult objects (the devkit's 0, ignored when
  scoring), 0 = absent (the devkit's -1). Boxes are TFDS's (ymin, xmin, ymax, xmax):
  VOC's 1-based inclusive pixels divided by the image height/width (`boxes.voc_to_normalised`).

What real data throws at us, and what happens (`fixes` names each repair, so a scan can count
them; nothing is dropped silently):

| input                                          | outcome                                   |
|------------------------------------------------|-------------------------------------------|
| grayscale, palette, CMYK, RGBA, 16-bit JPEG/PNG| converted to RGB ('converted <mode>')     |
| 2-D or 1-channel decoded arrays                | replicated to 3 channels ('gray to RGB')  |
| 4-channel decoded arrays                       | BadExampleError (RGBA or CMYK: ambiguous) |
| image side < min_side pixels, undecodable bytes| BadExampleError                           |
| box coordinates outside [0, 1]                 | clipped ('clipped N boxes')               |
| non-finite box, ymin > ymax or xmin > xmax     | BadExampleError                           |
| object fields of unequal length, label >= C    | BadExampleError                           |
| image without objects                          | kept: labels all 0, K = 0                 |

Every error names the example as `<dataset>/<split>[<index>] (<file name>)`.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

MIN_SIDE = 4


class BadExampleError(ValueError):
    """A record that cannot be used as it is; the message names the example."""


def decode_image(value, *, where: str, min_side: int = MIN_SIDE) -> tuple[np.ndarray, list[str]]:
    """Encoded bytes or a decoded array -> (uint8 [H, W, 3] RGB, fixes applied)."""
    fixes = []
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            with Image.open(io.BytesIO(bytes(value))) as pil:
                if pil.mode != "RGB":
                    fixes.append(f"converted {pil.mode}")
                    pil = pil.convert("RGB")  # CMYK, L, P, RGBA, I;16 ... -> RGB
                image = np.asarray(pil, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as e:
            raise BadExampleError(f"{where}: image bytes cannot be decoded ({e})") from e
    else:
        image = np.asarray(value)
        if image.dtype != np.uint8:
            raise BadExampleError(f"{where}: decoded image has dtype {image.dtype}, not uint8")
        if image.ndim == 2:
            image = image[:, :, None]
        if image.ndim != 3 or image.shape[2] not in (1, 3):
            raise BadExampleError(
                f"{where}: decoded image has shape {image.shape}; expected H x W x 3 (or 1)"
            )
        if image.shape[2] == 1:
            fixes.append("gray to RGB")
            image = np.repeat(image, 3, axis=2)
    if min(image.shape[:2]) < min_side:
        raise BadExampleError(
            f"{where}: image is {image.shape[0]}x{image.shape[1]} pixels, a side is below "
            f"min_side={min_side}"
        )
    return image, fixes


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def normalise_classification(
    raw: dict, *, where: str, id_key: str, num_classes: int, min_side: int = MIN_SIDE
) -> dict:
    """TFDS {'image', 'label', id_key} -> normalised classification record (module doc)."""
    image, fixes = decode_image(raw["image"], where=where, min_side=min_side)
    label = int(raw["label"])
    if not 0 <= label < num_classes:
        raise BadExampleError(f"{where}: label {label} outside [0, {num_classes})")
    return {
        "image": image,
        "label": label,
        "id": _text(raw.get(id_key, where)),
        "fixes": tuple(fixes),
    }


def validate_objects(objects: dict, *, where: str, num_classes: int) -> tuple[dict, list[str]]:
    """TFDS VOC objects -> (normalised objects, fixes). See the module table for the rules."""
    fields = {
        "bbox": np.asarray(objects["bbox"], np.float32).reshape(-1, 4),
        "label": np.asarray(objects["label"], np.int64).reshape(-1),
        "difficult": np.asarray(objects["is_difficult"], bool).reshape(-1),
        "truncated": np.asarray(objects["is_truncated"], bool).reshape(-1),
    }
    lengths = {k: v.shape[0] for k, v in fields.items()}
    if len(set(lengths.values())) > 1:
        raise BadExampleError(f"{where}: object fields have unequal lengths {lengths}")
    bbox = fields["bbox"]
    if not np.all(np.isfinite(bbox)):
        raise BadExampleError(f"{where}: non-finite box coordinates {bbox.tolist()}")
    inverted = (bbox[:, 0] > bbox[:, 2]) | (bbox[:, 1] > bbox[:, 3])
    if np.any(inverted):
        raise BadExampleError(
            f"{where}: boxes with ymin > ymax or xmin > xmax: {bbox[inverted].tolist()}"
        )
    labels = fields["label"]
    if np.any((labels < 0) | (labels >= num_classes)):
        raise BadExampleError(
            f"{where}: object labels {labels.tolist()} outside [0, {num_classes})"
        )
    fixes = []
    outside = np.any((bbox < 0) | (bbox > 1), axis=1)
    if np.any(outside):
        fixes.append(f"clipped {int(outside.sum())} boxes")
        fields["bbox"] = np.clip(bbox, 0.0, 1.0)
    return fields, fixes


def image_labels(objects: dict, num_classes: int) -> np.ndarray:
    """int8 [C]: 1 if a non-difficult object of the class, else -1 if a difficult one, else 0."""
    labels_C = np.zeros(num_classes, np.int8)
    labels_C[objects["label"][objects["difficult"]]] = -1
    labels_C[objects["label"][~objects["difficult"]]] = 1  # a clear object wins over difficult
    return labels_C


def normalise_detection(
    raw: dict, *, where: str, id_key: str, num_classes: int, min_side: int = MIN_SIDE
) -> dict:
    """TFDS VOC-format record -> normalised detection record (module doc)."""
    image, fixes = decode_image(raw["image"], where=where, min_side=min_side)
    objects, box_fixes = validate_objects(raw["objects"], where=where, num_classes=num_classes)
    return {
        "image": image,
        "labels": image_labels(objects, num_classes),
        "objects": objects,
        "id": _text(raw.get(id_key, where)),
        "fixes": tuple(fixes + box_fixes),
    }
