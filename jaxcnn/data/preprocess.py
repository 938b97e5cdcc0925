"""Caffe-style preprocessing (docs/methods.md §2) and the training-set mean, stored with the
dataset.

Conventions:
- Channel order is **RGB** everywhere (Caffe's BGR models would need the channels reversed;
  docs/methods.md §1 allows either if consistent). Per-channel means are RGB too: Caffe's ImageNet
  104/117/123 (BGR) is (123, 117, 104) here.
- `resize`: every image is resized to `resize` x `resize` ignoring aspect ratio (Caffe's
  `convert_imageset --resize_height --resize_width`), PIL bilinear. Toyworld is stored at the
  resize size (72), where it is a no-op.
- Training: a random `crop` x `crop` window, offsets uniform over [0, resize - crop] (Caffe's
  `Rand(h - crop + 1)`), minus the same window of the mean, then mirrored with probability
  1/2 (Caffe subtracts the mean at the unmirrored position and mirrors the result).
- Evaluation: the centre window, offset (resize - crop) // 2 (Caffe's integer division).
- The mean is computed once over a training split at the resize size, as float64 sums,
  and stored next to the dataset's array_record files as `jaxcnn-mean-<split>-<resize>.npz`.
"""

from __future__ import annotations

import dataclasses
import re
import zipfile

import numpy as np
from etils import epath
from PIL import Image


def resize_image(image_HxWx3: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [size, size, 3], PIL bilinear; unchanged if already that size."""
    if image_HxWx3.ndim != 3 or image_HxWx3.shape[2] != 3 or image_HxWx3.dtype != np.uint8:
        raise ValueError(f"expected uint8 [H, W, 3], got {image_HxWx3.dtype} {image_HxWx3.shape}")
    if image_HxWx3.shape[:2] == (size, size):
        return image_HxWx3
    return np.asarray(Image.fromarray(image_HxWx3).resize((size, size), Image.BILINEAR))


def _check_crop(image, mean, crop):
    if image.ndim != 3 or image.shape[0] != image.shape[1] or image.shape[2] != 3:
        raise ValueError(f"expected a square [S, S, 3] image, got {image.shape}")
    if mean.shape != image.shape:
        raise ValueError(f"mean shape {mean.shape} != image shape {image.shape}")
    if not 0 < crop <= image.shape[0]:
        raise ValueError(f"crop {crop} must be in (0, {image.shape[0]}]")


def crop_subtract(
    image_SxSx3: np.ndarray, mean_SxSx3: np.ndarray, *, crop: int, y: int, x: int, mirror: bool
) -> np.ndarray:
    """float32 [crop, crop, 3] = mirror?(image[y:y+crop, x:x+crop] - mean[same window])."""
    _check_crop(image_SxSx3, mean_SxSx3, crop)
    if not (0 <= y <= image_SxSx3.shape[0] - crop and 0 <= x <= image_SxSx3.shape[1] - crop):
        raise ValueError(
            f"window at ({y}, {x}) of size {crop} leaves the {image_SxSx3.shape} image"
        )
    window = image_SxSx3[y : y + crop, x : x + crop].astype(np.float32)
    out = window - mean_SxSx3[y : y + crop, x : x + crop]
    return out[:, ::-1] if mirror else out


def random_crop(image_SxSx3, mean_SxSx3, *, crop: int, rng: np.random.Generator) -> np.ndarray:
    """Training transform: uniform window offsets in [0, S - crop], mirror with p = 1/2."""
    _check_crop(image_SxSx3, mean_SxSx3, crop)
    y, x = rng.integers(0, image_SxSx3.shape[0] - crop + 1, size=2)
    mirror = bool(rng.integers(0, 2))
    return crop_subtract(image_SxSx3, mean_SxSx3, crop=crop, y=int(y), x=int(x), mirror=mirror)


def center_crop(image_SxSx3, mean_SxSx3, *, crop: int) -> np.ndarray:
    """Evaluation transform: the window at offset (S - crop) // 2, not mirrored."""
    _check_crop(image_SxSx3, mean_SxSx3, crop)
    off = (image_SxSx3.shape[0] - crop) // 2
    return crop_subtract(image_SxSx3, mean_SxSx3, crop=crop, y=off, x=off, mirror=False)


@dataclasses.dataclass(frozen=True)
class Mean:
    """Training-set mean at the resize size: per pixel [S, S, 3] and per channel [3] (RGB)."""

    image: np.ndarray
    channel: np.ndarray
    count: int

    def array(self, kind: str = "image") -> np.ndarray:
        """float32 [S, S, 3]: the mean image, or the channel mean broadcast ('channel')."""
        if kind == "image":
            return self.image.astype(np.float32)
        if kind == "channel":
            return np.broadcast_to(self.channel.astype(np.float32), self.image.shape).copy()
        raise ValueError(f"mean kind must be 'image' or 'channel', got {kind!r}")


def mean_from_sum(sum_SxSx3: np.ndarray, count: int) -> Mean:
    """Mean from a float64 pixel sum over `count` images; channel = mean of the mean image."""
    if count <= 0:
        raise ValueError("cannot take the mean of zero images")
    image = sum_SxSx3 / count
    return Mean(image=image, channel=image.mean(axis=(0, 1)), count=int(count))


def mean_path(dataset_dir, split: str, resize: int) -> epath.Path:
    safe = re.sub(r"[^\w.=-]+", "_", split)
    return epath.Path(dataset_dir) / f"jaxcnn-mean-{safe}-{resize}.npz"


def save_mean(mean: Mean, path) -> None:
    """Writes the mean atomically (temporary file, then rename)."""
    path = epath.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        np.savez(f, image=mean.image, channel=mean.channel, count=np.int64(mean.count))
    tmp.replace(path)


def load_mean(path) -> Mean:
    path = epath.Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no stored mean at {path}; compute it with jaxcnn.data.pipeline.dataset_mean "
            "(experiments/prepare_data.py does this)"
        )
    try:
        with path.open("rb") as f:
            data = np.load(f)
            return Mean(image=data["image"], channel=data["channel"], count=int(data["count"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(
            f"the stored mean {path} is damaged ({type(e).__name__}: {e}); delete it and rerun: "
            "it is recomputed from the training split"
        ) from e
