"""Tests for jaxcnn.features: streamed, resumable extraction of model taps to .npy memmaps.

Extraction on a CPU runs on one device (`jaxcnn.train.devices.data_parallel`); the sharded path
(batches padded to a multiple of the device count) is tested in tests/train/devices_test.py on
conftest's 8 fake CPU devices.
"""

import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.features import extraction

TAPS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")


class TinyNet(nn.Module):
    """Stand-in with the AlexNet contract: ``(logits, taps)``, conv taps NHWC, fc taps [N, D]."""

    @nn.compact
    def __call__(self, x, *, train):
        taps = {}
        for i in range(1, 6):
            x = nn.relu(nn.Conv(3 + i, (3, 3), padding="SAME")(x))
            if i in (1, 2, 5):
                x = nn.max_pool(x, (2, 2), (2, 2))
            taps[f"conv{i}"] = x
        x = x.reshape(len(x), -1)
        taps["fc6"] = x = nn.relu(nn.Dense(6)(x))
        taps["fc7"] = x = nn.relu(nn.Dense(5)(x))
        return nn.Dense(3)(x), taps


@pytest.fixture(scope="module")
def model():
    module = TinyNet()
    # Jitted: flax's eager init dispatches (and compiles) op by op, which is slow.
    init = jax.jit(lambda key, x: module.init(key, x, train=False)["params"])
    params = init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3)))
    images = np.random.default_rng(1).normal(size=(23, 8, 8, 3)).astype(np.float32)
    _, want = jax.jit(lambda p, x: module.apply({"params": p}, x, train=False))(params, images)
    return module, params, images, {k: np.asarray(v) for k, v in want.items()}


def _batches(images, size=5, use_mask=False, stop_after=None):
    """Batches of ``size`` with a zero-padded last batch, marked by 'size' or 'mask'."""
    for i, start in enumerate(range(0, len(images), size)):
        if stop_after is not None and i == stop_after:
            raise KeyboardInterrupt("simulated interruption")
        chunk = images[start : start + size]
        n = len(chunk)
        padded = np.concatenate([chunk, np.zeros((size - n, *chunk.shape[1:]), np.float32)])
        yield {
            "image": padded,
            ("mask" if use_mask else "size"): (np.arange(size) < n if use_mask else n),
        }


