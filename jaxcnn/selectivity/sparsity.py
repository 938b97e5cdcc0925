"""Sparsity of filter responses per layer (paper Table 6).

For each image the fraction of its layer responses that are non-zero (all positions and
filters of a conv tap, all units of an fc tap); the table reports the mean ± standard deviation
of that fraction over images, in percent. Taps are ReLU outputs (after pooling / LRN for
conv-1, conv-2, conv-5, which keep zeros zero), so "non-zero" means strictly positive there.
"""

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def nonzero_fraction(acts):
    """Fraction of non-zero entries per example: float [N, ...] -> float32 [N].

    ``frac[n] = #{acts[n, ...] != 0} / size(acts[n, ...])``; NaN counts as non-zero.
    """
    acts = jnp.asarray(acts)
    if acts.ndim < 2 or acts.size == 0:
        raise ValueError(f"acts must have non-empty shape [N, ...], got {acts.shape}")
    if not jnp.issubdtype(acts.dtype, jnp.floating):
        raise ValueError(f"acts must be floating point, got dtype {acts.dtype}")
    acts_NxD = acts.reshape(acts.shape[0], -1)
    return jnp.mean((acts_NxD != 0).astype(jnp.float32), axis=1)


def sparsity_summary(fractions):
    """Mean and standard deviation (ddof = 0) over examples, in percent: [N] -> (mean, std)."""
    fractions = np.asarray(fractions, np.float64)
    if fractions.ndim != 1 or fractions.size == 0:
        raise ValueError(f"fractions must be non-empty [N], got shape {fractions.shape}")
    return 100.0 * float(fractions.mean()), 100.0 * float(fractions.std())


def layer_sparsity(taps):
    """Table 6 for a dict of taps: ``{layer: [N, ...]}`` -> ``{layer: (mean %, std %)}``.

    For datasets that do not fit in memory, concatenate :func:`nonzero_fraction` over batches
    and call :func:`sparsity_summary` instead.
    """
    if not isinstance(taps, Mapping) or not taps:
        raise ValueError("taps must be a non-empty mapping {layer: activations}")
    return {layer: sparsity_summary(nonzero_fraction(a)) for layer, a in taps.items()}
