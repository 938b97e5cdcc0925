"""window_features: stored float16 pool5 -> layers and ablations equal the model's taps and the
ablations of them (features of an ablation = ablation of the features); compact stores (bits,
sp-max) give exactly the ablation of the float16 store, resume, and refuse damage by name."""

import json
import os
import re
import shutil

import jax
import numpy as np
import pytest

from jaxcnn import model
from jaxcnn.detect import window_features, windows
from jaxcnn.features import ablations
from jaxcnn.model import alexnet

TINY = dict(width=0.125, fc_width=32, input_size=32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    module = alexnet.from_preset("small", 5, **TINY)
    params = model.init_params(module, jax.random.key(0))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 48, 3)).astype(np.uint8) for _ in range(3)]
    boxes = [
        np.array([[1, 1, 20, 30], [10, 5, 48, 40]]),
        np.array([[3, 3, 9, 9]]),
        np.array([[1, 1, 48, 40], [20, 20, 30, 30], [5, 8, 25, 12]]),
    ]
    spec = windows.WarpSpec(32, 32 * 16 / 227, np.zeros((32, 32, 3), np.float32))
    out = tmp_path_factory.mktemp("pool5")
    pool5 = window_features.extract_pool5(
        module, params, images.__getitem__, boxes, spec, str(out), batch_size=4
    )
    crops = np.concatenate(
        [
            next(window_features.window_batches(images.__getitem__, boxes, spec, batch_size=6))[
                "image"
            ]
        ]
    )
    _, taps = module.apply({"params": params}, crops, train=False)
    return module, params, pool5, boxes, taps, images, spec


COMPACT = tuple(window_features.COMPACT_FORMS)


@pytest.fixture(scope="module")
def stores(setup, tmp_path_factory):
    """One finished compact store per form; batch 4 over 6 windows: a partial last batch."""
    module, params, _, boxes, _, images, spec = setup
    out = {}
    for form in COMPACT:
        path = str(tmp_path_factory.mktemp(form))
        out[form] = (
            path,
            window_features.extract_compact(
                module, params, images.__getitem__, boxes, spec, path, form=form, batch_size=4
            ),
        )
    return out


def test_pool5_is_stored_as_float16_in_window_order(setup):
    _, _, pool5, _, taps, *_ = setup
    assert pool5.dtype == np.float16 and pool5.shape[0] == 6
    np.testing.assert_allclose(pool5, np.asarray(taps["conv5"]), rtol=2**-10, atol=1e-6)


@pytest.mark.parametrize("layer", ["fc6", "fc7"])
def test_fc_layers_from_pool5_equal_the_model_taps(setup, layer):
    _, params, pool5, boxes, taps, *_ = setup
    view = window_features.LayerView(pool5, [len(b) for b in boxes], params, layer=layer)
    got = np.concatenate([view(i) for i in range(3)])
    want = np.asarray(taps[layer])
    np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-2 * np.abs(want).max())


@pytest.mark.parametrize("ablation", ["none", "binarize", "sp-max", "sp-max-bin"])
def test_features_of_an_ablation_equal_the_ablation_of_the_features(setup, ablation):
    _, params, pool5, boxes, taps, *_ = setup
    view = window_features.LayerView(
        pool5, [len(b) for b in boxes], params, layer="conv5", ablation=ablation
    )
    got = np.concatenate([view(i) for i in range(3)])
    want = np.asarray(ablations.apply_ablation(ablation, np.asarray(taps["conv5"])))
    want = want.reshape(len(want), -1)
    if ablation in ("binarize", "sp-max-bin"):
        np.testing.assert_array_equal(got, want)  # float16 keeps the sign of every value
    else:
        np.testing.assert_allclose(got, want, rtol=2**-10, atol=1e-6)


def test_sp_shuffle_permutes_positions_and_errors(setup):
    _, params, pool5, boxes, *_ = setup
    view = window_features.LayerView(
        pool5, [len(b) for b in boxes], params, layer="conv5", ablation="sp-shuffle"
    )
    got = view(0).reshape(2, -1, pool5.shape[-1])
    want = np.asarray(pool5[:2], np.float32).reshape(2, -1, pool5.shape[-1])
    for n in range(2):
        np.testing.assert_array_equal(np.sort(got[n], axis=0), np.sort(want[n], axis=0))
    with pytest.raises(ValueError, match="accepts only"):
        window_features.layer_from_pool5(params, pool5[:1], layer="fc7", ablation="sp-max")
    with pytest.raises(ValueError, match="windows listed"):
        window_features.LayerView(pool5, [1, 1], params, layer="fc7")


def test_bytes_per_window_of_each_form():
    # CaffeNet pool5 6x6x256 = 9,216 values; small preset 3x3x64 = 576; 3x3x5 = 45 (not / 8).
    want = {
        (6, 6, 256): {"none": 18432, "binarize": 1152, "sp-max": 512, "sp-max-bin": 32},
        (3, 3, 64): {"none": 1152, "binarize": 72, "sp-max": 128, "sp-max-bin": 8},
        (3, 3, 5): {"none": 90, "binarize": 6, "sp-max": 10, "sp-max-bin": 1},
    }
    for shape, by_form in want.items():
        for form, nbytes in by_form.items():
            assert window_features.bytes_per_window(form, shape) == nbytes, (shape, form)
    with pytest.raises(ValueError, match="compact form"):
        window_features.bytes_per_window("sp-shuffle", (6, 6, 256))


