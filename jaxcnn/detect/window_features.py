"""Features of every window: pool5 streamed to disk in float16 or in a compact ablated form;
fc6/fc7 and the other ablations computed on the fly.

R-CNN caches pool5 of every box and computes fc6/fc7 from it when training and testing the detectors
(``rcnn_pool5_to_fcX.m``). Here pool5 (the model's ``conv5`` tap, after pooling) is stored as
float16 through `jaxcnn.features.extract_features` (resumable, manifest) in window order: image by
image, each image's boxes in its entry order (`jaxcnn.detect.roidb`). `LayerView` then gives any
layer of one image's windows: ``conv5`` (optionally ablated: binarize, sp-max, sp-shuffle,
sp-max-bin; `jaxcnn.features.ablations`), or ``fc6`` / ``fc7`` computed from the stored pool5 with
the network's own fc weights, in one jitted program per padded size. Float16 keeps 11 significant
bits: relative rounding <= 2^-11 of each pool5 value.

Compact stores (`extract_compact`, `load_compact`) hold only what one conv5 ablation of Table 8
needs, encoded inside the extraction's jitted forward pass (`encode`) from pool5 rounded to float16
first, so that their features equal exactly the ablation of the float16 pool5 that the same
forward pass gives (two separate compilations, e.g. on a GPU, may differ in pool5's last bits):

| form           | stored per window                       | bytes (`bytes_per_window`)    |
|----------------|-----------------------------------------|-------------------------------|
| ``none``       | float16 pool5 (`extract_pool5`)         | 2·H·W·C (CaffeNet 18,432)     |
| ``binarize``   | ``np.packbits`` of the H·W·C signs      | ceil(H·W·C / 8) (1,152)       |
| ``sp-max``     | float16 max over the H·W positions      | 2·C (512)                     |
| ``sp-max-bin`` | ``np.packbits`` of the C sp-max signs   | ceil(C / 8) (32)              |

(the ``small`` preset's 3×3×64 pool5: 1,152 / 72 / 128 / 8 bytes). VOC 2007 with ~2,000 boxes of
9,963 images (~2.0e7 windows): float16 367 GB, binarize 23 GB, sp-max 10 GB, sp-max-bin 0.64 GB.
Bits are MSB first (``np.packbits``' default), rows padded with zero bits to whole bytes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn import storage
from jaxcnn.detect import windows as windows_lib
from jaxcnn.features import ablations, extraction

LAYERS = ("conv5", "fc6", "fc7")
# Ablations a compact store holds (module docstring) and their storage dtypes.
COMPACT_FORMS = {"binarize": np.uint8, "sp-max": np.float16, "sp-max-bin": np.uint8}
COMPACT_META = "compact.json"  # {"form", "pool5_shape"} beside the extraction's manifest


def window_batches(image_of, boxes_per_image, spec: windows_lib.WarpSpec, *, batch_size: int):
    """Warped windows of every image in order, ``{'image', 'mask'}`` batches (last padded)."""
    flat_img = np.concatenate([np.full(len(b), i) for i, b in enumerate(boxes_per_image)])
    flat_box = np.concatenate([np.asarray(b).reshape(-1, 4) for b in boxes_per_image])
    ws = windows_lib.WindowSet(flat_img, flat_box, np.zeros(len(flat_img), np.int64))
    for lo in range(0, len(ws), batch_size):
        idx = np.arange(lo, min(lo + batch_size, len(ws)))
        images = windows_lib.warp_windows(image_of, ws, idx, spec)
        short = batch_size - len(idx)
        if short:
            images = np.concatenate([images, np.zeros((short, *images.shape[1:]), np.float32)])
        yield {"image": images, "mask": np.arange(batch_size) < len(idx)}


def extract_pool5(
    module, params, image_of, boxes_per_image, spec, out_dir, *, batch_size=256, progress=None
) -> np.ndarray:
    """float16 memmap [W, H, W, C] of every window's pool5 (resumes an interrupted run)."""
    total = int(sum(len(b) for b in boxes_per_image))
    batches = window_batches(image_of, boxes_per_image, spec, batch_size=batch_size)
    try:
        return extraction.load_features(out_dir, "conv5")
    except ValueError:
        pass  # not there or incomplete: extract (resuming at the stored rows)
    extraction.extract_features(
        module,
        params,
        batches,
        taps=("conv5",),
        out_dir=out_dir,
        num_examples=total,
        dtype=np.float16,
        progress=progress,
    )
    return extraction.load_features(out_dir, "conv5")