@pytest.mark.parametrize("use_mask", [False, True])
def test_extract_matches_direct_apply(model, tmp_path, use_mask):
    module, params, images, want = model
    calls = []
    manifest = extraction.extract_features(
        module,
        params,
        _batches(images, use_mask=use_mask),
        taps=TAPS,
        out_dir=str(tmp_path),
        num_examples=len(images),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert manifest["complete"] and manifest["rows_done"] == 23
    assert calls == [(5, 23), (10, 23), (15, 23), (20, 23), (23, 23)]
    for tap in TAPS:
        got = extraction.load_features(str(tmp_path), tap)
        assert isinstance(got, np.memmap) and got.shape == want[tap].shape
        np.testing.assert_allclose(got, want[tap], rtol=1e-5, atol=1e-6)
    on_disk = json.load(open(tmp_path / "manifest.json"))
    assert on_disk["taps"]["conv5"]["shape"] == list(want["conv5"].shape[1:])


def test_resume_after_interruption(model, tmp_path):
    module, params, images, want = model
    out = str(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        extraction.extract_features(
            module,
            params,
            _batches(images, stop_after=3),
            taps=("conv5", "fc7"),
            out_dir=out,
            num_examples=23,
        )
    manifest = extraction.read_manifest(out)
    # Batch 2 was dispatched but not yet written when batch 3 failed to arrive.
    assert manifest["rows_done"] == 10 and not manifest["complete"]
    with pytest.raises(ValueError, match="incomplete"):
        extraction.load_features(out, "fc7")
    calls = []
    extraction.extract_features(
        module,
        params,
        _batches(images),
        taps=("conv5", "fc7"),
        out_dir=out,
        num_examples=23,
        progress=lambda done, total: calls.append(done),
    )
    assert calls == [15, 20, 23]  # resumed after row 10: skipped batches were not recomputed
    for tap in ("conv5", "fc7"):
        np.testing.assert_allclose(
            extraction.load_features(out, tap), want[tap], rtol=1e-5, atol=1e-6
        )


def test_resume_with_different_batch_boundaries(model, tmp_path):
    module, params, images, want = model
    out = str(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        extraction.extract_features(
            module,
            params,
            _batches(images, size=4, stop_after=3),
            taps=("fc6",),
            out_dir=out,
            num_examples=23,
        )
    assert extraction.read_manifest(out)["rows_done"] == 8
    extraction.extract_features(
        module, params, _batches(images, size=6), taps=("fc6",), out_dir=out, num_examples=23
    )
    np.testing.assert_allclose(
        extraction.load_features(out, "fc6"), want["fc6"], rtol=1e-5, atol=1e-6
    )


def test_errors(model, tmp_path):
    module, params, images, _ = model
    out = str(tmp_path / "a")
    run = lambda batches, **kw: extraction.extract_features(
        module,
        params,
        batches,
        out_dir=kw.pop("out_dir", out),
        **{"taps": ("fc7",), "num_examples": 23, **kw},
    )
    with pytest.raises(ValueError, match="batch 0 has no 'image'"):
        run([{"pixels": images[:5]}])
    with pytest.raises(ValueError, match="batch 0: 'image' must be"):
        run([{"image": images[:5, :, :, 0]}])
    with pytest.raises(ValueError, match="batch 0: 'mask' must be"):
        run([{"image": images[:5], "mask": np.ones(4, bool)}])
    with pytest.raises(ValueError, match="> 4"):
        run(_batches(images), num_examples=4, out_dir=str(tmp_path / "b"))
    with pytest.raises(ValueError, match="batches ended after 23 real rows"):
        run(_batches(images), num_examples=30, out_dir=str(tmp_path / "c"))
    run(_batches(images), out_dir=str(tmp_path / "d"))
    with pytest.raises(ValueError, match="different extraction"):
        run(_batches(images), taps=("fc6",), out_dir=str(tmp_path / "d"))
    with pytest.raises(ValueError, match="no tap 'fc6'"):
        extraction.load_features(str(tmp_path / "d"), "fc6")
    with pytest.raises(ValueError, match="no feature extraction"):
        extraction.load_features(str(tmp_path / "nothing"), "fc7")
    with pytest.raises(ValueError, match="model has no taps"):
        run(_batches(images), taps=("conv9",), out_dir=str(tmp_path / "e"))
    assert not os.path.exists(tmp_path / "e" / "conv9.npy")


def test_single_device_forward_matches(model):
    module, params, images, want = model
    forward = jax.jit(extraction.make_forward(module, ("conv3", "fc6")))
    got = forward(params, images)
    assert set(got) == {"conv3", "fc6"}
    np.testing.assert_allclose(got["conv3"], want["conv3"], rtol=1e-5, atol=1e-6)
    # one function per (module config, taps): extractions from several networks of the same
    # geometry share one jit cache entry instead of compiling the forward each time
    same = module.clone()
    assert same is not module
    assert extraction.make_forward(same, ("conv3", "fc6")) is extraction.make_forward(
        module, ("conv3", "fc6")
    )
    assert extraction.make_forward(module, ("fc6",)) is not extraction.make_forward(
        module, ("conv3", "fc6")
    )


def test_full_disk_is_a_clear_error_and_a_rerun_completes(model, small_disk, fill_disk):
    """On a full (real, size-limited) filesystem the extraction stops before writing with ENOSPC
    naming the folder and the bytes needed, never a bus error; an earlier extraction stays
    intact, and after freeing space the rerun equals the direct computation."""
    module, params, images, want = model
    disk = small_disk("1m")
    first, second = os.path.join(disk, "first"), os.path.join(disk, "second")

    def run(out):
        return extraction.extract_features(
            module, params, _batches(images), taps=TAPS, out_dir=out, num_examples=len(images)
        )

    run(first)
    filler = fill_disk(disk, leave=4096)  # less than the ~8 KiB the taps take
    with pytest.raises(
        OSError, match=r"no space left on device for features in .*second: .* needs"
    ):
        run(second)
    assert not [n for n in os.listdir(second) if n.endswith(".npy")]  # no empty files left
    for tap in TAPS:  # the earlier extraction is untouched
        np.testing.assert_allclose(extraction.load_features(first, tap), want[tap], rtol=1e-5)
    os.remove(filler)
    assert run(second)["complete"]
    for tap in TAPS:
        np.testing.assert_allclose(extraction.load_features(second, tap), want[tap], rtol=1e-5)
