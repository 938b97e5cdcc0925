"""Host-side input pipeline speed for ImageNet-sized JPEGs, per core (used by
benchmarks/accelerator.py).

One image's work is Caffe's training transform (docs/methods.md §2): decode, resize to 256 x 256
(ignoring the aspect ratio), a random 227 crop, a random mirror, the mean subtracted. It runs in
one thread and is timed by that thread's CPU time, so images/s is per host core (and does not
count other processes sharing the cores). Decoders:

- ``pillow``: what jaxcnn.data does today (`records.decode_image`, `preprocess.resize_image`,
  `preprocess.random_crop`);
- ``pillow-draft``: PIL's ``draft()`` lets libjpeg decode at 1/2, 1/4 or 1/8 scale when the result
  still covers 256 x 256 (nothing to gain below 512 px on the short side);
- ``simplejpeg``: libjpeg-turbo through the simplejpeg wheel, with its reduced-size decoding
  (``min_height``/``min_width`` 256), when it is installed (``pip install simplejpeg``).

``+uint8`` variants stop after crop and mirror (uint8 out, 4x fewer bytes to copy): the mean
subtraction and scaling then run on the device. The JPEGs are synthetic (smooth colour fields
with fine noise, quality 90), ``prepared`` ones at 256 x 256 as a dataset prepared with
``--resize=256`` stores them.
"""

from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image

from jaxcnn.data import preprocess, records

RESIZE, CROP = 256, 227


def make_jpegs(count: int, width: int, height: int, *, seed: int = 0) -> list[bytes]:
    """`count` JPEGs of natural-ish content (so that decoding costs what photographs cost)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))
        noisy = smooth.astype(np.float32) + rng.normal(0, 12, size=smooth.shape)
        buf = io.BytesIO()
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _pillow(data: bytes) -> np.ndarray:
    image, _ = records.decode_image(data, where="bench")
    return preprocess.resize_image(image, RESIZE)


def _pillow_draft(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as pil:
        pil.draft("RGB", (RESIZE, RESIZE))  # reduced-size DCT decoding where it still covers 256
        image = np.asarray(pil.convert("RGB"))
    return preprocess.resize_image(image, RESIZE)


def _simplejpeg(data: bytes) -> np.ndarray:
    import simplejpeg

    image = simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=RESIZE, min_width=RESIZE)
    return preprocess.resize_image(np.ascontiguousarray(image), RESIZE)


def decoders() -> dict:
    """{name: fn(bytes) -> uint8 [256, 256, 3]} of the decoders available here."""
    found = {"pillow": _pillow, "pillow-draft": _pillow_draft}
    try:
        import simplejpeg  # noqa: F401

        found["simplejpeg"] = _simplejpeg
    except ImportError:
        pass
    return found


def _crop_uint8(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The random crop and mirror of `preprocess.random_crop`, without the mean (uint8)."""
    y, x = rng.integers(0, image.shape[0] - CROP + 1, size=2)
    window = image[y : y + CROP, x : x + CROP]
    return np.ascontiguousarray(window[:, ::-1] if rng.integers(0, 2) else window)


def rate(jpegs: list[bytes], decode, *, uint8: bool, min_seconds: float = 0.5) -> float:
    """Images per CPU-second of this thread (= per core) of decode + resize + crop + mirror
    (+ mean) over the JPEGs, repeated until the thread has used `min_seconds` of CPU. CPU time,
    not wall time, so that other processes sharing the cores do not count."""
    mean = np.full((RESIZE, RESIZE, 3), 118.0, np.float32)
    rng = np.random.default_rng(0)
    done, start = 0, time.thread_time()
    while True:
        for data in jpegs:
            image = decode(data)
            if uint8:
                out = _crop_uint8(image, rng)
            else:
                out = preprocess.random_crop(image, mean, crop=CROP, rng=rng)
            assert out.shape == (CROP, CROP, 3)
        done += len(jpegs)
        elapsed = time.thread_time() - start
        if elapsed >= min_seconds:
            return done / elapsed


def measure(*, count: int, size: tuple[int, int], min_seconds: float = 0.5) -> list[dict]:
    """Per-core images/s of every decoder, float32 and uint8 outputs, for `count` JPEGs at
    `size` (width, height) and for the same number prepared at 256 x 256."""
    rows = []
    for source, (w, h) in (("ImageNet-sized", size), ("prepared", (RESIZE, RESIZE))):
        jpegs = make_jpegs(count, w, h)
        kb = np.mean([len(j) for j in jpegs]) / 1e3
        for name, decode in decoders().items():
            for uint8 in (False, True):
                rows.append(
                    {
                        "source": f"{source} {w}x{h} ({kb:.0f} kB)",
                        "decoder": name + ("+uint8" if uint8 else ""),
                        "img_per_s": rate(jpegs, decode, uint8=uint8, min_seconds=min_seconds),
                    }
                )
    return rows
