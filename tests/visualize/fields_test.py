"""Receptive fields: hand-worked geometry, and no gradient ever leaves a field."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.model import alexnet
from jaxcnn.visualize import fields
from tests.visualize.conftest import tiny_config


def test_caffenet_fields_by_hand():
    cfg = alexnet.caffenet_config()
    # conv1 11/4 -> R 11, J 4; pool 3/2 -> R 11 + 2·4 = 19, J 8.
    assert fields.receptive_field(cfg, "conv1") == fields.Field(19, 8, 0)
    # conv2 5 pad 2 -> R 19 + 4·8 = 51, P 16; pool -> R 67, J 16; conv3-5 3 pad 1 -> R 67 + 3·32
    # = 163, P 16 + 3·16 = 64; pool5 -> R 163 + 2·16 = 195, J 32.
    assert fields.receptive_field(cfg, "conv2") == fields.Field(67, 16, 16)
    assert fields.receptive_field(cfg, "conv3") == fields.Field(99, 16, 32)
    assert fields.receptive_field(cfg, "conv5") == fields.Field(195, 32, 64)
    assert fields.receptive_field(cfg, "fc7") == fields.Field(227, 227, 0)
    with pytest.raises(ValueError, match="layer"):
        fields.receptive_field(cfg, "fc8")


@pytest.mark.parametrize("layer", ["conv1", "conv2", "conv5"])
def test_gradient_support_inside_field(layer):
    # Every input pixel that influences position (y, x) lies inside its field; the field's
    # corners are reached for the top-left position (the tiny net has no padding in conv1).
    module = alexnet.AlexNet(tiny_config())
    params = jax.eval_shape(lambda: alexnet.init_params(module, jax.random.key(0)))
    params = jax.tree_util.tree_map(lambda p: jnp.full(p.shape, 0.1), params)
    field = fields.receptive_field(module.config, layer)
    h = module.config.feature_shapes()[layer][0]

    @jax.jit
    def support(x):  # |∂ tap[0, y, x, 0] / ∂ input| for every position, one vmapped backward
        tap = lambda v: module.apply({"params": params}, v, train=False)[1][layer]  # noqa: E731
        acts, vjp = jax.vjp(tap, x)
        first = (jnp.arange(acts.shape[-1]) == 0).reshape(1, 1, 1, 1, -1)
        seeds = jnp.eye(h * h).reshape(h * h, 1, h, h, 1) * first
        return jax.vmap(lambda s: vjp(s)[0])(seeds)

    x = jnp.asarray(np.random.default_rng(0).uniform(0.5, 1.5, (1, 19, 19, 3)), jnp.float32)
    grads = np.abs(np.asarray(support(x)))[:, 0].sum(-1) > 0  # [positions, 19, 19]
    for k, g in enumerate(grads):
        top, left = field.box(*divmod(k, h))
        inside = np.zeros_like(g)
        inside[max(top, 0) : top + field.size, max(left, 0) : left + field.size] = True
        assert g.any() and not (g & ~inside).any()


def test_crop_fills_outside():
    img = np.arange(5 * 4 * 1).reshape(5, 4, 1).astype(float)
    out = fields.crop(img, -1, 2, 3, fill=-9)
    want = np.array([[-9, -9, -9], [2, 3, -9], [6, 7, -9]], float)
    np.testing.assert_array_equal(out[..., 0], want)
    both = fields.crop_fields(np.stack([img, img + 1]), fields.Field(3, 1, 1), [[0, 3], [4, 0]])
    np.testing.assert_array_equal(both[0, ..., 0], np.where(want == -9, 0, want))
    np.testing.assert_array_equal(both[1, :2, 1:, 0], img[3:5, 0:2, 0] + 1)
    assert (both[1, 2] == 0).all() and (both[1, :, 0] == 0).all()