def _edge_pool5():
    """float32 [6, 3, 3, 5] (45 values, 5 channels: neither divisible by 8): all zeros; all
    negative; ties (every position equal, two maxima); -0.0 and values that float16 rounds to
    zero (1e-9, 2^-25) or keeps as subnormals (1e-7); a random row."""
    x = np.zeros((6, 3, 3, 5), np.float32)
    x[1] = -1.5
    x[2] = 0.75
    x[2, 0, 0, 1] = x[2, 2, 2, 1] = 2.0
    x[3, :, :, 0] = -0.0
    x[3, 0, :, 1:4] = [1e-9, 2.0**-25, 1e-7]
    x[4] = np.random.default_rng(1).normal(size=(3, 3, 5))
    x[5, 1, 2, 4] = 65504.0
    return x


@pytest.mark.parametrize("form", COMPACT)
def test_decoded_compact_rows_are_the_ablation_of_the_float16_pool5(form):
    x = _edge_pool5()
    stored = x.astype(np.float16)  # what extract_pool5 keeps
    rows = jax.jit(lambda v: window_features.encode(v, form=form))(x)
    got = window_features.decode(np.asarray(rows), form=form, pool5_shape=x.shape[1:])
    ablate = jax.jit(lambda v: ablations.apply_ablation(form, v))
    want = np.asarray(ablate(stored.astype(np.float32))).reshape(len(x), -1)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # exact: bits and float16 maxima are lossless
    assert np.asarray(rows).nbytes == len(x) * window_features.bytes_per_window(form, x.shape[1:])
    if form != "sp-max":
        # of 1e-9, 2^-25, 1e-7 at the 3 positions h = 0 only the subnormal 1e-7 stays positive
        assert got[0].sum() == got[1].sum() == 0 and got[3].sum() == (form == "binarize") * 2 + 1


@pytest.mark.parametrize("form", COMPACT)
def test_compact_store_reads_as_the_ablation_of_the_float16_store(setup, stores, form):
    _, params, pool5, boxes, *_ = setup
    _, store = stores[form]
    counts = [len(b) for b in boxes]
    assert len(store) == 6 and store.rows.dtype == window_features.COMPACT_FORMS[form]
    want_bytes = 6 * window_features.bytes_per_window(form, pool5.shape[1:])
    assert store.rows.nbytes == want_bytes
    compact = window_features.LayerView(store, counts, params, layer="conv5", ablation=form)
    full = window_features.LayerView(pool5, counts, params, layer="conv5", ablation=form)
    for i in range(3):
        np.testing.assert_array_equal(compact(i), full(i))
    with pytest.raises(ValueError, match="gives only conv5"):
        window_features.LayerView(store, counts, params, layer="fc6", ablation=form)
    other = "binarize" if form != "binarize" else "sp-max"
    with pytest.raises(ValueError, match="gives only conv5"):
        window_features.LayerView(store, counts, params, layer="conv5", ablation=other)


class _Stop(Exception):
    """Raised by the progress callback to interrupt an extraction."""


def test_interrupted_compact_extraction_resumes(setup, stores, tmp_path):
    module, params, _, boxes, _, images, spec = setup
    out = str(tmp_path / "bits")

    def stop_at_4(done, total):
        if done >= 4:
            raise _Stop

    with pytest.raises(_Stop):
        window_features.extract_compact(
            module, params, images.__getitem__, boxes, spec, out, form="binarize",
            batch_size=2, progress=stop_at_4,
        )  # fmt: skip
    with open(os.path.join(out, "manifest.json")) as f:
        stored = json.load(f)["rows_done"]
    assert 0 < stored < 6
    with pytest.raises(ValueError, match=re.escape(os.path.join(out, "pool5-binarize.npy"))):
        window_features.load_compact(out)
    ends = []
    resumed = window_features.extract_compact(
        module, params, images.__getitem__, boxes, spec, out, form="binarize",
        batch_size=2, progress=lambda done, total: ends.append(done),
    )  # fmt: skip
    assert ends[0] == stored + 2  # the stored rows were not extracted again
    np.testing.assert_array_equal(resumed.rows, stores["binarize"][1].rows)


def test_damaged_compact_stores_are_refused_by_name(setup, stores, tmp_path):
    module, params, _, boxes, _, images, spec = setup
    meta_of = lambda d: os.path.join(d, window_features.COMPACT_META)  # noqa: E731
    damaged = {}
    for what in ("no_meta", "bad_meta", "other_shape", "truncated"):
        damaged[what] = str(tmp_path / what)
        shutil.copytree(stores["sp-max"][0], damaged[what])
    os.remove(meta_of(damaged["no_meta"]))
    with open(meta_of(damaged["bad_meta"]), "w") as f:
        f.write("{not json")
    with open(meta_of(damaged["other_shape"]), "w") as f:
        json.dump({"form": "sp-max", "pool5_shape": [1, 1, 7]}, f)
    npy = os.path.join(damaged["truncated"], "pool5-sp-max.npy")
    with open(npy, "r+b") as f:
        f.truncate(100)
    names = {
        "no_meta": "compact.json is missing",
        "bad_meta": re.escape(meta_of(damaged["bad_meta"])),
        "other_shape": re.escape(os.path.join(damaged["other_shape"], "pool5-sp-max.npy")),
        "truncated": re.escape(npy),
    }
    for what, pattern in names.items():
        with pytest.raises(ValueError, match=pattern):
            window_features.load_compact(damaged[what])
    with pytest.raises(ValueError, match="describes another store"):
        window_features.extract_compact(
            module, params, images.__getitem__, boxes, spec, stores["sp-max"][0], form="binarize"
        )
