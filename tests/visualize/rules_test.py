"""Backward rules against numpy references worked independently of JAX's autodiff."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.model import alexnet
from jaxcnn.visualize import rules
from tests.visualize import numpy_deconvnet as ref


def _tied_maps():
    """[1, 7, 7, 2] with tied maxima inside windows (channel 0: a constant plateau; channel 1:
    zeros as after a ReLU, with a few positive ties) and ceil-mode partial last windows."""
    x = np.zeros((1, 7, 7, 2), np.float32)
    x[0, 1:5, 1:5, 0] = 2.0
    x[0, 6, :, 0] = 1.0
    x[0, 0, 0, 1] = x[0, 0, 2, 1] = x[0, 2, 0, 1] = 3.0
    return x


def test_network_pool_routes_to_the_deconvnet_switch():
    x = _tied_maps()
    g = np.random.default_rng(0).normal(size=(1, 3, 3, 2)).astype(np.float32)
    fwd = jax.jit(lambda v: alexnet.max_pool_ceil(v, 3, 2))
    out, vjp = jax.vjp(fwd, jnp.asarray(x))
    (got,) = jax.jit(vjp)(jnp.asarray(g))
    want_out, switch = ref.pool(x[0].astype(np.float64), 3, 2)
    np.testing.assert_array_equal(out[0], want_out)
    np.testing.assert_allclose(got[0], ref.unpool(g[0], switch, x.shape[1:]), rtol=1e-6)


def test_relu_rules_by_hand():
    x = jnp.array([-1.0, 0.0, 2.0, 3.0])
    g = jnp.array([5.0, 7.0, -2.0, 4.0])
    for fn, want in (
        (nn.relu, [0.0, 0.0, -2.0, 4.0]),  # the gradient: g · 1[x > 0]
        (rules.deconv_relu, [5.0, 7.0, 0.0, 4.0]),  # max(g, 0), the forward mask ignored
        (rules.guided_relu, [0.0, 0.0, 0.0, 4.0]),  # max(g, 0) · 1[x > 0]
    ):
        y, vjp = jax.vjp(jax.jit(fn), x)
        np.testing.assert_array_equal(y, [0.0, 0.0, 2.0, 3.0])
        np.testing.assert_array_equal(jax.jit(vjp)(g)[0], want)


def test_identity_lrn_same_forward_passes_signal_unchanged():
    x = jax.random.normal(jax.random.key(0), (2, 3, 3, 7))
    kw = dict(size=5, alpha=0.5, beta=0.75, k=1.0)
    y, vjp = jax.vjp(jax.jit(lambda v: rules.identity_lrn(v, **kw)), x)
    np.testing.assert_allclose(y, alexnet.local_response_norm(x, **kw), rtol=1e-6)
    g = jax.random.normal(jax.random.key(1), x.shape)
    np.testing.assert_array_equal(vjp(g)[0], g)


def test_numpy_lrn_backward_matches_autodiff():
    # Checks the hand-derived LRN derivative the deconvnet reference relies on.
    a = np.abs(np.random.default_rng(0).normal(size=(2, 2, 7)))
    g = np.random.default_rng(1).normal(size=a.shape)
    _, s = ref.lrn(a, 5, 0.5, 0.75, 1.0)
    _, vjp = jax.vjp(
        lambda v: alexnet.local_response_norm(v, size=5, alpha=0.5, beta=0.75, k=1.0),
        jnp.asarray(a[None], jnp.float32),
    )
    want = ref.lrn_backward(g, a, s, 5, 0.5, 0.75)
    np.testing.assert_allclose(vjp(jnp.asarray(g[None], jnp.float32))[0][0], want, rtol=1e-5,
                               atol=1e-6)  # fmt: skip


def test_grad_rule_is_the_training_path():
    assert rules.layer_ops("grad", "vjp") == alexnet.LayerOps()
    assert alexnet.AlexNet(alexnet.small_config(10)).ops == alexnet.LayerOps()
    ops = rules.layer_ops("deconv", "identity")
    assert (ops.relu, ops.max_pool, ops.lrn) == (
        rules.deconv_relu,
        alexnet.max_pool_ceil,
        rules.identity_lrn,
    )


@pytest.mark.parametrize("rule,lrn", [("saliency", "vjp"), ("deconv", "none")])
def test_unknown_rule_raises(rule, lrn):
    with pytest.raises(ValueError, match="must be one of"):
        rules.layer_ops(rule, lrn)
