"""Backward rules for projecting a unit down to the pixels: `grad`, `deconv`, `guided`.

See docs/methods.md §Visualisation. Each rule keeps the network's forward pass and changes only
what the backward pass does at the ReLUs, the max pools and the LRNs (`jax.custom_vjp`):

| rule     | ReLU backward                          | max pool backward              |
|----------|----------------------------------------|--------------------------------|
| `grad`   | the gradient, ``g · 1[x > 0]``         | the switch (first max)         |
| `deconv` | Zeiler & Fergus: ``max(g, 0)``         | the switch (first max)         |
| `guided` | Springenberg et al.: ``max(g, 0) · 1[x > 0]`` | the switch (first max)  |

The switch of a pooling window is its first maximum in row-major order, as Caffe and PyTorch
record it; `alexnet.max_pool_ceil`'s own backward pass routes to it (`jaxcnn.model.pool_norm`),
so all three rules share the network's max pool. LRN passes
the signal through its true VJP (``lrn="vjp"``, as Captum and TorchRay do) or unchanged
(``lrn="identity"``). `grad` with ``lrn="vjp"`` is the network's own training path.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxcnn.model import alexnet

RULES = ("grad", "deconv", "guided")
LRN_RULES = ("vjp", "identity")


@jax.custom_vjp
def deconv_relu(x):
    """ReLU whose backward pass rectifies the signal coming down, ignoring the forward mask."""
    return jnp.maximum(x, 0)


def _deconv_relu_fwd(x):
    return jnp.maximum(x, 0), None


def _deconv_relu_bwd(_, g):
    return (jnp.maximum(g, 0),)


deconv_relu.defvjp(_deconv_relu_fwd, _deconv_relu_bwd)


@jax.custom_vjp
def guided_relu(x):
    """ReLU whose backward pass keeps positive signal where the forward input was positive."""
    return jnp.maximum(x, 0)


def _guided_relu_fwd(x):
    return jnp.maximum(x, 0), x > 0


def _guided_relu_bwd(positive, g):
    return (jnp.where(positive, jnp.maximum(g, 0), jnp.zeros_like(g)),)


guided_relu.defvjp(_guided_relu_fwd, _guided_relu_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _identity_lrn(x_NHWC, size, alpha, beta, k):
    return alexnet.local_response_norm(x_NHWC, size=size, alpha=alpha, beta=beta, k=k)


def _identity_lrn_fwd(x_NHWC, size, alpha, beta, k):
    return _identity_lrn(x_NHWC, size, alpha, beta, k), None


def _identity_lrn_bwd(size, alpha, beta, k, _, g):
    return (g,)


_identity_lrn.defvjp(_identity_lrn_fwd, _identity_lrn_bwd)


def identity_lrn(x_NHWC, *, size=5, alpha=1e-4, beta=0.75, k=1.0):
    """`alexnet.local_response_norm` whose backward pass leaves the signal unchanged."""
    return _identity_lrn(x_NHWC, size, alpha, beta, k)


def layer_ops(rule: str = "grad", lrn: str = "vjp") -> alexnet.LayerOps:
    """The `alexnet.LayerOps` of a backward rule (module docstring)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if lrn not in LRN_RULES:
        raise ValueError(f"lrn must be one of {LRN_RULES}, got {lrn!r}")
    ops = alexnet.LayerOps()
    if rule != "grad":
        relu = deconv_relu if rule == "deconv" else guided_relu
        ops = alexnet.LayerOps(relu=relu, max_pool=ops.max_pool, lrn=ops.lrn)
    if lrn == "identity":
        ops = alexnet.LayerOps(relu=ops.relu, max_pool=ops.max_pool, lrn=identity_lrn)
    return ops


def with_rule(module: alexnet.AlexNet, rule: str = "deconv", lrn: str = "vjp") -> alexnet.AlexNet:
    """`module` (same parameters, same forward pass) with the backward rule `rule`."""
    return module.clone(ops=layer_ops(rule, lrn))
