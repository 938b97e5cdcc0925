"""Tests for jaxcnn.transfer.treatments: the transplant of the first n layers, the layers above
at a fresh initialisation, frozen layers unchanged by training (no weight decay either), and
"+" layers trained."""

import functools

import jax
import numpy as np
import pytest

from jaxcnn import model
from jaxcnn.train import step as step_lib
from jaxcnn.train.config import TrainConfig
from jaxcnn.transfer import treatments

TINY = {"width": 0.125, "fc_width": 32, "input_size": 32}
LAYERS = treatments.LAYERS


def _config(**kw):
    args = {"num_classes": 5, "num_steps": 3, "batch_size": 8, "model_overrides": TINY, "seed": 7}
    return TrainConfig(**{**args, **kw})


@pytest.fixture(scope="module")
def source():
    """A 'base network' of another half (different classifier width: fc8 is never copied)."""
    return jax.device_get(model.init_params(_config(num_classes=9).module(), jax.random.key(1)))


def _leaves_equal(x, y):
    return all(np.array_equal(a, b) for a, b in zip(x.values(), y.values(), strict=True))


@pytest.mark.parametrize("name,n", [("BnB", 3), ("AnB+", 5), ("BnB", 7)])
def test_copied_layers_equal_source_and_the_rest_a_fresh_init(source, name, n):
    cfg = _config()
    init_rng, _ = jax.random.split(jax.random.PRNGKey(cfg.seed))
    fresh = jax.device_get(model.init_params(cfg.module(), init_rng))
    state = treatments.initial_state(cfg, name, n, source)
    for layer in (*LAYERS, "fc8"):
        want = source[layer] if layer in LAYERS[:n] else fresh[layer]
        assert _leaves_equal(jax.device_get(state.params[layer]), want), layer
    frozen = set(LAYERS[:n]) if not name.endswith("+") else set()
    assert set(state.trainable) == set(treatments.ALL_LAYERS) - frozen
    # the optimizer (momentum buffers, hence weight decay) covers the trainable layers only
    assert set(state.opt_state.momentum) == set(state.trainable)


def _steps(state, count=3):
    step = jax.jit(functools.partial(step_lib.train_step))
    rng = np.random.default_rng(0)
    for _ in range(count):
        batch = {
            "image": rng.normal(size=(8, 32, 32, 3)).astype(np.float32) * 50,
            "label": rng.integers(0, 5, 8).astype(np.int32),
        }
        state, _ = step(state, batch)
    return state


@pytest.mark.parametrize("plus", [False, True])
def test_frozen_layers_stay_put_and_plus_layers_train(source, plus):
    # A large weight decay: a frozen layer that were decayed would move even without gradients.
    cfg = _config(base_lr=0.01, weight_decay=0.5)
    name = "AnB+" if plus else "AnB"
    before = treatments.initial_state(cfg, name, 4, source)
    after = _steps(before)
    for layer in treatments.ALL_LAYERS:
        same = _leaves_equal(
            jax.device_get(after.params[layer]), jax.device_get(before.params[layer])
        )
        copied = layer in LAYERS[:4]
        assert same == (copied and not plus), layer


def test_random_control_and_base(source):
    cfg = _config()
    init_rng, _ = jax.random.split(jax.random.PRNGKey(cfg.seed))
    fresh = jax.device_get(model.init_params(cfg.module(), init_rng))
    state = treatments.initial_state(cfg, "random", 2, None)
    assert all(_leaves_equal(jax.device_get(state.params[k]), fresh[k]) for k in fresh)
    assert state.trainable == ("conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
    base = treatments.initial_state(cfg, "base", 0, None)
    assert base.trainable == treatments.ALL_LAYERS


def test_errors(source):
    module = _config().module()
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="n must be in 1..7"):
        treatments.start_params("BnB", 8, module, key, source)
    with pytest.raises(ValueError, match="needs source"):
        treatments.start_params("AnB", 2, module, key)
    with pytest.raises(ValueError, match="takes no source"):
        treatments.start_params("random", 2, module, key, source)
    with pytest.raises(ValueError, match="unknown treatment"):
        treatments.treatment("CnB")
    with pytest.raises(ValueError, match="base networks"):
        treatments.start_params("base", 1, module, key)
