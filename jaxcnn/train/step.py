"""Training and evaluation steps: pure functions over one `TrainState`.

`train_step` and `eval_step` carry no decorator: the caller applies ``jax.jit`` or ``jax.pmap``
once, at the call site. Data parallelism is opt-in through ``axis_name``: under ``pmap`` the
gradients and metrics are averaged over that axis with ``lax.pmean`` (each device holds an equal
slice of the global batch, so the mean of per-device means is the global mean).

Partial training (fine-tuning with frozen layers, docs/methods.md §2 ``fc-ft``) is a property of the
state: ``state.trainable`` names the top-level layers that train. Only those are differentiated, so
no gradient is propagated into frozen layers below them (for ``fc-ft`` the backward pass of conv1-5
is never computed), and the optimizer state covers the trainable layers only. Frozen parameters are
passed through unchanged, bit for bit.

Randomness: the per-step dropout key is ``fold_in(state.rng, state.step)`` (and, under ``pmap``,
folded with the device index), so a resumed run draws the same numbers as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state
from jax import lax

from jaxcnn.model import alexnet


class TrainState(train_state.TrainState):
    """Flax TrainState plus the base rng and the names of the trainable layers.

    ``opt_state`` is the optimizer state of ``{k: params[k] for k in trainable}``.
    ``rng`` is a raw ``uint32[2]`` key (checkpointable as a plain array).
    """

    rng: jax.Array
    trainable: tuple[str, ...] = flax.struct.field(pytree_node=False, default=())

    @classmethod
    def create_for(
        cls,
        *,
        apply_fn,
        params: dict,
        tx: optax.GradientTransformation,
        rng: jax.Array,
        trainable: Sequence[str] | None = None,
    ) -> TrainState:
        """A fresh state at step 0; ``trainable=None`` trains every layer."""
        trainable = tuple(params) if trainable is None else tuple(trainable)
        unknown = [k for k in trainable if k not in params]
        if unknown or not trainable:
            raise ValueError(
                f"trainable layers {list(trainable)} must be a non-empty subset of "
                f"the parameters' layers {list(params)}"
            )
        sub = {k: params[k] for k in trainable}
        if jax.dtypes.issubdtype(jnp.asarray(rng).dtype, jax.dtypes.prng_key):
            rng = jax.random.key_data(rng)  # typed key -> raw uint32 data, checkpointable
        return cls(
            step=jnp.zeros([], jnp.int32),
            apply_fn=apply_fn,
            params=params,
            tx=tx,
            opt_state=tx.init(sub),
            rng=jnp.asarray(rng, jnp.uint32),
            trainable=trainable,
        )

    def trainable_params(self) -> dict:
        return {k: self.params[k] for k in self.trainable}

    def apply_gradients(self, *, grads, **kwargs) -> TrainState:
        """One optimizer update from ``grads`` of the trainable layers only."""
        sub = self.trainable_params()
        updates, opt_state = self.tx.update(grads, self.opt_state, sub)
        new_sub = optax.apply_updates(sub, updates)
        return self.replace(
            step=self.step + 1, params={**self.params, **new_sub}, opt_state=opt_state, **kwargs
        )


def cross_entropy_loss(logits_NxC: jax.Array, labels_N: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy (natural log) of integer labels: Caffe's SoftmaxWithLoss."""
    return optax.softmax_cross_entropy_with_integer_labels(logits_NxC, labels_N).mean()


def _check_batch(batch):
    images, labels = batch["image"], batch["label"]
    if images.ndim != 4 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"batch needs 'image' [N, H, W, 3] and 'label' [N] with equal N, got "
            f"{images.shape} and {labels.shape}"
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")


