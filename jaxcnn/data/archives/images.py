"""Image bytes at preparation time: check, repair, shrink; notes say what was done.

Each function takes the original file's bytes and returns `(bytes to store, notes)`, or raises
`UndecodableImage`, after which the example is skipped and named in the summary (there is no
image to store). Notes are short reasons counted in the summary; images are never dropped
silently, and what the readers' rules repair later (`records`: grayscale stored as it is,
tiny images rejected by name when read) is counted here too.

- `keep_jpeg`: the original bytes when they are an RGB or grayscale JPEG (VOC, ImageNet as
  TFDS stores them); other formats or modes (CMYK JPEG, PNG or GIF named .JPEG) are re-encoded
  as RGB JPEG, as TFDS's imagenet2012 builder does for its 22 CMYK and 1 PNG files.
- `shrink_shorter_side`: ImageNet's `--resize`: the shorter side scaled down to `size` (never
  up), RGB JPEG.
- `limit_pixels`: SUN397's sun397/tfds rule: at most 120,000 pixels (both sides scaled by
  sqrt(limit / pixels)), always re-encoded as RGB JPEG.

Every image is decoded once in full or at reduced scale (JPEG's DCT scaling via `draft`), which
finds truncated or corrupt files. Re-encoding uses JPEG quality `JPEG_QUALITY` (95, OpenCV's
default that TFDS's SUN397 builder uses) and PIL's antialiased bicubic resampling.
"""

from __future__ import annotations

import io
import math

from PIL import Image, UnidentifiedImageError

from jaxcnn.data import records

JPEG_QUALITY = 95


class UndecodableImage(ValueError):
    """The bytes are not an image PIL can decode completely."""


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError as e:
        raise UndecodableImage("not an image PIL knows") from e
    except (OSError, Image.DecompressionBombError) as e:
        raise UndecodableImage(f"not an image ({e})") from e


def size_of(data: bytes) -> tuple[int, int]:
    """(width, height) from the image header (nothing is decoded)."""
    with _open(data) as pil:
        return pil.size


def _load(pil: Image.Image, *, scale_to: tuple[int, int] | None = None) -> Image.Image:
    """Decodes fully (JPEG: at the smallest DCT scale still >= `scale_to`)."""
    try:
        if scale_to is not None and pil.format == "JPEG":
            pil.draft(pil.mode, scale_to)
        pil.load()
    except (OSError, ValueError, SyntaxError) as e:
        raise UndecodableImage(f"cannot be decoded ({e})") from e
    return pil


def _size_notes(width: int, height: int) -> list[str]:
    if min(width, height) < records.MIN_SIDE:
        return [f"tiny image (a side < {records.MIN_SIDE} px, stored, rejected when read)"]
    return []


def _to_rgb(pil: Image.Image, notes: list[str]) -> Image.Image:
    if pil.mode != "RGB":
        notes.append(f"converted {pil.format} {pil.mode} to RGB")
        pil = pil.convert("RGB")
    return pil


def _jpeg(pil: Image.Image) -> bytes:
    out = io.BytesIO()
    pil.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def keep_jpeg(data: bytes) -> tuple[bytes, list[str]]:
    """The original bytes if an RGB / grayscale JPEG, else re-encoded as RGB JPEG."""
    pil = _open(data)
    width, height = pil.size
    notes = _size_notes(width, height)
    if pil.format == "JPEG" and pil.mode in ("RGB", "L"):
        _load(pil, scale_to=(max(1, width // 8), max(1, height // 8)))  # verify only
        if pil.mode == "L":
            notes.append("grayscale JPEG (stored, converted to RGB when read)")
        return data, notes
    notes.append(f"re-encoded {pil.format} {pil.mode} as RGB JPEG")
    return _jpeg(_to_rgb(_load(pil), [])), notes


def shrink_shorter_side(data: bytes, size: int) -> tuple[bytes, list[str]]:
    """RGB JPEG with the shorter side scaled to `size` when longer (aspect kept)."""
    pil = _open(data)
    width, height = pil.size
    notes = _size_notes(width, height)
    short = min(width, height)
    if short <= size:
        if pil.format == "JPEG" and pil.mode == "RGB":
            _load(pil, scale_to=(max(1, width // 8), max(1, height // 8)))
            return data, notes + [f"kept: shorter side <= {size}"]
        return _jpeg(_to_rgb(_load(pil), notes)), notes + [f"kept size: shorter side <= {size}"]
    new = (max(1, round(width * size / short)), max(1, round(height * size / short)))
    pil = _to_rgb(_load(pil, scale_to=new), notes)
    return _jpeg(pil.resize(new, Image.Resampling.BICUBIC)), notes


def limit_pixels(data: bytes, max_pixels: int) -> tuple[bytes, list[str]]:
    """RGB JPEG with at most `max_pixels` pixels (SUN397's sun397/tfds images)."""
    pil = _open(data)
    width, height = pil.size
    notes = _size_notes(width, height)
    if width * height <= max_pixels:
        return _jpeg(_to_rgb(_load(pil), notes)), notes
    factor = math.sqrt(max_pixels / (width * height))
    new = (max(1, round(width * factor)), max(1, round(height * factor)))
    pil = _to_rgb(_load(pil, scale_to=new), notes)
    return _jpeg(pil.resize(new, Image.Resampling.BICUBIC)), notes
