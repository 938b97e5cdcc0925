"""Linear CKA between representations, minibatch estimator (Nguyen, Raghu & Kornblith 2021).

Beyond the paper: measures directly how much a layer changes between two checkpoints
(pre-trained vs fine-tuned, snapshot t vs the final one). For minibatches i = 1 … B of n
examples, with ``K_i = X_i X_iᵀ`` and ``L_i = Y_i Y_iᵀ`` (linear kernels on the flattened
features of the same examples under the two networks)::

    CKA = Σ_i HSIC_1(K_i, L_i) / sqrt(Σ_i HSIC_1(K_i, K_i) · Σ_i HSIC_1(L_i, L_i))

(the paper's 1/B factors cancel), where HSIC_1 is the unbiased estimator of Song et al. (2012)::

    HSIC_1(K, L) = [tr(K̃L̃) + 1ᵀK̃1 · 1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3)),

K̃, L̃ = K, L with zeroed diagonals, n >= 4. Unlike the biased estimator, the minibatch average
does not depend on the batch size in expectation. CKA(X, X) = 1; CKA is invariant to orthogonal
transforms and isotropic scaling of either representation. HSIC_1 of linear kernels is also
invariant to translating the features, so each batch is centred first (numerically safer in
float32; the value is unchanged). Matrix products use full float32 precision.
"""

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

_HI = jax.lax.Precision.HIGHEST  # no TF32 / bf16 passes on accelerators


def hsic_unbiased(gram_k, gram_l):
    """Unbiased HSIC_1 of two [n, n] kernel matrices K, L (module docstring), n >= 4: scalar."""
    gram_k, gram_l = jnp.asarray(gram_k), jnp.asarray(gram_l)
    n = gram_k.shape[0]
    if gram_k.ndim != 2 or gram_k.shape != (n, n) or gram_l.shape != (n, n):
        raise ValueError(
            f"kernels must be square [n, n] of one shape, got {gram_k.shape}, {gram_l.shape}"
        )
    if n < 4:
        raise ValueError(f"the unbiased HSIC needs n >= 4 examples, got {n}")
    off_NxN = 1.0 - jnp.eye(n, dtype=gram_k.dtype)
    k_NxN, l_NxN = gram_k * off_NxN, gram_l * off_NxN  # K̃, L̃: diagonals zeroed
    trace = jnp.sum(k_NxN * l_NxN)  # tr(K̃ L̃) for symmetric L̃
    sums = jnp.sum(k_NxN) * jnp.sum(l_NxN) / ((n - 1) * (n - 2))
    cross = jnp.dot(jnp.sum(k_NxN, axis=0), jnp.sum(l_NxN, axis=1), precision=_HI)  # 1ᵀK̃L̃1
    return (trace + sums - 2.0 * cross / (n - 2)) / (n * (n - 3))


def _flat(x, name):
    x = jnp.asarray(x)
    if x.ndim < 2 or not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name} must be float [n, ...] with n examples, got {x.dtype} {x.shape}")
    x_NxD = x.reshape(x.shape[0], -1)
    return x_NxD - jnp.mean(x_NxD, axis=0, keepdims=True)  # translation leaves HSIC_1 unchanged


def hsic_terms(x, y):
    """The three HSIC_1 sums of one minibatch: [HSIC(K, L), HSIC(K, K), HSIC(L, L)].

    Args:
      x: float [n, ...] features of n examples (flattened per example).
      y: float [n, ...] features of the same n examples from the other network/layer.

    Returns:
      float [3]; add them over minibatches and pass the sum to :func:`cka_from_terms`.
    """
    x_NxD, y_NxE = _flat(x, "x"), _flat(y, "y")
    if x_NxD.shape[0] != y_NxE.shape[0]:
        raise ValueError(f"x and y must hold the same examples, got {x.shape[0]} vs {y.shape[0]}")
    k_NxN = jnp.dot(x_NxD, x_NxD.T, precision=_HI)
    l_NxN = jnp.dot(y_NxE, y_NxE.T, precision=_HI)
    return _terms(k_NxN, l_NxN)