def _check_form(form: str) -> None:
    if form not in COMPACT_FORMS:
        raise ValueError(f"compact form must be one of {tuple(COMPACT_FORMS)}, got {form!r}")


def feature_count(form: str, pool5_shape) -> int:
    """D, the features per window of `form` (``none``: pool5 itself) on pool5 [H, W, C]."""
    h, w, c = pool5_shape
    return c if form in ("sp-max", "sp-max-bin") else h * w * c


def bytes_per_window(form: str, pool5_shape) -> int:
    """Bytes one window takes in the store of `form` (module docstring's table); ``none`` is
    the float16 pool5 of `extract_pool5`. Multiply by the windows to size a data set."""
    if form != "none":
        _check_form(form)
    d = feature_count(form, pool5_shape)
    return math.ceil(d / 8) if form in ("binarize", "sp-max-bin") else 2 * d


def encode(pool5_NxHxWxC, *, form: str):
    """Compact rows of pool5 (jittable): ``[N, ceil(D / 8)]`` uint8 bits of the binary forms,
    ``[N, C]`` float16 of sp-max. pool5 is rounded to float16 first (the float16 store's
    rounding), so ``decode(encode(x))`` is the ablation of the stored float16 pool5, bit for bit."""
    _check_form(form)
    x = jnp.asarray(pool5_NxHxWxC).astype(jnp.float16)
    x = ablations.apply_ablation(form, x)
    x = x.reshape(x.shape[0], -1)
    return x if form == "sp-max" else jnp.packbits(x > 0, axis=1)  # {0, 1} -> bits, lossless


def decode(rows_NxB, *, form: str, pool5_shape) -> np.ndarray:
    """float32 [N, D] features of compact rows: the flattened ablation of pool5."""
    _check_form(form)
    rows = np.asarray(rows_NxB)
    if form == "sp-max":
        return rows.astype(np.float32)  # float16 -> float32 is exact
    count = feature_count(form, pool5_shape)  # drops the padding bits of the last byte
    return np.unpackbits(rows, axis=1, count=count).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class CompactPool5:
    """A compact store (`load_compact`): `rows` memmap [windows, B] in `form`'s encoding."""

    form: str
    pool5_shape: tuple[int, int, int]
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def features(self, lo: int, hi: int) -> np.ndarray:
        """float32 [hi - lo, D] features of windows lo..hi-1."""
        return decode(self.rows[lo:hi], form=self.form, pool5_shape=self.pool5_shape)


@dataclasses.dataclass(frozen=True)
class _Encoded:
    """A model whose only tap is the compact form of its pool5 (for `extract_features`, which
    calls ``apply``; hashable, so `extraction.make_forward` compiles once per model and form)."""

    module: object
    form: str

    def apply(self, variables, x, *, train: bool):
        logits, taps = self.module.apply(variables, x, train=train)
        return logits, {_tap(self.form): encode(taps["conv5"], form=self.form)}


def _tap(form: str) -> str:
    return f"pool5-{form}"


def _read_meta(out_dir) -> tuple[str, tuple[int, int, int]]:
    """(form, pool5 shape) of the store in `out_dir`; ValueError naming the file if unusable."""
    path = os.path.join(out_dir, COMPACT_META)
    if not os.path.exists(path):
        raise ValueError(f"no compact pool5 store in {out_dir}: {COMPACT_META} is missing")
    try:
        with open(path) as f:
            meta = json.load(f)
        form, shape = meta["form"], tuple(int(n) for n in meta["pool5_shape"])
        _check_form(form)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a compact pool5 description: {e!r}") from e
    return form, shape


def _write_meta(out_dir, form, pool5_shape) -> None:
    """Describe a new store, or check that the description there matches."""
    want = (form, tuple(int(n) for n in pool5_shape))
    path = os.path.join(out_dir, COMPACT_META)
    if not os.path.exists(path):
        os.makedirs(out_dir, exist_ok=True)
        storage.write_json(path, {"form": form, "pool5_shape": list(want[1])}, sync=True)
    elif _read_meta(out_dir) != want:
        raise ValueError(f"{path} describes another store ({_read_meta(out_dir)}, not {want})")


