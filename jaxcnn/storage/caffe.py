"""Import Caffe weights (``.caffemodel``) into jaxcnn's CaffeNet parameters, without Caffe.

A ``.caffemodel`` is a binary protobuf ``NetParameter``. This module reads the protobuf wire
format directly with a minimal schema of the fields it needs (``caffe.proto``):

- ``NetParameter``: ``layer = 100`` (current ``LayerParameter``), ``layers = 2`` (legacy
  ``V1LayerParameter``).
- ``LayerParameter``: ``name = 1``, ``type = 2`` (string), ``blobs = 7``.
- ``V1LayerParameter``: ``name = 4``, ``type = 5`` (enum), ``blobs = 6``, ``layer = 1`` (a nested
  ``V0LayerParameter`` of the oldest models: ``name = 1``, ``blobs = 50``).
- ``BlobProto``: ``num = 1, channels = 2, height = 3, width = 4`` (legacy 4-d shape),
  ``data = 5`` (float, packed or not), ``shape = 7`` (``BlobShape``: ``dim = 1``, int64),
  ``double_data = 8``.

Layout conversion (Caffe -> jaxcnn, see `jaxcnn.model`):

- conv weights ``(out, in / groups, kh, kw)`` -> HWIO ``(kh, kw, in / groups, out)``; Caffe's
  groups split the output channels in contiguous blocks, as ours do.
- InnerProduct weights ``(out, in)`` -> ``(in, out)``. For fc6, Caffe flattens the conv5 map in
  ``(C, H, W)`` order and we flatten NHWC in ``(H, W, C)`` order, so fc6's input rows are permuted.
- biases ``(out,)`` (or legacy ``(1, 1, 1, out)``) -> ``(out,)``.

**Channel order.** The imported network computes on inputs in the channel order the Caffe model
was trained with: BGR for the BVLC models (``bvlc_reference_caffenet``, ``bvlc_alexnet``), with
their mean (``imagenet_mean.binaryproto``, see `load_mean`, or per channel B 104, G 117, R 123)
subtracted from 0-255 pixel values. Feed images in that order and scale, or flip conv1's input
channels (``kernel[:, :, ::-1, :]``) to use RGB inputs.
"""

from __future__ import annotations

import functools
import os

import jax
import numpy as np

# The layers with parameters, in Caffe's names (jaxcnn.model uses the same names).
CONV_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
PARAM_LAYERS = (*CONV_LAYERS, "fc6", "fc7", "fc8")

# Wire types of the protobuf encoding.
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class CaffeFormatError(ValueError):
    """The file is not a readable Caffe NetParameter/BlobProto, or does not fit the model."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise CaffeFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CaffeFormatError("varint longer than 10 bytes")


def fields(buf: memoryview):
    """Yield ``(field_number, wire_type, value)`` of one protobuf message: an int for varint
    and fixed-width fields (fixed values as raw bytes), a memoryview for length-delimited ones."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = _varint(buf, pos)
        elif wire == FIXED64:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == FIXED32:
            value, pos = buf[pos : pos + 4], pos + 4
        elif wire == LENGTH:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise CaffeFormatError(f"unsupported wire type {wire} (field {number})")
        if pos > end:
            raise CaffeFormatError(f"field {number} runs past the end of its message")
        yield number, wire, value


def _packed_varints(buf: memoryview) -> list[int]:
    out, pos = [], 0
    while pos < len(buf):
        value, pos = _varint(buf, pos)
        out.append(value)
    return out


def parse_blob(buf: memoryview) -> np.ndarray:
    """A ``BlobProto`` as a float32 array of its declared shape (``shape`` or the legacy
    num/channels/height/width, which Caffe treats as a 4-d shape)."""
    legacy = {1: 0, 2: 0, 3: 0, 4: 0}
    dims, chunks, saw_legacy = None, [], False
    for number, wire, value in fields(buf):
        if number in legacy and wire == VARINT:
            legacy[number], saw_legacy = value, True
        elif number == 5 and wire == LENGTH:  # packed float data
            chunks.append(np.frombuffer(value, "<f4"))
        elif number == 5 and wire == FIXED32:  # unpacked float data
            chunks.append(np.frombuffer(value, "<f4"))
        elif number == 8 and wire in (LENGTH, FIXED64):  # double_data
            chunks.append(np.frombuffer(value, "<f8").astype(np.float32))
        elif number == 7 and wire == LENGTH:  # BlobShape
            dims = []
            for n, w, v in fields(value):
                if n == 1:
                    dims.extend(_packed_varints(v) if w == LENGTH else [v])
    if dims is None:
        if not saw_legacy:
            raise CaffeFormatError("blob has neither shape nor num/channels/height/width")
        dims = [legacy[1], legacy[2], legacy[3], legacy[4]]
    data = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if data.size != int(np.prod(dims)):
        raise CaffeFormatError(
            f"blob declares shape {dims} ({int(np.prod(dims))} values) but holds {data.size} values"
        )
    return data.astype(np.float32).reshape(dims)


def _parse_layer(buf: memoryview, name_field: int, blob_field: int) -> tuple[str, list]:
    name, blobs = "", []
    for number, wire, value in fields(buf):
        if number == name_field and wire == LENGTH:
            name = bytes(value).decode("utf-8")
        elif number == blob_field and wire == LENGTH:
            blobs.append(parse_blob(value))
    return name, blobs


