"""Tests for jaxcnn.train.solver: Caffe's SGD update against a hand-written numpy Caffe solver."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcnn.train import solver


def _params(rng):
    return {
        "conv1": {
            "kernel": rng.normal(size=(3, 3, 2, 4)).astype(np.float32),
            "bias": rng.normal(size=(4,)).astype(np.float32),
        },
        "fc8": {
            "kernel": rng.normal(size=(5, 3)).astype(np.float32),
            "bias": rng.normal(size=(3,)).astype(np.float32),
        },
    }


def _numpy_caffe(
    params, grads_seq, *, base_lr, gamma, step_size, momentum, weight_decay, lr_mult, decay_mult
):
    """Caffe's SGDSolver, written blob by blob from sgd_solver.cpp (Regularize, then
    ComputeUpdateValue's axpby into the history, then Blob::Update's data -= diff)."""
    w = {k: {n: v.astype(np.float64) for n, v in layer.items()} for k, layer in params.items()}
    hist = {k: {n: np.zeros_like(v) for n, v in layer.items()} for k, layer in w.items()}
    for it, grads in enumerate(grads_seq):
        rate = base_lr * gamma ** (it // step_size)  # lr_policy "step"
        for k in w:
            for n in w[k]:
                diff = grads[k][n] + weight_decay * decay_mult[k][n] * w[k][n]
                hist[k][n] = rate * lr_mult[k][n] * diff + momentum * hist[k][n]
                w[k][n] = w[k][n] - hist[k][n]
    return w


def _run_optax(tx, params, grads_seq):
    state = tx.init(params)

    @jax.jit
    def step(p, s, g):
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s

    for g in grads_seq:
        params, state = step(params, state, g)
    return params, state


def test_step_schedule_values():
    sched = jax.jit(solver.step_schedule(0.01, gamma=0.1, step_size=3))
    got = [float(sched(i)) for i in range(8)]
    want = [0.01] * 3 + [0.001] * 3 + [0.0001] * 2  # by hand: floor(i / 3) steps
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("custom", [False, True])
def test_caffe_sgd_matches_numpy_caffe_across_lr_steps(custom):
    rng = np.random.default_rng(0)
    params = _params(rng)
    grads_seq = [
        jax.tree_util.tree_map(lambda x: rng.normal(size=x.shape).astype(np.float32), params)
        for _ in range(7)
    ]
    if custom:  # per-layer multipliers, e.g. a frozen conv1 weight and a decayed fc8 bias
        lr_mult = {"conv1": {"kernel": 0.0, "bias": 3.0}, "fc8": {"kernel": 10.0, "bias": 20.0}}
        decay_mult = {"conv1": {"kernel": 1.0, "bias": 0.5}, "fc8": {"kernel": 2.0, "bias": 1.0}}
    else:  # Caffe's CaffeNet defaults: weights 1/1, biases 2/0
        lr_mult = {k: {"kernel": 1.0, "bias": 2.0} for k in params}
        decay_mult = {k: {"kernel": 1.0, "bias": 0.0} for k in params}
    hyper = dict(base_lr=0.05, gamma=0.1, step_size=3, momentum=0.9, weight_decay=5e-3)
    tx = solver.caffe_sgd(
        solver.step_schedule(hyper["base_lr"], gamma=hyper["gamma"], step_size=hyper["step_size"]),
        momentum=hyper["momentum"],
        weight_decay=hyper["weight_decay"],
        lr_mult=lr_mult if custom else None,
        decay_mult=decay_mult if custom else None,
    )
    got, state = _run_optax(tx, params, grads_seq)
    want = _numpy_caffe(params, grads_seq, lr_mult=lr_mult, decay_mult=decay_mult, **hyper)
    for k in params:
        for n in params[k]:
            np.testing.assert_allclose(np.asarray(got[k][n]), want[k][n], rtol=1e-5, atol=1e-6)
    assert int(state.count) == 7
    if custom:  # lr_mult 0: the blob never moves
        np.testing.assert_array_equal(np.asarray(got["conv1"]["kernel"]), params["conv1"]["kernel"])


def test_caffe_sgd_differs_from_optax_sgd_after_a_rate_step():
    """Documents why caffe_sgd exists: optax rescales the accumulated velocity when the rate
    steps, Caffe does not. Before the step (and with no decay) the two coincide."""
    rng = np.random.default_rng(1)
    params = {"w": {"kernel": rng.normal(size=(4,)).astype(np.float32)}}
    grads_seq = [{"w": {"kernel": rng.normal(size=(4,)).astype(np.float32)}} for _ in range(4)]
    sched = solver.step_schedule(0.1, gamma=0.1, step_size=2)
    caffe = solver.caffe_sgd(sched, momentum=0.9, weight_decay=0.0)
    ref = optax.sgd(sched, momentum=0.9)
    c2, _ = _run_optax(caffe, params, grads_seq[:2])
    o2, _ = _run_optax(ref, params, grads_seq[:2])
    np.testing.assert_allclose(c2["w"]["kernel"], o2["w"]["kernel"], rtol=1e-6)
    c4, _ = _run_optax(caffe, params, grads_seq)
    o4, _ = _run_optax(ref, params, grads_seq)
    assert np.max(np.abs(np.asarray(c4["w"]["kernel"]) - np.asarray(o4["w"]["kernel"]))) > 1e-3


def test_caffe_multipliers_defaults_and_frozen():
    params = _params(np.random.default_rng(2))
    lr, decay = solver.caffe_multipliers(params, frozen=["conv1"])
    assert lr == {"conv1": {"kernel": 0.0, "bias": 0.0}, "fc8": {"kernel": 1.0, "bias": 2.0}}
    assert decay == {"conv1": {"kernel": 1.0, "bias": 0.0}, "fc8": {"kernel": 1.0, "bias": 0.0}}


def test_errors():
    params = _params(np.random.default_rng(3))
    with pytest.raises(ValueError, match="momentum"):
        solver.caffe_sgd(0.1, momentum=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        solver.caffe_sgd(0.1, weight_decay=-1.0)
    with pytest.raises(ValueError, match="step_size"):
        solver.step_schedule(0.1, gamma=0.1, step_size=0)
    with pytest.raises(ValueError, match="lr_mult"):
        solver.caffe_sgd(0.1, lr_mult={"conv1": 1.0}).init(params)
    tx = solver.caffe_sgd(0.1)
    state = tx.init(params)
    with pytest.raises(ValueError, match="needs params"):
        tx.update(params, state)


def test_bias_recognised_in_flax_params():
    """The default multipliers find flax's 'bias' leaves (DictKey paths) and keep dtypes."""
    params = {"fc8": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}}
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    tx = solver.caffe_sgd(1.0, momentum=0.0, weight_decay=0.0)
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    np.testing.assert_array_equal(updates["fc8"]["bias"], -2.0 * np.ones(2))  # lr_mult 2
    np.testing.assert_array_equal(updates["fc8"]["kernel"], -np.ones((2, 2)))
    assert updates["fc8"]["kernel"].dtype == jnp.float32
