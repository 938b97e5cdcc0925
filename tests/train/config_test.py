"""Tests for jaxcnn.train.config: validation, serialisation, shared modules and optimizers, and
the starting state of each regime."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import model
from jaxcnn.model import alexnet
from jaxcnn.storage import checkpoints
from jaxcnn.train import config as train_config

TINY = {"width": 0.125, "fc_width": 32, "input_size": 32}


def _cfg(**kw):
    return train_config.TrainConfig(
        **{"num_classes": 10, "num_steps": 5, "batch_size": 4, "model_overrides": TINY, **kw}
    )


def test_validation_errors():
    with pytest.raises(ValueError, match="regime must be one of"):
        _cfg(regime="linear")
    with pytest.raises(ValueError, match="init_from is required"):
        _cfg(regime="ft")
    with pytest.raises(ValueError, match="init_from is required"):
        _cfg(regime="scratch", init_from="/some/run")
    with pytest.raises(ValueError, match="compute_dtype"):
        _cfg(compute_dtype="float16")
    with pytest.raises(ValueError, match="log_every >= 1"):
        _cfg(log_every=0)


def test_dict_round_trip_through_json():
    cfg = _cfg(snapshot_steps=[3, 1], regime="fc-ft", init_from="/r", init_step=7)
    again = train_config.TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.snapshot_steps == (3, 1)


def test_equal_configs_share_module_and_optimizer():
    a, b = _cfg(), _cfg(num_steps=99)
    assert a.module() is b.module()
    assert model.module_from_meta(train_config.model_meta(a)) is a.module()
    params = jax.eval_shape(lambda: alexnet.init_params(a.module(), jax.random.key(0)))
    assert a.optimizer(params, ("fc8",)) is b.optimizer(params, ("fc8",))
    assert a.optimizer(params, ("fc8",)) is not _cfg(base_lr=0.1).optimizer(params, ("fc8",))
    bf16 = _cfg(compute_dtype="bfloat16").module()
    assert bf16.config.dtype == jnp.bfloat16 and bf16 is not a.module()


def test_schedule_is_caffe_step():
    sched = _cfg(base_lr=0.1, lr_gamma=0.5, lr_step_size=2).learning_rate()
    np.testing.assert_allclose(
        [float(sched(i)) for i in range(5)], [0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-6
    )


def test_initial_states_per_regime(tmp_path):
    source_module = alexnet.from_preset("small", 7, **TINY)
    source = alexnet.init_params(source_module, jax.random.key(3))
    checkpoints.save_params(tmp_path, source, meta={}, step=40)
    fcft = train_config.initial_state(_cfg(regime="fc-ft", init_from=str(tmp_path), init_step=40))
    assert fcft.trainable == ("fc6", "fc7", "fc8") and int(fcft.step) == 0
    assert set(fcft.opt_state.momentum) == {"fc6", "fc7", "fc8"}  # optimizer: trainable only
    np.testing.assert_array_equal(fcft.params["conv3"]["kernel"], source["conv3"]["kernel"])
    assert fcft.params["fc8"]["kernel"].shape == (32, 10)
    scratch = train_config.initial_state(_cfg(regime="scratch", seed=1))
    again = train_config.initial_state(_cfg(regime="scratch", seed=1))
    assert len(scratch.trainable) == 8 and scratch.rng.dtype == jnp.uint32
    np.testing.assert_array_equal(
        scratch.params["conv1"]["kernel"], again.params["conv1"]["kernel"]
    )
