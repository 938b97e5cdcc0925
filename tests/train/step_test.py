"""Tests for jaxcnn.train: the SGD step, fc-ft freezing, pmap equivalence and evaluation counts."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.model import alexnet
from jaxcnn.train import distributed, regimes, solver
from jaxcnn.train import step as step_lib

TINY = dict(width=0.125, fc_width=32, input_size=32)
B = 16  # one batch size everywhere, so that compiled steps are shared between tests
STEP = jax.jit(step_lib.train_step)


def _module(num_classes=10, **kw):
    return alexnet.from_preset("small", num_classes, **{**TINY, **kw})


@pytest.fixture(scope="module")
def net():
    """A tiny network without dropout and one set of source parameters (compiled once)."""
    module = _module(dropout_rate=0.0)
    return module, alexnet.init_params(module, jax.random.key(7))


def _batch(n, num_classes=10, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "image": rng.normal(size=(n, size, size, 3)).astype(np.float32),
        "label": rng.integers(0, num_classes, n).astype(np.int32),
    }


def _state(module, regime="pretrain", lr=0.01, seed=0, source=None):
    params, trainable = regimes.start_params(regime, module, jax.random.key(seed), source)
    tx = solver.caffe_sgd(lr, momentum=0.9, weight_decay=5e-4)
    return step_lib.TrainState.create_for(
        apply_fn=module.apply,
        params=params,
        tx=tx,
        rng=jax.random.key(seed + 1),
        trainable=trainable,
    )


def test_cross_entropy_against_numpy():
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0]], np.float32)
    labels = np.array([2, 1], np.int32)
    # log-softmax by hand: -(z_y - log sum exp z)
    want = np.mean([-(0.5 - np.log(np.exp(2.0) + np.exp(-1.0) + np.exp(0.5))), np.log(3.0)])
    got = jax.jit(step_lib.cross_entropy_loss)(logits, labels)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_train_step_applies_caffe_update_to_the_gradient(net):
    """First step from zero momentum: w1 = w0 - lr*lr_mult*(g + wd*decay_mult*w0), with g from
    an independently written loss (log-softmax in plain jnp, dropout off)."""
    module, _ = net
    state = _state(module, lr=0.1)
    batch = _batch(B)

    def loss(p):
        logits, _ = module.apply({"params": p}, batch["image"], train=False)
        z = logits - jnp.max(logits, axis=1, keepdims=True)
        logp = z - jnp.log(jnp.sum(jnp.exp(z), axis=1, keepdims=True))
        return -jnp.mean(logp[jnp.arange(B), batch["label"]])

    want_loss, grads = jax.jit(jax.value_and_grad(loss))(state.params)
    new, metrics = STEP(state, batch)
    np.testing.assert_allclose(metrics["loss"], want_loss, rtol=1e-5)
    for layer in state.params:
        w0, g = state.params[layer]["kernel"], grads[layer]["kernel"]
        np.testing.assert_allclose(
            new.params[layer]["kernel"], w0 - 0.1 * (g + 5e-4 * w0), rtol=1e-4, atol=1e-7
        )
        b0, gb = state.params[layer]["bias"], grads[layer]["bias"]
        np.testing.assert_allclose(
            new.params[layer]["bias"], b0 - 0.1 * 2.0 * gb, rtol=1e-4, atol=1e-7
        )
    assert int(new.step) == 1 and np.isfinite(float(metrics["param_norm"]))


def _count_convs(fn, *args):
    jaxpr = jax.make_jaxpr(fn)(*args)
    return str(jaxpr).count("conv_general_dilated")


def test_fc_ft_freezes_conv_bit_exactly_and_skips_their_backward(net):
    module, source = net
    ft, fcft = _state(module, "ft", source=source), _state(module, "fc-ft", source=source)
    assert fcft.trainable == ("fc6", "fc7", "fc8")
    batch = _batch(B)
    state = fcft
    for _ in range(3):
        state, _ = STEP(state, batch)
    for layer in alexnet.CONV_NAMES:
        for leaf in ("kernel", "bias"):
            np.testing.assert_array_equal(state.params[layer][leaf], source[layer][leaf])
    assert not np.array_equal(state.params["fc6"]["kernel"], fcft.params["fc6"]["kernel"])
    # Structure: fc-ft runs only the forward convolutions (conv1 on RGB is a patches matmul,
    # jaxcnn.model.conv; conv2/4/5 are grouped: 2 convs each), ft adds the backward ones.
    forward = _count_convs(
        functools.partial(module.apply, train=False), {"params": source}, batch["image"]
    )
    assert forward == 2 + 1 + 2 + 2
    assert _count_convs(step_lib.train_step, fcft, batch) == forward
    assert _count_convs(step_lib.train_step, ft, batch) > 2 * forward


def test_pmap_on_8_devices_matches_one_device(net):
    assert jax.local_device_count() == 8, "conftest sets 8 fake CPU devices"
    module, _ = net
    state = _state(module)
    batches = [_batch(B, seed=s) for s in range(2)]
    s1 = state
    for b in batches:
        s1, m1 = STEP(s1, b)
    p_step = jax.pmap(functools.partial(step_lib.train_step, axis_name="batch"), axis_name="batch")
    s8 = distributed.replicate(state, jax.local_devices(), "batch")
    for b in batches:
        s8, m8 = p_step(s8, {k: v.reshape(8, 2, *v.shape[1:]) for k, v in b.items()})
    for a, b in zip(
        jax.tree_util.tree_leaves(s1.params), jax.tree_util.tree_leaves(s8.params), strict=True
    ):
        b = np.asarray(b)
        np.testing.assert_allclose(b[0], a, rtol=2e-5, atol=1e-6)
        np.testing.assert_array_equal(b[0], b[7])  # replicas stay identical
    np.testing.assert_allclose(np.asarray(m8["loss"])[0], m1["loss"], rtol=1e-5)


def test_dropout_draws_differ_per_step_and_device(net):
    _, params = net
    module = _module()  # with dropout
    batch = _batch(B)

    @jax.jit
    def logits_at(step, device):
        rng = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), step), device)
        out, _ = module.apply({"params": params}, batch["image"], train=True, rngs={"dropout": rng})
        return out

    assert not np.allclose(logits_at(0, 0), logits_at(1, 0))
    assert not np.allclose(logits_at(0, 0), logits_at(0, 1))


def test_eval_step_counts_against_numpy(net):
    module, _ = net
    state = _state(module)
    batch = _batch(12)
    batch["mask"] = np.array([1] * 9 + [0] * 3, np.float32)
    sums = jax.jit(step_lib.eval_step)(state, batch)
    logits, _ = jax.jit(functools.partial(module.apply, train=False))(
        {"params": state.params}, batch["image"]
    )
    logits = np.asarray(logits, np.float64)
    order = np.argsort(-logits, axis=1, kind="stable")
    keep = batch["mask"] > 0
    y = batch["label"]
    top1 = (order[:, 0] == y)[keep].sum()
    top5 = np.any(order[:, :5] == y[:, None], axis=1)[keep].sum()
    lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    loss = (lse - logits[np.arange(12), y])[keep].sum()
    assert float(sums["count"]) == 9
    assert float(sums["top1"]) == top1 and float(sums["top5"]) == top5
    np.testing.assert_allclose(float(sums["loss"]), loss, rtol=1e-5)


def test_train_flops_per_image():
    cfg = _module(input_size=48).config
    fwd = alexnet.forward_flops(cfg)
    # fc flops by hand: conv5 map 2x2x32 = 128 -> 32 -> 32 -> 10, 2 FLOPs per MAC
    fc = 2 * (128 * 32 + 32 * 32 + 32 * 10)
    assert step_lib.train_flops_per_image(cfg, ("fc6", "fc7", "fc8")) == fwd + 2 * fc
    assert step_lib.train_flops_per_image(cfg, ("fc8",)) == fwd + 2 * (2 * 32 * 10)
    assert step_lib.train_flops_per_image(cfg, (*alexnet.CONV_NAMES, *alexnet.FC_NAMES)) == 3 * fwd


def test_errors(net):
    module, _ = net
    state = _state(module)
    with pytest.raises(ValueError, match="equal N"):
        step_lib.train_step(
            state,
            {"image": np.zeros((4, 32, 32, 3), np.float32), "label": np.zeros((3,), np.int32)},
        )
    with pytest.raises(ValueError, match="integers"):
        step_lib.train_step(
            state,
            {"image": np.zeros((4, 32, 32, 3), np.float32), "label": np.zeros((4,), np.float32)},
        )
    with pytest.raises(ValueError, match="subset"):
        step_lib.TrainState.create_for(
            apply_fn=module.apply,
            params=state.params,
            tx=solver.caffe_sgd(0.1),
            rng=jax.random.key(0),
            trainable=("fc9",),
        )


def test_bfloat16_compute_keeps_float32_parameters(net):
    module32, params = net
    module = _module(dropout_rate=0.0, dtype=jnp.bfloat16)

    def state_of(m):
        return step_lib.TrainState.create_for(
            apply_fn=m.apply, params=params, tx=solver.caffe_sgd(0.01), rng=jax.random.key(0)
        )

    batch = _batch(B)
    new, metrics = STEP(state_of(module), batch)
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(new.params))
    assert new.opt_state.momentum["conv1"]["kernel"].dtype == jnp.float32
    # bfloat16 keeps 8 bits of mantissa: the loss agrees with float32's to about 1e-2.
    _, metrics32 = STEP(state_of(module32), batch)
    assert np.isfinite(float(metrics["loss"]))
    np.testing.assert_allclose(float(metrics["loss"]), float(metrics32["loss"]), rtol=2e-2)
