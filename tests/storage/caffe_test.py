"""Tests for jaxcnn.storage.caffe: synthetic .caffemodel files written here byte by byte (both
the current `layer` and the legacy V1 `layers` format), imported and run against a plain numpy
Caffe forward pass in NCHW."""

import functools
import math
import struct

import jax
import numpy as np
import pytest

from jaxcnn import model
from jaxcnn.model import alexnet
from jaxcnn.storage import caffe

GEOMETRY = dict(width=0.125, fc_width=32, input_size=48, init="caffe")  # conv5 map 2x2x32
NUM_CLASSES = 10


# --- a minimal protobuf writer (independent of the reader under test) -------------------------
def _varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _key(field, wire):
    return _varint(field << 3 | wire)


def _bytes_field(field, payload):
    return _key(field, 2) + _varint(len(payload)) + payload


def _int_field(field, n):
    return _key(field, 0) + _varint(n)


def _blob_current(arr):
    """BlobProto with `shape` (packed int64 dims) and packed float data."""
    dims = b"".join(_varint(d) for d in arr.shape)
    return _bytes_field(7, _bytes_field(1, dims)) + _bytes_field(5, arr.astype("<f4").tobytes())


def _blob_legacy(arr):
    """BlobProto with num/channels/height/width and unpacked floats (one tag per value)."""
    shape4 = (1,) * (4 - arr.ndim) + arr.shape
    head = b"".join(_int_field(f, d) for f, d in zip((1, 2, 3, 4), shape4, strict=True))
    return head + b"".join(_key(5, 5) + struct.pack("<f", x) for x in arr.ravel())


def _net_current(layers):
    out = _bytes_field(1, b"TinyCaffeNet")
    out += _bytes_field(100, _bytes_field(1, b"data") + _bytes_field(2, b"Input"))
    for name, blobs in layers.items():
        body = _bytes_field(1, name.encode()) + _bytes_field(2, b"Convolution")
        body += b"".join(_bytes_field(7, _blob_current(b)) for b in blobs)
        out += _bytes_field(100, body)
        relu = _bytes_field(1, f"relu_{name}".encode()) + _bytes_field(2, b"ReLU")
        out += _bytes_field(100, relu)
    return out


def _net_v1(layers):
    out = _bytes_field(1, b"TinyCaffeNet")
    for name, blobs in layers.items():
        enum = 4 if name.startswith("conv") else 14  # CONVOLUTION, INNER_PRODUCT
        # fc weights in the legacy 4-d form (1, 1, out, in), biases (1, 1, 1, out)
        legacy = [b if b.ndim == 4 else b.reshape((1,) * (4 - b.ndim) + b.shape) for b in blobs]
        body = _bytes_field(4, name.encode()) + _int_field(5, enum)
        body += b"".join(_bytes_field(6, _blob_legacy(b)) for b in legacy)
        out += _bytes_field(2, body)
    out += _bytes_field(2, _bytes_field(4, b"loss") + _int_field(5, 21))
    return out


def _net_v0(layers):
    """The oldest format: V0LayerParameter (name 1, blobs 50) nested in V1's field 1."""
    out = b""
    for name, blobs in layers.items():
        legacy = [b if b.ndim == 4 else b.reshape((1,) * (4 - b.ndim) + b.shape) for b in blobs]
        v0 = _bytes_field(1, name.encode()) + _bytes_field(2, b"conv")
        v0 += b"".join(_bytes_field(50, _blob_current(b)) for b in legacy)
        out += _bytes_field(2, _bytes_field(1, v0))
    return out


WRITERS = {"current": _net_current, "v1": _net_v1, "v0": _net_v0}


# --- Caffe's forward pass in plain numpy, NCHW ---------------------------------------------
def _conv(x, w, b, stride, pad, groups):
    n, c, h, wd = x.shape
    o, cg, k, _ = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for g in range(groups):
        xg, wg = x[:, g * cg : (g + 1) * cg], w[g * og : (g + 1) * og]
        for i in range(oh):
            for j in range(ow):
                patch = xg[:, :, i * stride : i * stride + k, j * stride : j * stride + k]
                out[:, g * og : (g + 1) * og, i, j] = np.einsum("nchw,ochw->no", patch, wg)
    return out + b[None, :, None, None]