def extract_compact(
    module, params, image_of, boxes_per_image, spec, out_dir, *, form, batch_size=256, progress=None
) -> CompactPool5:
    """Every window's pool5 in the compact `form` (resumes an interrupted run, as
    `extract_pool5`): the float16 pool5 is never stored."""
    _check_form(form)
    total = int(sum(len(b) for b in boxes_per_image))
    size = spec.out_size
    images = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    shapes = jax.eval_shape(extraction.make_forward(module, ("conv5",)), params, images)
    _write_meta(out_dir, form, shapes["conv5"].shape[1:])
    if not extraction.is_complete(out_dir, (_tap(form),), total):
        extraction.extract_features(
            _Encoded(module, form),
            params,
            window_batches(image_of, boxes_per_image, spec, batch_size=batch_size),
            taps=(_tap(form),),
            out_dir=out_dir,
            num_examples=total,
            dtype=COMPACT_FORMS[form],
            progress=progress,
        )
    return load_compact(out_dir)


def load_compact(out_dir) -> CompactPool5:
    """The finished compact store in `out_dir`; ``ValueError`` naming the file when it is
    missing, incomplete or inconsistent with its description."""
    form, shape = _read_meta(out_dir)
    file = os.path.join(out_dir, f"{_tap(form)}.npy")
    try:
        rows = extraction.load_features(out_dir, _tap(form))
    except (ValueError, OSError) as e:
        raise ValueError(f"compact pool5 store {file} is unusable: {e}") from e
    width = feature_count(form, shape) if form == "sp-max" else bytes_per_window(form, shape)
    want = np.dtype(COMPACT_FORMS[form])
    if rows.ndim != 2 or rows.shape[1] != width or rows.dtype != want:
        raise ValueError(
            f"{file} holds {rows.dtype} {rows.shape[1:]} per window, but {form} of pool5 "
            f"{shape} is {want} ({width},)"
        )
    return CompactPool5(form, shape, rows)


def layer_from_pool5(params, pool5_NxHxWxC, *, layer: str, ablation: str = "none", key=None):
    """[N, D] features of `layer` from pool5 (jittable): conv5 ablated and flattened, or
    fc6 / fc7 = ReLU of the network's dense layers (the model's taps, before dropout)."""
    x = jnp.asarray(pool5_NxHxWxC, jnp.float32)
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
    if layer == "conv5":
        x = ablations.apply_ablation(ablation, x, key=key)
        return x.reshape(x.shape[0], -1)
    if ablation not in ("none", "binarize"):
        raise ValueError(f"{layer} accepts only the ablations none and binarize, not {ablation!r}")
    x = x.reshape(x.shape[0], -1)
    for name in ("fc6", "fc7")[: LAYERS.index(layer)]:
        x = jax.nn.relu(x @ params[name]["kernel"] + params[name]["bias"][None, :])
    return ablations.apply_ablation(ablation, x)


# One jitted function for every view: same shapes compile once per process, not once per detector.
_layer_from_pool5_jit = jax.jit(layer_from_pool5, static_argnames=("layer", "ablation"))


class LayerView:
    """``view(i) -> float32 [K_i, D]``: `layer` (+ ablation) features of image i's windows.

    `pool5` is the float16 store of `extract_pool5`, or a `CompactPool5` whose form is
    `ablation` (layer ``conv5`` only), read without the float16 store."""

    def __init__(self, pool5, counts_I, params, *, layer: str, ablation: str = "none", seed=0):
        if isinstance(pool5, CompactPool5) and (layer, ablation) != ("conv5", pool5.form):
            raise ValueError(
                f"a {pool5.form} store gives only conv5 with ablation {pool5.form!r}, "
                f"not {layer} with {ablation!r}"
            )
        self.pool5, self.params = pool5, params
        self.offsets = np.concatenate([[0], np.cumsum(counts_I)]).astype(np.int64)
        if self.offsets[-1] != len(pool5):
            raise ValueError(f"{self.offsets[-1]} windows listed, {len(pool5)} stored")
        self.layer, self.ablation, self.seed = layer, ablation, seed

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __call__(self, i: int) -> np.ndarray:
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        if isinstance(self.pool5, CompactPool5):
            return self.pool5.features(lo, hi)
        n = hi - lo
        size = max(8, 1 << max(0, n - 1).bit_length())  # few padded shapes to compile
        x = np.zeros((size, *self.pool5.shape[1:]), np.float16)
        x[:n] = self.pool5[lo:hi]
        key = None
        if self.ablation == "sp-shuffle":  # the only random ablation: a permutation per image
            key = jax.random.fold_in(jax.random.PRNGKey(self.seed), i)
        kw = dict(layer=self.layer, ablation=self.ablation, key=key)
        return np.asarray(_layer_from_pool5_jit(self.params, x, **kw))[:n]
