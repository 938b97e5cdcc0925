"""window_features: stored float16 pool5 -> layers and ablations equal the model's taps and the
ablations of them (features of an ablation = ablation of the features)."""

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
    return module, params, pool5, boxes, taps


def test_pool5_is_stored_as_float16_in_window_order(setup):
    _, _, pool5, _, taps = setup
    assert pool5.dtype == np.float16 and pool5.shape[0] == 6
    np.testing.assert_allclose(pool5, np.asarray(taps["conv5"]), rtol=2**-10, atol=1e-6)


@pytest.mark.parametrize("layer", ["fc6", "fc7"])
def test_fc_layers_from_pool5_equal_the_model_taps(setup, layer):
    _, params, pool5, boxes, taps = setup
    view = window_features.LayerView(pool5, [len(b) for b in boxes], params, layer=layer)
    got = np.concatenate([view(i) for i in range(3)])
    want = np.asarray(taps[layer])
    np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-2 * np.abs(want).max())


@pytest.mark.parametrize("ablation", ["none", "binarize", "sp-max", "sp-max-bin"])
def test_features_of_an_ablation_equal_the_ablation_of_the_features(setup, ablation):
    _, params, pool5, boxes, taps = setup
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
    _, params, pool5, boxes, _ = setup
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