def _pool(x, k=3, s=2):
    n, c, h, w = x.shape
    oh, ow = math.ceil((h - k) / s) + 1, math.ceil((w - k) / s) + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):  # Caffe clips the last window at the border
            out[:, :, i, j] = x[:, :, i * s : min(i * s + k, h), j * s : min(j * s + k, w)].max(
                axis=(2, 3)
            )
    return out


def _lrn(x, size=5, alpha=1e-4, beta=0.75, k=1.0):
    c = x.shape[1]
    sq = np.pad(x * x, ((0, 0), (size // 2, size // 2), (0, 0), (0, 0)))
    scale = k + alpha / size * np.stack([sq[:, i : i + size].sum(1) for i in range(c)], 1)
    return x * scale ** (-beta)


def _caffe_forward(blobs, x_nchw, config):
    h = x_nchw.astype(np.float64)
    for name, layer in zip(alexnet.CONV_NAMES, config.convs, strict=True):
        w, b = blobs[name]
        h = np.maximum(_conv(h, w, b, layer.stride, layer.padding, layer.groups), 0)
        if layer.pool:
            h = _pool(h)
        if layer.lrn:
            h = _lrn(h)
    h = h.reshape(h.shape[0], -1)  # Caffe flattens (C, H, W)
    for name in alexnet.FC_NAMES:
        w, b = blobs[name]
        h = h @ w.T + b
        if name != "fc8":
            h = np.maximum(h, 0)
    return h


@pytest.fixture(scope="module")
def caffe_blobs():
    """Random Caffe-layout blobs for the tiny geometry: conv (O, I/g, kh, kw), fc (out, in)."""
    rng = np.random.default_rng(0)
    module = alexnet.from_preset("small", NUM_CLASSES, **GEOMETRY)
    ours = jax.eval_shape(functools.partial(alexnet.init_params, module), jax.random.key(0))
    blobs = {}
    for name in (*alexnet.CONV_NAMES, *alexnet.FC_NAMES):
        kshape = ours[name]["kernel"].shape
        wshape = (kshape[3], kshape[2], kshape[0], kshape[1]) if len(kshape) == 4 else kshape[::-1]
        blobs[name] = [
            rng.normal(0, 0.2, wshape).astype(np.float32),
            rng.normal(0, 0.1, kshape[-1]).astype(np.float32),
        ]
    return module, blobs


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_import_reproduces_weights_and_forward(tmp_path, caffe_blobs, fmt):
    module, blobs = caffe_blobs
    path = tmp_path / f"{fmt}.caffemodel"
    path.write_bytes(WRITERS[fmt](blobs))
    params = caffe.load_caffemodel(path, preset="small", **GEOMETRY)
    # Weights: conv OIHW -> HWIO, fc transposed, fc6 rows from (C, H, W) to (H, W, C).
    for name in alexnet.CONV_NAMES:
        np.testing.assert_array_equal(params[name]["kernel"], blobs[name][0].transpose(2, 3, 1, 0))
    for name in ("fc7", "fc8"):
        np.testing.assert_array_equal(params[name]["kernel"], blobs[name][0].T)
    for name in blobs:
        np.testing.assert_array_equal(params[name]["bias"], blobs[name][1])
    h, w, c = module.config.feature_shapes()["conv5"]
    fc6 = blobs["fc6"][0]
    for hh, ww, cc in [(0, 0, 0), (1, 0, 5), (0, 1, 31), (1, 1, 17)]:
        np.testing.assert_array_equal(
            params["fc6"]["kernel"][(hh * w + ww) * c + cc], fc6[:, (cc * h + hh) * w + ww]
        )
    # Forward: our NHWC network on the imported weights = Caffe's NCHW computation.
    x = np.random.default_rng(1).normal(0, 50, (2, 48, 48, 3)).astype(np.float32)
    logits, _ = jax.jit(functools.partial(module.apply, train=False))({"params": params}, x)
    want = _caffe_forward(blobs, x.transpose(0, 3, 1, 2), module.config)
    np.testing.assert_allclose(np.asarray(logits), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_load_mean(tmp_path):
    mean = np.arange(1 * 3 * 4 * 5, dtype=np.float32).reshape(1, 3, 4, 5)
    path = tmp_path / "mean.binaryproto"
    path.write_bytes(_blob_legacy(mean))
    got = caffe.load_mean(path)
    assert got.shape == (4, 5, 3)
    np.testing.assert_array_equal(got[2, 3], mean[0, :, 2, 3])


def test_errors(tmp_path, caffe_blobs):
    _, blobs = caffe_blobs
    good = _net_current(blobs)
    path = tmp_path / "m.caffemodel"
    path.write_bytes(good)
    with pytest.raises(caffe.CaffeFormatError, match="fc8 has 10 outputs, not 20"):
        caffe.load_caffemodel(path, preset="small", num_classes=20, **GEOMETRY)
    with pytest.raises(caffe.CaffeFormatError, match="the small model needs"):
        caffe.load_caffemodel(path, preset="small", width=0.25, fc_width=32, input_size=48)
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(caffe.CaffeFormatError, match="m.caffemodel"):
        caffe.load_caffemodel(path, preset="small", **GEOMETRY)
    path.write_bytes(_net_current({k: v for k, v in blobs.items() if k != "conv3"}))
    with pytest.raises(caffe.CaffeFormatError, match=r"\['conv3'\] not found"):
        caffe.load_caffemodel(path, preset="small", **GEOMETRY)
    bad = dict(blobs, conv1=[blobs["conv1"][0][:, :, :, :-1].copy(), blobs["conv1"][1]])
    path.write_bytes(_net_current(bad))
    with pytest.raises(caffe.CaffeFormatError, match="conv1/kernel"):
        caffe.load_caffemodel(path, preset="small", **GEOMETRY)
    path.write_bytes(
        _bytes_field(
            100,
            _bytes_field(1, b"conv1")
            + _bytes_field(7, _int_field(1, 2) + _bytes_field(5, np.zeros(3, "<f4").tobytes())),
        )
    )
    with pytest.raises(caffe.CaffeFormatError, match="holds 3 values"):
        caffe.read_net_blobs(path)


def test_import_script_writes_a_readable_checkpoint(tmp_path):
    """experiments/import_caffe.py on a small-preset model (default geometry, 100 classes)."""
    import os
    import subprocess
    import sys

    from jaxcnn.storage import checkpoints

    module = alexnet.from_preset("small", 100, init="caffe")  # a Caffe model: no input scale
    shapes = jax.eval_shape(functools.partial(alexnet.init_params, module), jax.random.key(0))
    rng = np.random.default_rng(2)
    blobs = {}
    for name, layer in shapes.items():
        k = layer["kernel"].shape
        wshape = (k[3], k[2], k[0], k[1]) if len(k) == 4 else k[::-1]
        blobs[name] = [
            rng.normal(0, 0.1, wshape).astype(np.float32),
            rng.normal(0, 0.1, k[-1]).astype(np.float32),
        ]
    model_path = tmp_path / "small.caffemodel"
    model_path.write_bytes(_net_current(blobs))
    mean_path = tmp_path / "mean.binaryproto"
    mean_path.write_bytes(_blob_current(np.ones((1, 3, 72, 72), np.float32)))
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    workdir = tmp_path / "imported"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(repo, "experiments", "import_caffe.py"),
            f"--caffemodel={model_path}",
            f"--workdir={workdir}",
            "--preset=small",
            "--step=310000",
            f"--mean={mean_path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=repo),  # this checkout's jaxcnn
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "755,140 parameters" in result.stdout
    restored = checkpoints.restore_params(workdir, 310000)
    direct = caffe.load_caffemodel(model_path, preset="small", init="caffe")
    for name in direct:
        for leaf in ("kernel", "bias"):
            np.testing.assert_array_equal(restored[name][leaf], direct[name][leaf])
    assert model.module_from_run(str(workdir)).config == module.config
    assert np.load(workdir / "mean_bgr.npy").shape == (72, 72, 3)