def _terms(k_NxN, l_NxN):
    return jnp.stack(
        [hsic_unbiased(k_NxN, l_NxN), hsic_unbiased(k_NxN, k_NxN), hsic_unbiased(l_NxN, l_NxN)]
    )


def cka_from_terms(terms):
    """CKA from summed :func:`hsic_terms`: ``t[0] / sqrt(t[1] · t[2])``.

    A representation that is constant over every minibatch has HSIC 0; the result is then NaN.
    """
    terms = jnp.asarray(terms)
    if terms.shape[-1:] != (3,):
        raise ValueError(f"terms must have shape [..., 3], got {terms.shape}")
    return terms[..., 0] / jnp.sqrt(terms[..., 1] * terms[..., 2])


def cka_minibatch(x_batches, y_batches):
    """Minibatch linear CKA between two representations of the same examples.

    Args:
      x_batches: float [B, n, ...]: B minibatches of n examples (features flattened).
      y_batches: float [B, n, ...]: the same examples under the other representation.

    Returns:
      float scalar (module docstring formula). Batches are mapped one at a time.
    """
    x_batches, y_batches = jnp.asarray(x_batches), jnp.asarray(y_batches)
    if x_batches.ndim < 3 or y_batches.ndim < 3 or x_batches.shape[:2] != y_batches.shape[:2]:
        raise ValueError(
            f"need x, y of shape [B, n, ...] with equal B, n: {x_batches.shape}, {y_batches.shape}"
        )
    terms_Bx3 = jax.lax.map(lambda xy: hsic_terms(*xy), (x_batches, y_batches))
    return cka_from_terms(jnp.sum(terms_Bx3, axis=0))


def cka_matrix(reference, snapshots):
    """Layer × snapshot CKA matrix against a reference network.

    Args:
      reference: ``{layer: [B, n, ...]}`` features of the reference network (e.g. the final
        or the pre-trained checkpoint).
      snapshots: ``{snapshot name: {layer: [B, n, ...]}}`` features of the same examples.

    Returns:
      ``(layers, names, matrix)``: the reference's layer order, the snapshot names, and numpy
      float [L, S] with entry (l, s) = CKA(reference[l], snapshots[s][l]).
    """
    if not isinstance(reference, Mapping) or not isinstance(snapshots, Mapping):
        raise ValueError("reference and snapshots must be mappings")
    layers, names = list(reference), list(snapshots)
    matrix = np.zeros((len(layers), len(names)))
    for name in names:
        missing = set(layers) - set(snapshots[name])
        if missing:
            raise ValueError(f"snapshot {name!r} lacks layers {sorted(missing)}")
    for i, layer in enumerate(layers):
        k_BxNxN = _batch_grams(reference[layer])  # once per layer, for every snapshot
        for j, name in enumerate(names):
            matrix[i, j] = float(_cka_from_grams(k_BxNxN, _batch_grams(snapshots[name][layer])))
    return layers, names, matrix


def _batch_grams(x_batches) -> np.ndarray:
    """float32 [B, n, n]: each minibatch's linear kernel of its centred flattened features, in
    numpy: the grams of every layer have one shape, so `_cka_from_grams` compiles once where
    `cka_minibatch` compiled once per layer width (10 programs, 8-10 s in the study)."""
    x = np.asarray(x_batches, np.float32)
    if x.ndim < 3:
        raise ValueError(f"need features of shape [B, n, ...], got {x.shape}")
    x = x.reshape(*x.shape[:2], int(np.prod(x.shape[2:])))  # B = 0 allowed (CKA NaN)
    x = x - x.mean(axis=1, keepdims=True)  # translation leaves HSIC_1 unchanged
    return x @ x.transpose(0, 2, 1)


@jax.jit
def _cka_from_grams(k_BxNxN, l_BxNxN):
    terms_Bx3 = jax.lax.map(lambda kl: _terms(*kl), (k_BxNxN, l_BxNxN))
    return cka_from_terms(jnp.sum(terms_Bx3, axis=0))