def train_step(state: TrainState, batch: dict, *, axis_name: str | None = None):
    """One SGD step on ``batch = {'image': f32[N, H, W, 3], 'label': int[N]}``.

    Returns ``(new_state, metrics)``; metrics are scalars: ``loss`` (before the update),
    ``top1`` (training-batch accuracy, dropout on), ``grad_norm``, ``update_norm`` and
    ``param_norm`` (global L2 norms over the trainable layers; ``param_norm`` after the update, so
    a finite value certifies finite new parameters). Under ``pmap`` pass the mapped
    ``axis_name``: gradients and metrics are then averaged over devices.
    """
    _check_batch(batch)
    rng = jax.random.fold_in(state.rng, state.step)
    if axis_name is not None:
        rng = jax.random.fold_in(rng, lax.axis_index(axis_name))
    frozen = {k: v for k, v in state.params.items() if k not in state.trainable}

    def loss_fn(trainable_params):
        # Frozen layers enter as constants: autodiff computes no backward pass for them, nor for
        # anything below the lowest trainable layer.
        logits, _ = state.apply_fn(
            {"params": {**frozen, **trainable_params}},
            batch["image"],
            train=True,
            rngs={"dropout": rng},
        )
        return cross_entropy_loss(logits, batch["label"]), logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.trainable_params())
    top1 = jnp.mean(jnp.argmax(logits, axis=-1) == batch["label"])
    if axis_name is not None:
        grads = lax.pmean(grads, axis_name)
        loss, top1 = lax.pmean((loss, top1), axis_name)
    new_state = state.apply_gradients(grads=grads)
    new_sub = new_state.trainable_params()
    metrics = {
        "loss": loss,
        "top1": top1,
        "grad_norm": optax.tree.norm(grads),
        "update_norm": optax.tree.norm(
            jax.tree_util.tree_map(jnp.subtract, new_sub, state.trainable_params())
        ),
        "param_norm": optax.tree.norm(new_sub),
    }
    return new_state, metrics


def eval_step(state: TrainState, batch: dict, *, axis_name: str | None = None) -> dict:
    """Summed evaluation counts on one batch (dropout off).

    ``batch`` may carry ``mask`` (bool/float [N]; 0 marks padding examples, which count
    nowhere). Returns sums over the batch (and over ``axis_name`` under ``pmap``): ``count``
    (real examples), ``top1``/``top5`` (correct at rank 1 / within the 5 highest logits;
    ties in the logits are broken by `lax.top_k`'s lower-index-first rule) and ``loss`` (summed
    cross-entropy).
    """
    _check_batch(batch)
    logits, _ = state.apply_fn({"params": state.params}, batch["image"], train=False)
    labels = batch["label"]
    mask = batch.get("mask")
    weight = jnp.ones(labels.shape, jnp.float32) if mask is None else mask.astype(jnp.float32)
    k = min(5, logits.shape[-1])
    _, top_idx_NxK = lax.top_k(logits, k)
    hit_NxK = top_idx_NxK == labels[:, None]
    xent = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    sums = {
        "count": weight.sum(),
        "top1": (hit_NxK[:, 0] * weight).sum(),
        "top5": (hit_NxK.any(axis=-1) * weight).sum(),
        "loss": (xent * weight).sum(),
    }
    if axis_name is not None:
        sums = lax.psum(sums, axis_name)
    return sums


def train_flops_per_image(config: alexnet.AlexNetConfig, trainable: Sequence[str]) -> float:
    """Approximate FLOPs of one training image: the forward pass plus twice the forward FLOPs of
    every layer from the lowest trainable one up (backward = gradients w.r.t. inputs and
    weights). With everything trainable this is the usual 3x forward; for ``fc-ft`` it is the
    forward pass plus 2x the fc layers."""
    total = alexnet.forward_flops(config)
    shapes = config.feature_shapes()
    din = 1
    for d in shapes["conv5"]:
        din *= d
    fc_flops = {}
    for name, dout in zip(
        alexnet.FC_NAMES, (*[fc.features for fc in config.fcs], config.num_classes), strict=True
    ):
        fc_flops[name] = 2 * din * dout
        din = dout
    if any(name in trainable for name in alexnet.CONV_NAMES):
        return 3.0 * total
    lowest = next((i for i, n in enumerate(alexnet.FC_NAMES) if n in trainable), None)
    if lowest is None:
        return float(total)
    return float(total + 2 * sum(fc_flops[n] for n in alexnet.FC_NAMES[lowest:]))
