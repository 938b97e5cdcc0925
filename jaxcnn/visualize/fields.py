"""Receptive fields of the taps, from the geometry in `alexnet.AlexNetConfig`.

See docs/methods.md §Visualisation. A tap position (y, x) sees the input rows
``[y·J − P, y·J − P + R − 1]`` (and the same columns), where, layer by layer from the input
(R = 1, J = 1, P = 0): a convolution of kernel k, stride s, padding p gives
``R += (k − 1)·J; P += p·J; J *= s``; a max pool of window w, stride s (no padding) gives
``R += (w − 1)·J; J *= s``. ReLU and LRN change nothing. CaffeNet: conv1 R = 19 (after its
pool), conv5 R = 195, J = 32. A field may reach outside the image (padding, Caffe's ceil-mode
last window); crops fill that part with a constant. fc taps see the whole image.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxcnn.model import alexnet


@dataclasses.dataclass(frozen=True)
class Field:
    size: int  # R: rows (and columns) of input one position sees
    stride: int  # J: input pixels between neighbouring positions
    offset: int  # P: the first row seen by position 0 is -P

    def box(self, y: int, x: int) -> tuple[int, int]:
        """Top-left input corner (may be negative) of position (y, x)'s field."""
        return y * self.stride - self.offset, x * self.stride - self.offset


def receptive_field(config: alexnet.AlexNetConfig, layer: str) -> Field:
    """The `Field` of tap `layer` (module docstring)."""
    if layer in ("fc6", "fc7"):
        return Field(config.input_size, config.input_size, 0)
    if layer not in alexnet.CONV_NAMES:
        raise ValueError(f"layer must be one of {alexnet.TAP_NAMES}, got {layer!r}")
    size, stride, offset = 1, 1, 0
    for name, conv in zip(alexnet.CONV_NAMES, config.convs, strict=True):
        size += (conv.kernel - 1) * stride
        offset += conv.padding * stride
        stride *= conv.stride
        if conv.pool:
            size += (config.pool_window - 1) * stride
            stride *= config.pool_stride
        if name == layer:
            return Field(size, stride, offset)
    raise AssertionError("unreachable")


def crop(image_HxWxC: np.ndarray, top: int, left: int, size: int, *, fill=0.0) -> np.ndarray:
    """The ``size × size`` window of `image_HxWxC` at (top, left), `fill` outside the image."""
    image = np.asarray(image_HxWxC)
    h, w = image.shape[:2]
    out = np.full((size, size, *image.shape[2:]), fill, dtype=image.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, h), min(left + size, w)
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
    return out


def crop_fields(images_NxHxWxC, field: Field, yx_Nx2, *, fill=0.0) -> np.ndarray:
    """[N, R, R, C]: image n's crop of the field of position ``yx_Nx2[n]``."""
    images, yx = np.asarray(images_NxHxWxC), np.asarray(yx_Nx2)
    if images.ndim != 4 or yx.shape != (images.shape[0], 2):
        raise ValueError(
            f"need [N, H, W, C] images and [N, 2] positions, got {images.shape}, {yx.shape}"
        )
    out = np.full((len(images), field.size, field.size, images.shape[3]), fill, images.dtype)
    for n, (y, x) in enumerate(yx):
        out[n] = crop(images[n], *field.box(int(y), int(x)), field.size, fill=fill)
    return out
