"""Tests for jaxcnn.train.regimes: the starting parameters and trainable layers of each regime."""

import jax
import numpy as np
import pytest

from jaxcnn.model import alexnet
from jaxcnn.train import regimes

# Caffe's fillers and biases, which the assertions below check.
TINY = dict(width=0.125, fc_width=32, input_size=32, init="caffe", bias_one=1.0)
ALL = (*alexnet.CONV_NAMES, *alexnet.FC_NAMES)


@pytest.fixture(scope="module")
def source():
    """A 'pre-trained' 10-class network and a 4-class target module of the same geometry."""
    src_module = alexnet.from_preset("small", 10, **TINY)
    return alexnet.init_params(src_module, jax.random.key(1)), alexnet.from_preset(
        "small", 4, **TINY
    )


@pytest.mark.parametrize("regime,trainable", [("ft", ALL), ("fc-ft", alexnet.FC_NAMES)])
def test_fine_tuning_keeps_conv1_to_fc7_and_replaces_fc8(source, regime, trainable):
    src, target = source
    params, got_trainable = regimes.start_params(regime, target, jax.random.key(2), src)
    assert got_trainable == trainable
    for name in ALL[:-1]:
        for leaf in ("kernel", "bias"):
            np.testing.assert_array_equal(params[name][leaf], src[name][leaf])
    assert params["fc8"]["kernel"].shape == (32, 4)
    np.testing.assert_array_equal(params["fc8"]["bias"], np.zeros(4))  # Caffe: fc8 bias 0
    assert 0.005 < float(np.std(params["fc8"]["kernel"])) < 0.02  # Caffe: Gaussian std 0.01


def test_scratch_and_pretrain_are_fresh_and_seeded(source):
    _, target = source
    a, trainable = regimes.start_params("scratch", target, jax.random.key(3))
    b, _ = regimes.start_params("pretrain", target, jax.random.key(3))
    c, _ = regimes.start_params("scratch", target, jax.random.key(4))
    assert trainable == ALL
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a["conv1"]["kernel"], c["conv1"]["kernel"])
    np.testing.assert_array_equal(a["conv2"]["bias"], np.ones_like(a["conv2"]["bias"]))


def test_transplant_first_layers(source):
    src, target = source
    params = regimes.transplant(src, target, jax.random.key(5), copy=("conv1", "conv2"))
    np.testing.assert_array_equal(params["conv2"]["kernel"], src["conv2"]["kernel"])
    assert not np.array_equal(params["conv3"]["kernel"], src["conv3"]["kernel"])


def test_errors(source):
    src, target = source
    with pytest.raises(ValueError, match="needs source parameters"):
        regimes.start_params("ft", target, jax.random.key(0))
    with pytest.raises(ValueError, match="starts from random weights"):
        regimes.start_params("scratch", target, jax.random.key(0), src)
    with pytest.raises(ValueError, match="unknown regime"):
        regimes.start_params("linear", target, jax.random.key(0), src)
    with pytest.raises(ValueError, match="unknown layers"):
        regimes.transplant(src, target, jax.random.key(0), copy=("conv9",))
    wide = alexnet.from_preset("small", 4, width=0.25, fc_width=32, input_size=32)
    with pytest.raises(ValueError, match=r"conv1/(kernel|bias): source shape .* does not fit"):
        regimes.start_params("ft", wide, jax.random.key(0), src)
    with pytest.raises(ValueError, match="lack layer 'conv3'"):
        regimes.transplant(
            {k: v for k, v in src.items() if k != "conv3"},
            target,
            jax.random.key(0),
            copy=("conv3",),
        )
