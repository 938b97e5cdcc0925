"""CaffeNet geometry, layers and initialisation against Caffe's formulas and plain numpy."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.model import alexnet


def _abstract_params(module):
    return jax.eval_shape(functools.partial(alexnet.init_params, module), jax.random.key(0))


def test_caffenet_parameter_count():
    # conv1 34,944 + conv2 307,456 + conv3 885,120 + conv4 663,936 + conv5 442,624
    # + fc6 37,752,832 + fc7 16,781,312 + fc8 4,097,000 (Caffe's blob sizes).
    params = _abstract_params(alexnet.caffenet(1000))
    assert alexnet.count_params(params) == 60_965_224
    assert params["conv2"]["kernel"].shape == (5, 5, 48, 256)  # groups 2: 48 inputs per group
    assert params["fc6"]["kernel"].shape == (9216, 4096)


def test_caffenet_tap_shapes_227():
    module = alexnet.caffenet(1000)
    params = alexnet.init_params(module, jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (1, 227, 227, 3))
    logits, taps = jax.jit(functools.partial(module.apply, train=False))({"params": params}, x)
    expected = {
        "conv1": (27, 27, 96),
        "conv2": (13, 13, 256),
        "conv3": (13, 13, 384),
        "conv4": (13, 13, 384),
        "conv5": (6, 6, 256),
        "fc6": (4096,),
        "fc7": (4096,),
    }
    assert {k: v.shape[1:] for k, v in taps.items()} == expected
    assert module.config.feature_shapes() == expected
    assert logits.shape == (1, 1000)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in taps.values())
    # conv3/conv4/fc taps are ReLU outputs; pooled taps of ReLU outputs too.
    assert all(float(v.min()) >= 0 for v in taps.values())


def test_small_preset_shapes_and_count():
    module = alexnet.from_preset("small", 100)
    # conv1 5*5*3*24+24 = 1,824; conv2 5*5*12*64+64 = 19,264; conv3 3*3*64*96+96 = 55,392;
    # conv4 3*3*48*96+96 = 41,568; conv5 3*3*48*64+64 = 27,712; fc6 576*512+512 = 295,424;
    # fc7 512*512+512 = 262,656; fc8 512*100+100 = 51,300.
    assert alexnet.count_params(_abstract_params(module)) == 755_140
    params = alexnet.init_params(module, jax.random.key(0))
    x = jnp.zeros((2, 64, 64, 3))
    _, taps = jax.jit(functools.partial(module.apply, train=False))({"params": params}, x)
    expected = {
        "conv1": (15, 15, 24),
        "conv2": (7, 7, 64),
        "conv3": (7, 7, 96),
        "conv4": (7, 7, 96),
        "conv5": (3, 3, 64),
        "fc6": (512,),
        "fc7": (512,),
    }
    assert {k: v.shape[1:] for k, v in taps.items()} == expected
    assert taps["conv5"].shape[1] >= 3  # spatial ablations need a map, not a vector


def _caffe_lrn_numpy(a, size, alpha, beta, k):
    """Literal Caffe LRN across channels: loop over channels, window clipped at the ends."""
    out = np.empty_like(a)
    c = a.shape[-1]
    for ch in range(c):
        lo, hi = max(0, ch - size // 2), min(c, ch + size // 2 + 1)
        scale = k + alpha / size * np.sum(a[..., lo:hi] ** 2, axis=-1)
        out[..., ch] = a[..., ch] / scale**beta
    return out


@pytest.mark.parametrize("channels", [3, 7, 16])
def test_lrn_matches_caffe_formula(channels):
    rng = np.random.default_rng(channels)
    a = rng.normal(scale=30.0, size=(2, 4, 5, channels)).astype(np.float32)
    got = jax.jit(
        functools.partial(alexnet.local_response_norm, size=5, alpha=1e-4, beta=0.75, k=1.0)
    )(a)
    want = _caffe_lrn_numpy(a.astype(np.float64), 5, 1e-4, 0.75, 1.0)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    # The large scale makes the normalisation matter: output differs from input.
    assert np.max(np.abs(want - a)) > 1e-2


@pytest.mark.parametrize("size", [5, 6, 13, 27, 30, 55, 56])
def test_ceil_mode_pooling_matches_caffe(size):
    window, stride = 3, 2
    caffe_out = int(math.ceil((size - window) / stride)) + 1  # pooling_layer.cpp, pad 0
    x = np.random.default_rng(size).normal(size=(1, size, size, 2)).astype(np.float32)
    got = np.asarray(
        jax.jit(functools.partial(alexnet.max_pool_ceil, window=window, stride=stride))(x)
    )
    assert got.shape == (1, caffe_out, caffe_out, 2)
    want = np.empty_like(got)
    for i in range(caffe_out):
        for j in range(caffe_out):  # Caffe clips the last window at the image edge
            win = x[
                :,
                i * stride : min(i * stride + window, size),
                j * stride : min(j * stride + window, size),
            ]
            want[:, i, j] = win.max(axis=(1, 2))
    np.testing.assert_array_equal(got, want)


def test_grouped_conv_forms_agree_in_outputs_and_gradients():
    x = jax.random.normal(jax.random.key(0), (2, 9, 9, 8))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 4, 6))

    def loss(impl, x, k):
        y = alexnet.grouped_conv(x, k, stride=1, padding=1, groups=2, impl=impl)
        return jnp.sum(jnp.sin(y)), y

    results = {
        impl: jax.jit(
            jax.value_and_grad(functools.partial(loss, impl), argnums=(0, 1), has_aux=True)
        )(x, kernel)
        for impl in ("split", "feature_group_count")
    }
    (_, y_a), g_a = results["split"]
    (_, y_b), g_b = results["feature_group_count"]
    np.testing.assert_allclose(y_a, y_b, rtol=1e-5, atol=1e-5)
    for a, b in zip(g_a, g_b, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    # Independent check of the group semantics: group 0 outputs only see input channels 0..3.
    y0 = alexnet.grouped_conv(x[..., :4], kernel[..., :3], stride=1, padding=1, groups=1)
    np.testing.assert_allclose(y_a[..., :3], y0, rtol=1e-5, atol=1e-5)


def test_model_grouped_impls_agree():
    outs = []
    for impl in ("split", "feature_group_count"):
        module = alexnet.from_preset("small", 10, grouped_impl=impl)
        params = alexnet.init_params(module, jax.random.key(0))
        x = jax.random.normal(jax.random.key(2), (2, 64, 64, 3))
        outs.append(jax.jit(functools.partial(module.apply, train=False))({"params": params}, x))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-6)


def test_dropout_only_in_training():
    module = alexnet.from_preset("small", 10)
    params = alexnet.init_params(module, jax.random.key(0))
    x = jax.random.normal(jax.random.key(3), (4, 64, 64, 3)) * 50
    apply = jax.jit(module.apply, static_argnames="train")
    eval_a, _ = apply({"params": params}, x, train=False)
    eval_b, _ = apply({"params": params}, x, train=False)
    np.testing.assert_array_equal(eval_a, eval_b)
    train_a, _ = apply({"params": params}, x, train=True, rngs={"dropout": jax.random.key(1)})
    train_b, _ = apply({"params": params}, x, train=True, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(train_a, train_b)
    assert not np.allclose(train_a, eval_a)
    with pytest.raises(Exception, match="dropout"):
        apply({"params": params}, x, train=True)


def test_caffe_initialisation():
    params = alexnet.init_params(alexnet.caffenet(1000), jax.random.key(0))
    biases = {k: float(v["bias"].mean()) for k, v in params.items()}
    assert biases == {
        "conv1": 0.0,
        "conv2": 1.0,
        "conv3": 0.0,
        "conv4": 1.0,
        "conv5": 1.0,
        "fc6": 1.0,
        "fc7": 1.0,
        "fc8": 0.0,
    }
    np.testing.assert_allclose(np.std(params["conv3"]["kernel"]), 0.01, rtol=0.01)
    np.testing.assert_allclose(np.std(params["fc6"]["kernel"]), 0.005, rtol=0.01)
    bvlc = alexnet.init_params(alexnet.caffenet(10, bias_one=0.1), jax.random.key(0))
    assert float(bvlc["conv2"]["bias"][0]) == pytest.approx(0.1)


def test_bad_input_and_config_errors():
    module = alexnet.from_preset("small", 10)
    params = alexnet.init_params(module, jax.random.key(0))
    with pytest.raises(ValueError, match="NHWC"):
        module.apply({"params": params}, jnp.zeros((1, 3, 64, 64)), train=False)
    with pytest.raises(ValueError, match="unknown preset"):
        alexnet.from_preset("vgg", 10)
    with pytest.raises(ValueError, match="grouped_impl"):
        alexnet.from_preset("small", 10, grouped_impl="magic")
    # geometry that cannot work is an error naming the flag, never clamped or left to XLA
    with pytest.raises(
        ValueError, match=r"too small \(conv maps \[3, 1, 1, 1, 0\]\): use --crop >= 19"
    ):
        alexnet.small_config(10, input_size=18)
    assert alexnet.small_config(10, input_size=19).feature_shapes()["conv5"][0] == 1
    with pytest.raises(ValueError, match=r"leaves 96 channels < 2: use --width > 0.0104"):
        alexnet.small_config(10, width=0.01)
    assert alexnet.small_config(10, width=0.011).convs[0].features == 2


def test_forward_flops_matches_hand_count():
    # CaffeNet forward: conv1 2*55*55*96*363 = 210.8M, conv2 2*27*27*256*1200 = 447.9M,
    # conv3 2*13*13*384*2304 = 299.0M, conv4 2*169*384*1728 = 224.3M, conv5 2*169*256*1728 =
    # 149.5M, fc 2*(9216*4096 + 4096*4096 + 4096*1000) = 117.2M.
    assert alexnet.forward_flops(alexnet.caffenet_config(1000)) == 1_448_813_632


def test_msra_init_for_the_small_preset():
    module = alexnet.from_preset("small", 100, init="msra", bias_one=0.1)
    cfg = module.config
    assert cfg.input_scale == pytest.approx(1 / 64)
    # conv2: fan-in 5*5*12 = 300 (12 = 24 inputs / 2 groups) -> std sqrt(2/300).
    assert cfg.convs[1].weight_std == pytest.approx(math.sqrt(2 / 300))
    assert cfg.fcs[0].weight_std == pytest.approx(math.sqrt(2 / 576))
    assert cfg.classifier_std == 0.01  # CaffeNet's fc8, not sqrt(1 / 512)
    params = alexnet.init_params(module, jax.random.key(0))
    np.testing.assert_allclose(np.std(params["conv3"]["kernel"]), math.sqrt(2 / 576), rtol=0.02)
    np.testing.assert_allclose(np.std(params["fc8"]["kernel"]), 0.01, rtol=0.02)
    # Unit-scale activations through the stack on pixel-scale inputs (std 64), and initial
    # logits of modest size (here 1.2; fc8 std sqrt(1 / 512) gave 5.4 on this noise).
    x = jax.random.normal(jax.random.key(1), (8, 64, 64, 3)) * 64
    logits, taps = jax.jit(functools.partial(module.apply, train=False))({"params": params}, x)
    for name in ("conv3", "conv5", "fc7"):
        assert 0.1 < float(jnp.std(taps[name])) < 10, name
    assert float(jnp.std(logits)) < 2
    with pytest.raises(ValueError, match="init"):
        alexnet.from_preset("small", 10, init="xavier")
