"""Starting states of the transfer networks (docs/methods.md §Transferability, "Treatments").

For n = 1..7 (conv1 .. fc7) Yosinski et al. build a network for the target half B:

- ``BnB``: layers 1..n copied from baseB and frozen; layers n+1..7 re-initialised with the
  network's initialisers; a new classifier (fc8); trained on B.
- ``BnB+``: the same, but the copied layers train at the full learning rate.
- ``AnB``, ``AnB+``: the same with layers copied from baseA.
- ``random`` (their "random, untrained filters" control, optional): layers 1..n keep a fresh
  random initialisation and are frozen; the layers above train.

Frozen is Caffe's learning rate 0: a frozen layer is left out of ``state.trainable``, so it gets
no gradient step, no momentum and no weight decay, and stays bit for bit as copied
(`jaxcnn.train`). The base networks are the ``base`` treatment at n = 0 (all layers fresh).
"""

from __future__ import annotations

import dataclasses

import jax

from jaxcnn import model
from jaxcnn.model import alexnet
from jaxcnn.train import config as train_config
from jaxcnn.train import regimes
from jaxcnn.train import step as train_lib
from jaxcnn.train.config import TrainConfig

LAYERS = alexnet.TAP_NAMES  # layer n (1-based) is LAYERS[n - 1]
ALL_LAYERS = (*alexnet.CONV_NAMES, *alexnet.FC_NAMES)
TREATMENTS = ("BnB", "BnB+", "AnB", "AnB+")
CONTROL = "random"
BASE = "base"


@dataclasses.dataclass(frozen=True)
class Treatment:
    name: str
    source: str | None  # "B": the target half's base net, "A": the other half's, None: random
    frozen: bool  # whether layers 1..n are frozen (no "+")


def treatment(name: str) -> Treatment:
    """The `Treatment` named ``base``, ``BnB``, ``BnB+``, ``AnB``, ``AnB+`` or ``random``."""
    if name == BASE:
        return Treatment(name, None, False)
    if name == CONTROL:
        return Treatment(name, None, True)
    if name not in TREATMENTS:
        raise ValueError(f"unknown treatment {name!r}; choose from {(BASE, *TREATMENTS, CONTROL)}")
    return Treatment(name, name[0], not name.endswith("+"))


def start_params(
    name: str,
    n: int,
    module: alexnet.AlexNet,
    rng: jax.Array,
    source_params: dict | None = None,
) -> tuple[dict, tuple[str, ...]]:
    """``(params, trainable_layers)`` of treatment `name` at depth `n` (module docstring).

    Layers not copied equal ``model.init_params(module, rng)``; `source_params` (the base
    network to copy from) is required exactly when the treatment copies layers."""
    spec = treatment(name)
    if spec.name == BASE:
        if n != 0 or source_params is not None:
            raise ValueError("the base networks are n = 0 and start from random weights")
        return model.init_params(module, rng), ALL_LAYERS
    if not 1 <= n <= len(LAYERS):
        raise ValueError(f"n must be in 1..{len(LAYERS)} for {name}, got {n}")
    if (spec.source is None) != (source_params is None):
        raise ValueError(
            f"{name} {'needs' if spec.source else 'takes no'} source parameters (a base network)"
        )
    lower = LAYERS[:n]
    if spec.source is None:
        params = model.init_params(module, rng)
    else:
        params = regimes.transplant(source_params, module, rng, copy=lower)
    trainable = tuple(k for k in ALL_LAYERS if not (spec.frozen and k in lower))
    return params, trainable


def initial_state(
    config: TrainConfig, name: str, n: int, source_params: dict | None = None
) -> train_lib.TrainState:
    """The step-0 training state of a transfer run: `start_params` with the config's network,
    seed and optimizer (`jaxcnn.train.config.initial_state` with this start)."""
    return train_config.initial_state(
        config, start=lambda module, rng: start_params(name, n, module, rng, source_params)
    )
