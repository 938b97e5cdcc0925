"""Starting points of training runs: pre-training, the fine-tuning regimes, layer transplants.

SPEC §2 (fine-tuning, §2.3 of the paper):

- ``pretrain``: Caffe's random initialisation; every layer trains.
- ``ft``: conv1-fc7 from a source network, a new randomly initialised fc8 for the target's
  classes; every layer trains.
- ``fc-ft``: as ``ft`` but conv1-conv5 are frozen (learning rate 0 in Caffe's terms); only fc6-fc8
  train, and no gradient is propagated into the conv layers (see `jaxcnn.train`).
- ``scratch``: random initialisation on the target task; every layer trains.

`transplant` generalises these for the transfer experiments of Yosinski et al. (SPEC §11): copy
the first layers from a source network, re-initialise the rest, choose which layers train.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxcnn import models

REGIMES = ("pretrain", "ft", "fc-ft", "scratch")
NEEDS_SOURCE = ("ft", "fc-ft")


@functools.partial(jax.jit, static_argnums=0)
def init_params(module: models.AlexNet, rng: jax.Array) -> dict:
    """`models.init_params` (the config's Caffe fillers), compiled once per geometry.

    The random numbers come from JAX's "rbg" generator keyed by `rng` (a threefry key), whose XLA
    program compiles about 3x faster on CPU than threefry's (1.5 s instead of 4.5 s for the
    small preset): it matters for the many short runs of the embedded study. Equal `rng` give
    equal parameters.
    """
    data = (
        jax.random.key_data(rng) if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key) else rng
    )
    rbg = jax.random.wrap_key_data(jnp.concatenate([data, data]).astype(jnp.uint32), impl="rbg")
    return models.init_params(module, rbg)


def transplant(
    source_params: dict,
    module: models.AlexNet,
    rng: jax.Array,
    *,
    copy: Sequence[str],
) -> dict:
    """Parameters for `module`: the layers in `copy` taken from `source_params` (shapes must
    match), every other layer freshly initialised (`init_params`) from `rng`."""
    shapes = jax.eval_shape(functools.partial(models.init_params, module), rng)  # no compile
    unknown = set(copy) - set(shapes)
    if unknown:
        raise ValueError(f"cannot copy unknown layers {sorted(unknown)}")
    for name in copy:
        if name not in source_params:
            raise ValueError(
                f"source parameters lack layer {name!r} (have {sorted(source_params)})"
            )
        for leaf, want in shapes[name].items():
            got = tuple(source_params[name][leaf].shape)
            if got != tuple(want.shape):
                raise ValueError(
                    f"{name}/{leaf}: source shape {got} does not fit the model's "
                    f"{tuple(want.shape)} (different preset or geometry?)"
                )
    fresh = init_params(module, rng)
    return {
        name: dict(source_params[name]) if name in copy else layer for name, layer in fresh.items()
    }


def start_params(
    regime: str,
    module: models.AlexNet,
    rng: jax.Array,
    source_params: dict | None = None,
) -> tuple[dict, tuple[str, ...]]:
    """``(params, trainable_layers)`` for a run of the given regime (module docstring)."""
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; choose one of {REGIMES}")
    all_layers = (*models.CONV_NAMES, *models.FC_NAMES)
    if regime in NEEDS_SOURCE:
        if source_params is None:
            raise ValueError(f"regime {regime!r} needs source parameters (a pre-trained run)")
        params = transplant(source_params, module, rng, copy=all_layers[:-1])
        trainable = models.FC_NAMES if regime == "fc-ft" else all_layers
        return params, tuple(trainable)
    if source_params is not None:
        raise ValueError(f"regime {regime!r} starts from random weights; got source parameters")
    return init_params(module, rng), all_layers