def read_net_blobs(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """``{layer name: [blobs]}`` of every layer with parameters in a ``.caffemodel``, from the
    current ``layer`` list, the legacy V1 ``layers`` list, or V0 layers nested in V1 ones."""
    with open(path, "rb") as f:
        buf = memoryview(f.read())
    out = {}
    try:
        for number, wire, value in fields(buf):
            if wire != LENGTH:
                continue
            if number == 100:  # LayerParameter
                name, blobs = _parse_layer(value, 1, 7)
            elif number == 2:  # V1LayerParameter (maybe wrapping a V0LayerParameter)
                name, blobs = _parse_layer(value, 4, 6)
                for n, w, v in fields(value):
                    if n == 1 and w == LENGTH:
                        name, blobs = _parse_layer(v, 1, 50)
            else:
                continue
            if blobs:
                out[name] = blobs
    except CaffeFormatError as e:
        raise CaffeFormatError(f"{path}: {e}") from None
    if not out:
        raise CaffeFormatError(f"{path}: no layers with weights (is it a .caffemodel?)")
    return out


def _matrix(blob: np.ndarray, layer: str) -> np.ndarray:
    """An InnerProduct weight as 2-d (out, in), accepting Caffe's legacy (1, 1, out, in)."""
    if blob.ndim == 4 and blob.shape[:2] == (1, 1):
        return blob[0, 0]
    if blob.ndim != 2:
        raise CaffeFormatError(f"{layer}: weight blob of shape {blob.shape} is not a matrix")
    return blob


def convert_layer(name: str, blobs: list[np.ndarray], conv5_hwc: tuple[int, int, int]) -> dict:
    """One layer's Caffe blobs ``[weight, bias]`` in jaxcnn's layout (module docstring)."""
    if len(blobs) != 2:
        raise CaffeFormatError(f"{name}: expected weight and bias blobs, found {len(blobs)}")
    weight, bias = blobs
    bias = bias.reshape(-1)
    if name in CONV_LAYERS:
        if weight.ndim != 4:
            raise CaffeFormatError(f"{name}: conv weight of shape {weight.shape} is not 4-d")
        return {"kernel": weight.transpose(2, 3, 1, 0), "bias": bias}
    w_oi = _matrix(weight, name)
    if name == "fc6":
        h, w, c = conv5_hwc
        if w_oi.shape[1] != h * w * c:
            raise CaffeFormatError(f"fc6: {w_oi.shape[1]} inputs, but conv5 gives {h}x{w}x{c}")
        # Caffe's input index is (c, h, w); ours is (h, w, c).
        w_oi = w_oi.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(w_oi.shape[0], -1)
    return {"kernel": w_oi.T, "bias": bias}


def load_caffemodel(
    path: str | os.PathLike,
    *,
    preset: str = "caffenet",
    num_classes: int | None = None,
    **overrides,
) -> dict:
    """Parameters for ``alexnet.from_preset(preset, num_classes, **overrides)`` from a
    ``.caffemodel`` (float32 numpy arrays, ``{layer: {'kernel', 'bias'}}``).

    `num_classes` defaults to fc8's output size in the file; a different value is an error
    (fine-tuning replaces fc8 afterwards, see `jaxcnn.train.regimes`). Every blob is checked against
    the model's parameter shapes. Inputs must follow the Caffe model's channel order (BGR for
    the BVLC models; module docstring).
    """
    # Imported here: storage sits below the model package and only this function needs the
    # network's geometry (the expected shapes).
    from jaxcnn.model import alexnet

    blobs = read_net_blobs(path)
    missing = [n for n in PARAM_LAYERS if n not in blobs]
    if missing:
        raise CaffeFormatError(f"{path}: layers {missing} not found (has {sorted(blobs)})")
    file_classes = _matrix(blobs["fc8"][0], "fc8").shape[0]
    if num_classes is not None and num_classes != file_classes:
        raise CaffeFormatError(f"{path}: fc8 has {file_classes} outputs, not {num_classes}")
    module = alexnet.from_preset(preset, file_classes, **overrides)
    conv5 = module.config.feature_shapes()["conv5"]
    expected = jax.eval_shape(functools.partial(alexnet.init_params, module), jax.random.key(0))
    params = {}
    for name in PARAM_LAYERS:
        layer = convert_layer(name, blobs[name], conv5)
        for leaf, arr in layer.items():
            want = tuple(expected[name][leaf].shape)
            if arr.shape != want:
                raise CaffeFormatError(
                    f"{path}: {name}/{leaf} has shape {arr.shape} after "
                    f"conversion, the {preset} model needs {want}"
                )
        params[name] = {k: np.ascontiguousarray(v, np.float32) for k, v in layer.items()}
    return params


def load_mean(path: str | os.PathLike) -> np.ndarray:
    """A Caffe mean file (``.binaryproto``, one BlobProto of shape (1, C, H, W)) as an
    (H, W, C) float32 array, channels in the file's order (BGR for BVLC's ImageNet mean)."""
    with open(path, "rb") as f:
        blob = parse_blob(memoryview(f.read()))
    if blob.ndim != 4 or blob.shape[0] != 1:
        raise CaffeFormatError(f"{path}: mean blob of shape {blob.shape}, expected (1, C, H, W)")
    return blob[0].transpose(1, 2, 0)
