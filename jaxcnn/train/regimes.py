"""Starting points of training runs: pre-training, the fine-tuning regimes, layer transplants.

docs/methods.md §2 (fine-tuning, §2.3 of the paper):

- ``pretrain``: Caffe's random initialisation; every layer trains.
- ``ft``: conv1-fc7 from a source network, a new randomly initialised fc8 for the target's
  classes; every layer trains.
- ``fc-ft``: as ``ft`` but conv1-conv5 are frozen (learning rate 0 in Caffe's terms); only fc6-fc8
  train, and no gradient is propagated into the conv layers (see `jaxcnn.train`).
- ``scratch``: random initialisation on the target task; every layer trains.

`transplant` generalises these for the transfer experiments of Yosinski et al. (docs/methods.md
§11): copy the first layers from a source network, re-initialise the rest, choose which layers
train.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax

from jaxcnn.model import alexnet

REGIMES = ("pretrain", "ft", "fc-ft", "scratch")
NEEDS_SOURCE = ("ft", "fc-ft")


def transplant(
    source_params: dict,
    module: alexnet.AlexNet,
    rng: jax.Array,
    *,
    copy: Sequence[str],
) -> dict:
    """Parameters for `module`: the layers in `copy` taken from `source_params` (shapes must
    match), every other layer freshly initialised (`alexnet.init_params`) from `rng`."""
    shapes = jax.eval_shape(functools.partial(alexnet.init_params, module), rng)  # no compile
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
    fresh = alexnet.init_params(module, rng)
    return {
        name: dict(source_params[name]) if name in copy else layer for name, layer in fresh.items()
    }


def start_params(
    regime: str,
    module: alexnet.AlexNet,
    rng: jax.Array,
    source_params: dict | None = None,
) -> tuple[dict, tuple[str, ...]]:
    """``(params, trainable_layers)`` for a run of the given regime (module docstring)."""
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; choose one of {REGIMES}")
    all_layers = (*alexnet.CONV_NAMES, *alexnet.FC_NAMES)
    if regime in NEEDS_SOURCE:
        if source_params is None:
            raise ValueError(f"regime {regime!r} needs source parameters (a pre-trained run)")
        params = transplant(source_params, module, rng, copy=all_layers[:-1])
        trainable = alexnet.FC_NAMES if regime == "fc-ft" else all_layers
        return params, tuple(trainable)
    if source_params is not None:
        raise ValueError(f"regime {regime!r} starts from random weights; got source parameters")
    return alexnet.init_params(module, rng), all_layers
