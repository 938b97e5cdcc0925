"""Projections: `grad` against jax.grad, `deconv`/`guided` against a numpy deconvnet."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.model import alexnet, pool_norm
from jaxcnn.visualize import projection, rules
from tests.visualize import numpy_deconvnet as ref
from tests.visualize.conftest import blocky_images, forward, random_params, tiny_config


def _active_channel(module, params, x, layer):
    """A channel whose maximum is positive in every image (so the projections are not zero)."""
    _, taps = forward(module, params, jnp.asarray(x))
    acts = np.asarray(taps[layer]).reshape(x.shape[0], -1, taps[layer].shape[-1])
    return int(np.argmax(acts.max(axis=1).min(axis=0)))


def _grad_reference(module, params, x, layer, channel_N, yx_Nx2):
    """a · ∂a/∂x of each image's activation a at (yx_Nx2[n], channel_N[n]), by jax.grad of the
    sum of the selected activations (the images do not interact in eval mode)."""
    n = np.arange(x.shape[0])

    def selected(v):
        acts = module.apply({"params": params}, v, train=False)[1][layer]
        if acts.ndim == 2:
            return acts[n, channel_N]
        return acts[n, yx_Nx2[:, 0], yx_Nx2[:, 1], channel_N]

    @jax.jit
    def value_and_grads(v):
        value, vjp = jax.vjp(selected, v)
        return value, vjp(jnp.ones_like(value))[0]

    value, grads = value_and_grads(jnp.asarray(x))
    return np.asarray(value)[:, None, None, None] * np.asarray(grads)


@pytest.mark.parametrize("layer", ["conv5", "fc6"])
def test_grad_rule_is_value_times_jax_grad(tiny, layer):
    module, params, x = tiny
    c = _active_channel(module, params, x, layer)
    got = projection.project(module, params, x, layer=layer, channel=c, rule="grad")
    _, taps = forward(module, params, jnp.asarray(x))
    acts = np.asarray(taps[layer])
    yx = np.zeros((x.shape[0], 2), int)
    if acts.ndim == 4:  # np.argmax: the first maximum in row-major order
        flat = acts[..., c].reshape(x.shape[0], -1).argmax(axis=1)
        yx = np.stack(np.unravel_index(flat, acts.shape[1:3]), axis=1)
    want = _grad_reference(module, params, x, layer, np.full(x.shape[0], c), yx)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize(
    "layer,rule,lrn",
    [
        ("conv1", "deconv", "vjp"),
        ("conv2", "deconv", "identity"),
        ("conv5", "guided", "identity"),
        ("fc6", "deconv", "vjp"),
    ],
)
def test_rules_equal_numpy_deconvnet(tiny, layer, rule, lrn):
    module, params, x = tiny
    c = _active_channel(module, params, x, layer)
    got = projection.project(module, params, x, layer=layer, channel=c, rule=rule, lrn=lrn)
    want = np.stack(
        [ref.deconvnet(module.config, params, xi, layer=layer, channel=c, rule=rule,
                       lrn_rule=lrn) for xi in x]
    )  # fmt: skip
    assert np.abs(want).max() > 0.1
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_deconv_conv5_equals_numpy_and_depends_on_switches_of_tied_windows(tiny):
    # The inputs hold tied maxima that receive signal: routing them by the split gradient of a
    # jnp.maximum chain instead of the switch gives a different projection.
    module, params, x = tiny
    c = _active_channel(module, params, x, "conv5")
    want = np.stack([ref.deconvnet(module.config, params, xi, layer="conv5", channel=c)
                     for xi in x])  # fmt: skip
    got = projection.project(module, params, x, layer="conv5", channel=c)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())

    def split_pool(v, window, stride):
        return functools.reduce(jnp.maximum, pool_norm._window_slices(v, window, stride))

    split = module.clone(ops=alexnet.LayerOps(relu=rules.deconv_relu, max_pool=split_pool))
    got_split = projection._project_channels(split, params, jnp.asarray(x), jnp.array([c]),
                                             layer="conv5")[0]  # fmt: skip
    assert np.abs(got_split - want).max() > 1e-3 * np.abs(want).max()


def test_input_scale_is_part_of_the_projection():
    module = alexnet.AlexNet(tiny_config(input_scale=0.25))
    params, x = random_params(module, 3), blocky_images(2, 19, 4) * 4
    c = _active_channel(module, params, x, "conv5")
    got = projection.project(module, params, x, layer="conv5", channel=c)
    want = np.stack([ref.deconvnet(module.config, params, xi, layer="conv5", channel=c)
                     for xi in x])  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_several_channels_in_one_call_and_positions(tiny):
    module, params, x = tiny
    channels = [0, 3, 1]
    many = projection.project(module, params, x, layer="conv2", channel=channels)
    assert many.shape == (3, *x.shape)
    for k, c in enumerate(channels):
        one = projection.project(module, params, x, layer="conv2", channel=c)
        np.testing.assert_allclose(many[k], one, rtol=1e-6, atol=1e-6 * np.abs(one).max())
    # project_positions at each image's own arg-max equals project.
    _, taps = forward(module, params, jnp.asarray(x))
    yx = projection.strongest_position(taps["conv2"], 3)
    got = projection.project_positions(
        module, params, x, layer="conv2", channel_N=np.full(3, 3), yx_Nx2=np.asarray(yx)
    )
    np.testing.assert_allclose(got, many[1], rtol=1e-6, atol=1e-6 * np.abs(many[1]).max())


def test_positions_grad_rule_at_other_positions(tiny):
    module, params, x = tiny
    yx, ch = np.array([[0, 1], [3, 2], [1, 0]]), np.array([2, 0, 1])
    got = projection.project_positions(
        module, params, x, layer="conv2", channel_N=ch, yx_Nx2=yx, rule="grad"
    )
    want = _grad_reference(module, params, x, "conv2", ch, yx)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_bad_arguments_raise(tiny):
    module, params, x = tiny
    with pytest.raises(ValueError, match="layer"):
        projection.project(module, params, x, layer="fc8", channel=0)
    with pytest.raises(ValueError, match="channels must lie"):
        projection.project(module, params, x, layer="conv5", channel=4)
    with pytest.raises(ValueError, match="NHWC"):
        projection.project(module, params, x[0], layer="conv5", channel=0)
    with pytest.raises(ValueError, match="positions must lie"):
        projection.project_positions(module, params, x, layer="conv5", channel_N=np.zeros(3, int),
                                  yx_Nx2=np.full((3, 2), 2))  # fmt: skip
    with pytest.raises(ValueError, match="rule"):
        projection.project(module, params, x, layer="conv5", channel=0, rule="lrp")
