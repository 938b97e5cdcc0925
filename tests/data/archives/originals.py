"""Tiny datasets in their original layouts (archives and extracted trees), built here.

Helpers for the tests of jaxcnn.data.archives (tests/data/conftest.py marks absl flags parsed).
"""

import io
import os
import tarfile

import numpy as np
from PIL import Image


def jpeg(width: int, height: int, seed: int, mode: str = "RGB", fmt: str = "JPEG") -> bytes:
    """A small image whose pixels depend on the seed (so decoded images can be told apart)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width]
    base = rng.integers(0, 200, 3)
    pixels = (base + (x * 3 + y * 2)[..., None] % 50).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt, quality=90) if fmt == "JPEG" else image.save(out, format=fmt)
    return out.getvalue()


def write_files(root: str, files: dict) -> None:
    """files: archive path -> bytes or str."""
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)


def write_tar(path, files: dict, mode: str = "w"):
    """A tar (mode 'w' plain, 'w:gz' gzipped) holding files (archive path -> bytes or str);
    `path` may be a file object."""
    target = {"fileobj": path} if hasattr(path, "write") else {"name": path}
    with tarfile.open(mode=mode, **target) as tar:
        for name, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
