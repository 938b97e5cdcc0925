"""Caffe's SGD solver as an optax transformation, and Caffe's "step" learning-rate policy.

docs/methods.md §2. Caffe (``sgd_solver.cpp``) updates every parameter blob ``w`` with gradient
``g`` as::

    local_rate  = lr(iter) * lr_mult          # per-blob learning-rate multiplier
    local_decay = weight_decay * decay_mult   # per-blob weight-decay multiplier
    v <- momentum * v + local_rate * (g + local_decay * w)
    w <- w - v

The learning rate multiplies the *new* gradient only; the momentum buffer ``v`` already holds
learning-rate-scaled steps. ``optax.sgd(lr, momentum)`` instead accumulates raw gradients and
multiplies the whole buffer by the current rate, so the two differ after every change of the rate
(a step of the schedule rescales optax's accumulated velocity but not Caffe's).

Caffe's conventions for CaffeNet (``train_val.prototxt``): weights ``lr_mult 1, decay_mult 1``,
biases ``lr_mult 2, decay_mult 0``. These are the defaults here, recognised by the leaf name
``bias``; any other per-blob multipliers can be given as pytrees matching the parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

Schedule = Callable[[jax.Array], jax.Array]


def step_schedule(base_lr: float, *, gamma: float, step_size: int) -> Schedule:
    """Caffe's ``lr_policy: "step"``: ``lr(it) = base_lr * gamma ** floor(it / step_size)``.

    ``it`` is the 0-based iteration whose update is being computed (Caffe's ``iter_``), which is
    the ``count`` an optax transformation sees. Returns a function of an integer step.
    """
    if step_size <= 0:
        raise ValueError(f"step_size must be positive, got {step_size}")
    if base_lr < 0 or gamma <= 0:
        raise ValueError(f"need base_lr >= 0 and gamma > 0, got {base_lr}, {gamma}")

    def schedule(count):
        # Integer division first, so the exponent is exact for any count.
        exponent = (jnp.asarray(count, jnp.int32) // step_size).astype(jnp.float32)
        return base_lr * jnp.asarray(gamma, jnp.float32) ** exponent

    return schedule


def _leaf_name(path) -> str:
    last = path[-1]
    for attr in ("key", "name", "idx"):
        if hasattr(last, attr):
            return str(getattr(last, attr))
    return str(last)


def caffe_multipliers(
    params, *, bias_lr_mult: float = 2.0, bias_decay_mult: float = 0.0, frozen: Iterable[str] = ()
) -> tuple[Any, Any]:
    """Per-blob ``(lr_mult, decay_mult)`` pytrees in Caffe's CaffeNet convention.

    Leaves named ``bias`` get ``bias_lr_mult`` / ``bias_decay_mult``; all other leaves 1 / 1.
    Top-level layers listed in ``frozen`` get ``lr_mult 0`` (Caffe's way of freezing a layer).
    """
    frozen = set(frozen)

    def layer_of(path):
        return _leaf_name(path[:1]) if path else ""

    def lr(path, _):
        if layer_of(path) in frozen:
            return 0.0
        return bias_lr_mult if _leaf_name(path) == "bias" else 1.0

    def decay(path, _):
        return bias_decay_mult if _leaf_name(path) == "bias" else 1.0

    return (
        jax.tree_util.tree_map_with_path(lr, params),
        jax.tree_util.tree_map_with_path(decay, params),
    )


class CaffeSgdState(NamedTuple):
    """``count``: updates applied so far (Caffe's ``iter_``); ``momentum``: Caffe's history."""

    count: jax.Array
    momentum: Any


def _check_structure(name, tree, params):
    if jax.tree_util.tree_structure(tree) != jax.tree_util.tree_structure(params):
        raise ValueError(
            f"{name} must be a pytree with the structure of the parameters; got "
            f"{jax.tree_util.tree_structure(tree)} for parameters "
            f"{jax.tree_util.tree_structure(params)}"
        )


def caffe_sgd(
    learning_rate: float | Schedule,
    *,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    lr_mult=None,
    decay_mult=None,
) -> optax.GradientTransformation:
    """Caffe's SGD with momentum, weight decay and per-blob multipliers (module docstring).

    Args:
      learning_rate: a float, or a schedule ``count -> lr`` (e.g. `step_schedule`).
      momentum: Caffe's ``momentum`` (μ), in [0, 1).
      weight_decay: Caffe's ``weight_decay`` (λ, L2), >= 0.
      lr_mult, decay_mult: pytrees of floats with the parameters' structure, or ``None`` for
        Caffe's defaults (`caffe_multipliers`: biases 2 / 0, everything else 1 / 1).

    ``update(grads, state, params)`` needs ``params`` (weight decay reads them) and returns
    ``-v``, so ``optax.apply_updates(params, updates)`` performs ``w <- w - v``.
    """
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    schedule = learning_rate if callable(learning_rate) else (lambda _: learning_rate)

    def multipliers(params):
        default_lr, default_decay = caffe_multipliers(params)
        lrm = default_lr if lr_mult is None else lr_mult
        dcm = default_decay if decay_mult is None else decay_mult
        _check_structure("lr_mult", lrm, params)
        _check_structure("decay_mult", dcm, params)
        return lrm, dcm

    def init_fn(params):
        multipliers(params)  # validate early
        return CaffeSgdState(
            count=jnp.zeros([], jnp.int32), momentum=jax.tree_util.tree_map(jnp.zeros_like, params)
        )

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError(
                "caffe_sgd needs params for weight decay: call update(grads, state, params)"
            )
        lrm, dcm = multipliers(params)
        rate = jnp.asarray(schedule(state.count), jnp.float32)

        def blob_update(g, w, v, lm, dm):
            diff = g + (weight_decay * dm) * w  # Caffe's Regularize()
            local_rate = (rate * lm).astype(v.dtype)
            return local_rate * diff + momentum * v  # ComputeUpdateValue(): axpby

        new_v = jax.tree_util.tree_map(blob_update, grads, params, state.momentum, lrm, dcm)
        updates = jax.tree_util.tree_map(jnp.negative, new_v)
        return updates, CaffeSgdState(count=state.count + 1, momentum=new_v)

    return optax.GradientTransformation(init_fn, update_fn)


def current_learning_rate(learning_rate: float | Schedule, count) -> float:
    """The rate `caffe_sgd` applies at update number `count` (for logging)."""
    return float(learning_rate(count)) if callable(learning_rate) else float(learning_rate)
