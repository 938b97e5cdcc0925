"""Feature ablations of docs/methods.md §5 (paper §5, thesis Fig. 5-1) as pure ``jnp`` functions.

Conv features are ``[N, H, W, F]`` (one p×p×F map per image, NHWC as the model's taps); fc
features are ``[N, D]`` and accept only ``binarize``, any spatial ablation raises ``ValueError``.
Every function is jittable and vmappable (``sp_shuffle`` takes its key as an argument).

| name          | function      | output                                              |
|---------------|---------------|-----------------------------------------------------|
| ``none``      | identity      | same shape                                          |
| ``binarize``  | ``binarize``  | same shape, 1 where x > 0 else 0                    |
| ``sp-shuffle``| ``sp_shuffle``| same shape, positions permuted per image            |
| ``sp-max``    | ``sp_max``    | ``[N, F]``, max over the H·W positions              |
| ``sp-max-bin``| ``sp_max_bin``| ``[N, F]``, binarize(sp-max)                        |
| ``max-loc-bin``| ``max_loc_bin``| same shape, 1 at each map's arg-max (draft paper) |
"""

import jax
import jax.numpy as jnp
import numpy as np

ABLATIONS = ("none", "binarize", "sp-shuffle", "sp-max", "sp-max-bin", "max-loc-bin")
# The ablations of the paper's Table 7 / thesis Table 5.1 (max-loc-bin is the draft's only).
TABLE7_ABLATIONS = ABLATIONS[:5]


def _check_conv(x, name):
    if x.ndim != 4:
        raise ValueError(
            f"{name} needs conv features [N, H, W, F], got shape {x.shape}; "
            "fc features [N, D] accept only 'binarize'"
        )


def binarize(x):
    """``1 if x > 0 else 0`` elementwise, in ``x``'s dtype; any shape (conv or fc)."""
    x = jnp.asarray(x)
    return (x > 0).astype(x.dtype)


def sp_shuffle(x, key):
    """Permute the H·W spatial positions of each image independently (docs/methods.md §5).

    Image ``n`` draws its own permutation with ``jax.random.split(key, N)[n]`` and applies
    it to all F channels alike: the column of responses at a position moves as a whole, so the
    per-image multiset of F-vectors is kept and only their arrangement is destroyed.

    Args:
      x: ``[N, H, W, F]``.
      key: a PRNG key.

    Returns:
      ``[N, H, W, F]``, ``out[n].reshape(H·W, F) = x[n].reshape(H·W, F)[perm_n]``.
    """
    x = jnp.asarray(x)
    _check_conv(x, "sp_shuffle")
    n, h, w, f = x.shape
    keys_N = jax.random.split(key, n)

    def one(k, x_PxF):
        return x_PxF[jax.random.permutation(k, h * w)]

    return jax.vmap(one)(keys_N, x.reshape(n, h * w, f)).reshape(n, h, w, f)


def sp_max(x):
    """Max over the spatial positions: ``[N, H, W, F] -> [N, F]``."""
    x = jnp.asarray(x)
    _check_conv(x, "sp_max")
    return jnp.max(x, axis=(1, 2))


def sp_max_bin(x):
    """``binarize(sp_max(x))``: ``[N, F]``, 1 where the map has any positive response."""
    return binarize(sp_max(x))


def max_loc_bin(x):
    """Keep only each map's arg-max position, set to 1 (draft paper's max-loc-bin).

    Tie rule: the first maximal position in row-major (h, w) order wins (``jnp.argmax``).
    A map with no positive response (all ≤ 0, e.g. a silent ReLU map) becomes all zeros
    rather than marking an arbitrary location.

    Returns:
      ``[N, H, W, F]`` in ``x``'s dtype with at most one 1 per (image, channel).
    """
    x = jnp.asarray(x)
    _check_conv(x, "max_loc_bin")
    n, h, w, f = x.shape
    x_NxPxF = x.reshape(n, h * w, f)
    arg_NxF = jnp.argmax(x_NxPxF, axis=1)
    onehot_NxPxF = jnp.arange(h * w)[None, :, None] == arg_NxF[:, None, :]
    alive_NxF = jnp.max(x_NxPxF, axis=1) > 0
    return (onehot_NxPxF & alive_NxF[:, None, :]).astype(x.dtype).reshape(n, h, w, f)


def apply_ablation(name, x, *, key=None):
    """Apply the ablation called ``name`` (one of ``ABLATIONS``) to features ``x``.

    ``key`` is required by ``sp-shuffle`` only. fc features ``[N, D]`` accept ``none`` and
    ``binarize``; the result keeps the leading N and can be flattened with
    ``x.reshape(len(x), -1)`` for a probe.
    """
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; choose from {ABLATIONS}")
    if name == "none":
        return jnp.asarray(x)
    if name == "binarize":
        return binarize(x)
    if name == "sp-shuffle":
        if key is None:
            raise ValueError("the sp-shuffle ablation needs a PRNG key (key=...)")
        return sp_shuffle(x, key)
    return {"sp-max": sp_max, "sp-max-bin": sp_max_bin, "max-loc-bin": max_loc_bin}[name](x)


def ablated(x: np.ndarray, ablation: str, *, seed: int = 0) -> np.ndarray:
    """Flattened ``[N, D]`` float32 features of one tap after an ablation (docs/methods.md §5)."""
    key = jax.random.key(seed) if ablation == "sp-shuffle" else None
    out = apply_ablation(ablation, np.asarray(x, np.float32), key=key)
    return np.asarray(out, np.float32).reshape(x.shape[0], -1)


def ablation_grid(layers, names) -> list[tuple[str, str]]:
    """(layer, ablation) pairs where the ablation applies: fc layers take binarize only."""
    unknown = [a for a in names if a not in ABLATIONS]
    if unknown:
        raise ValueError(f"unknown ablations {unknown}; choose from {ABLATIONS}")
    return [
        (layer, a)
        for layer in layers
        for a in names
        if layer.startswith("conv") or a in ("none", "binarize")
    ]
