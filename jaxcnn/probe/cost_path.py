"""Cross-validated cost paths for the batched SVMs of ``jaxcnn.probe.svm`` (used by the probes).

Folds are index arrays ``(train_FxT, train_mask_FxT, held_FxH, held_mask_FxH)`` padded to equal
width (padding indexes row 0 with mask False and zero loss weight), so every fold, cost and
class runs in one jitted computation: a sequential ``lax.map`` over folds (a ``vmap`` runs every
fold's Newton and CG loops until the slowest fold stops, and was slower on a CPU) of a ``scan``
over the ascending costs, each cost warm-started from the previous solution.

In Gram form (``N ≤ 2(D + 1)``) one matrix ``G = X̃X̃ᵀ`` serves everything: each fold solves on
its sub-block ``G[train, train]`` and scores its held-out rows with ``G[held, train] @ a``; the
final fit on all rows reuses ``G`` and starts from the average of the fold solutions.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.probe import svm


def fold_indices(n, num_folds):
    """Contiguous K-fold split (``sklearn.model_selection.KFold(num_folds)``), padded.

    Returns ``(train_FxT, train_mask_FxT, held_FxH, held_mask_FxH)`` int32 / bool numpy arrays;
    padding slots index example 0 and are masked out.
    """
    if not 2 <= num_folds <= n:
        raise ValueError(f"need 2 <= num_folds <= n, got num_folds={num_folds}, n={n}")
    sizes = np.full(num_folds, n // num_folds) + (np.arange(num_folds) < n % num_folds)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    held = [np.arange(bounds[f], bounds[f + 1]) for f in range(num_folds)]
    train = [np.setdiff1d(np.arange(n), h) for h in held]

    def pad(rows):
        width = max(len(r) for r in rows)
        idx = np.zeros((len(rows), width), np.int32)
        mask = np.zeros((len(rows), width), bool)
        for f, r in enumerate(rows):
            idx[f, : len(r)], mask[f, : len(r)] = r, True
        return idx, mask

    return (*pad(train), *pad(held))


def holdout_indices(n_train, n_held):
    """A single split in the ``fold_indices`` format: rows ``[0, n_train)`` train, the rest held."""
    train = np.arange(n_train, dtype=np.int32)[None]
    held = np.arange(n_train, n_train + n_held, dtype=np.int32)[None]
    return train, np.ones_like(train, bool), held, np.ones_like(held, bool)


def _scan_costs(solve, init, costs_L):
    """Warm-started solves along the ascending cost grid; stacks the solutions ``[L, ...]``."""

    def step(v, cost):
        v = solve(v, cost)
        return v, v

    return jax.lax.scan(step, init, costs_L)[1]


@functools.partial(jax.jit, static_argnames="options")
def _cv_gram(gram_NxN, y_NxK, base_cost_NxK, costs_L, folds, *, options):
    """Gram-form fold fits along the cost grid -> ``(scores_FxLxHxK, coefficients_FxLxTxK)``."""
    train_FxT, tmask_FxT, held_FxH, _ = folds
    gram_FxTxT = jax.vmap(lambda i: gram_NxN[i][:, i])(train_FxT)
    y_FxTxK = jnp.take(y_NxK, train_FxT, axis=0)
    cost_FxTxK = jnp.take(base_cost_NxK, train_FxT, axis=0) * tmask_FxT[..., None]

    def path(gram, y, cost):
        solve = lambda a, c: svm.solve_gram(gram, y, c * cost, a, options=options)[0]
        return _scan_costs(solve, jnp.zeros_like(cost), costs_L)

    a_FxLxTxK = jax.lax.map(lambda a: path(*a), (gram_FxTxT, y_FxTxK, cost_FxTxK))
    cross_FxHxT = jax.vmap(lambda h, t: gram_NxN[h][:, t])(held_FxH, train_FxT)
    return jnp.einsum("fht,fltk->flhk", cross_FxHxT, a_FxLxTxK), a_FxLxTxK


@functools.partial(jax.jit, static_argnames="options")
def _cv_primal(x_NxD, y_NxK, base_cost_NxK, costs_L, folds, s, *, options):
    """Primal-form fold fits along the cost grid -> ``(scores_FxLxHxK, w_tilde_FxLxMxK)``."""
    train_FxT, tmask_FxT, held_FxH, _ = folds
    x_FxTxD = jnp.take(x_NxD, train_FxT, axis=0)
    y_FxTxK = jnp.take(y_NxK, train_FxT, axis=0)
    cost_FxTxK = jnp.take(base_cost_NxK, train_FxT, axis=0) * tmask_FxT[..., None]

    def path(x, y, cost):
        solve = lambda v, c: svm.solve_primal(
            x, y, c * cost, v, intercept_scaling=s, options=options
        )[0]
        init = jnp.zeros((x.shape[1] + 1, y.shape[1]), x.dtype)
        return _scan_costs(solve, init, costs_L)

    w_FxLxMxK = jax.lax.map(lambda a: path(*a), (x_FxTxD, y_FxTxK, cost_FxTxK))
    x_FxHxD = jnp.take(x_NxD, held_FxH, axis=0)
    scores = jnp.einsum("fhd,fldk->flhk", x_FxHxD, w_FxLxMxK[:, :, :-1])
    return scores + s * w_FxLxMxK[:, :, None, -1], w_FxLxMxK


@functools.partial(jax.jit, static_argnames="options")
def _fit_gram(gram_NxN, y_NxK, base_cost_NxK, cost_K, a0_NxK, *, options):
    """The coefficients ``a`` (compiled once per N and K, whatever the feature width)."""
    cost_NxK = base_cost_NxK * cost_K[None, :]
    return svm.solve_gram(gram_NxN, y_NxK, cost_NxK, a0_NxK, options=options)[0]


@functools.partial(jax.jit, static_argnames="options")
def _fit_primal(x_NxD, y_NxK, base_cost_NxK, cost_K, w0_MxK, s, *, options):
    cost_NxK = base_cost_NxK * cost_K[None, :]
    v, _, _ = svm.solve_primal(x_NxD, y_NxK, cost_NxK, w0_MxK, intercept_scaling=s, options=options)
    return v[:-1], s * v[-1]


@functools.partial(jax.jit, static_argnames="bounds")
def _gram(x_NxD, s, *, bounds):
    """``X̃X̃ᵀ = XXᵀ + s²`` from the blocks of a row partition, each off-diagonal block once.

    G is symmetric, so computing only the blocks on and above the diagonal saves a third of the
    flops with three blocks (the benchmark's largest single cost).
    """
    parts = [x_NxD[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    m = len(parts)
    upper = {(i, j): parts[i] @ parts[j].T for i in range(m) for j in range(i, m)}
    rows = [
        jnp.concatenate([upper[(i, j)] if i <= j else upper[(j, i)].T for j in range(m)], 1)
        for i in range(m)
    ]
    return jnp.concatenate(rows, 0) + s * s


# Primal problems narrower than this are padded to it with zero features: their weights stay
# exactly 0 (zero gradient from 0, zero rows of X̃ᵀ), and the narrow probes (sp-max of conv
# layers, 24-96 filters) share one compiled program instead of one per width.
MIN_PRIMAL_WIDTH = 128


class CostPathFitter:
    """Fold fits along the cost grid and the final fit, in Gram form when ``N ≤ 2(D + 1)``.

    The Gram matrix is computed once and shared by every fold (its sub-blocks), class and
    cost; each final fit is warm-started from the fold solutions at its cost.
    """

    def __init__(
        self, x_NxD, y_NxK, base_cost_NxK, *, costs, intercept_scaling, options, gram_blocks=3
    ):
        self.y, self.base_cost = y_NxK, base_cost_NxK
        self.costs, self.s, self.options = tuple(costs), intercept_scaling, options
        s = intercept_scaling
        n, self.dim = x_NxD.shape
        bounds = tuple(int(b) for b in np.linspace(0, n, gram_blocks + 1).round())
        self.gram = _gram(x_NxD, s, bounds=bounds) if n <= 2 * (self.dim + 1) else None
        if self.gram is None and self.dim < MIN_PRIMAL_WIDTH:
            x_NxD = np.pad(np.asarray(x_NxD), ((0, 0), (0, MIN_PRIMAL_WIDTH - self.dim)))
        self.x = jnp.asarray(x_NxD)
        self.folds = self.solutions = None

    def cv_scores(self, folds):
        """Held-out decision values ``[F, L, H, K]`` for every fold and cost."""
        costs = jnp.asarray(self.costs, self.x.dtype)
        self.folds = folds
        if self.gram is not None:
            scores, self.solutions = _cv_gram(
                self.gram, self.y, self.base_cost, costs, folds, options=self.options
            )
        else:
            scores, self.solutions = _cv_primal(
                self.x, self.y, self.base_cost, costs, folds, self.s, options=self.options
            )
        return scores

    def fit(self, choice_K):
        """Final fit on all rows with cost index ``choice_K[k]`` for problem k -> ``(w_DxK, b_K)``.

        Rows with zero ``base_cost`` (e.g. validation rows) take no part.
        """
        w, b = self._fit(choice_K)
        return (w, b) if w.shape[0] == self.dim else (np.asarray(w)[: self.dim], b)

    def _fit(self, choice_K):
        cost_K = np.asarray(self.costs, np.float32)[choice_K]
        n, k = self.y.shape
        warm = None
        if self.solutions is not None:  # average of the fold solutions at the chosen costs
            sol = np.take_along_axis(
                np.asarray(self.solutions), choice_K[None, None, None], axis=1
            )[:, 0]
            if self.gram is not None:
                warm = np.zeros((n, k), np.float32)
                train, tmask = self.folds[0], self.folds[1]
                np.add.at(warm, train, sol * tmask[..., None])
                warm /= max(len(train) - 1, 1)
            else:
                warm = sol.mean(axis=0)
        if self.gram is not None:
            warm = np.zeros((n, k), self.x.dtype) if warm is None else warm
            a = _fit_gram(self.gram, self.y, self.base_cost, cost_K, warm, options=self.options)
            # w̃ = X̃ᵀa, so b = s·(s·Σa); in numpy (a program per feature width would compile)
            a = np.asarray(a)
            return np.asarray(self.x).T @ a, self.s * self.s * a.sum(axis=0)
        warm = np.zeros((self.x.shape[1] + 1, k), self.x.dtype) if warm is None else warm
        return _fit_primal(
            self.x, self.y, self.base_cost, cost_K, warm, self.s, options=self.options
        )
