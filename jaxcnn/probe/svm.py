"""Batched L2-regularised squared-hinge linear SVMs, solved by Newton's method in JAX.

The objective is scikit-learn's ``LinearSVC(loss="squared_hinge", penalty="l2")`` (liblinear
solvers 1 and 2), one column per problem::

    J(w̃) = ½ ‖w̃‖² + Σ_i c_i · max(0, 1 − y_i x̃_i·w̃)²,      x̃_i = [x_i, s],  w̃ = [w, b/s]

with ``s = intercept_scaling`` (the bias is an extra constant feature ``s``, regularised like any
weight, as in liblinear), ``c_i = C · class_weight[y_i] · sample_weight_i`` and the intercept
``b = s · w̃_last``. Weight 0 removes an example, so folds and excluded items keep one shape.

Solver (Keerthi & DeCoste 2005; Chapelle 2007, "Training a support vector machine in the
primal"): with the active set ``A = {i : y_i f_i < 1, c_i > 0}`` fixed, J is a ridge regression
whose minimiser, the *Newton point*, solves ``(I + X̃ᵀ D X̃) w̃ = X̃ᵀ D y`` with
``D = diag(2 c_i [i ∈ A])``. Conjugate gradients solve it for all K problems at once (the K
columns of one matrix, so every step is one matrix product), warm-started at the current point
and stopped at a relative residual ``cg_rtol`` (inexact Newton); an exact line search on the
piecewise-quadratic J then moves towards that point. A problem stops when
``‖∇J(w̃)‖ ≤ gtol · max(1, ‖w̃‖)`` (J is 1-strongly convex, so ``‖w̃ − w̃*‖ ≤ ‖∇J‖``) or when
the Newton point's decision values differ from the current ones by at most
``ftol · max(1, max|f|)`` (the iterate is a fixed point of the active-set iteration). The second
rule matters for large C: the gradient ``w̃ − X̃ᵀD(y − f)`` amplifies float32 rounding of the
margins by ``2C`` and stalls far above ``gtol`` while the decision values have converged.
(liblinear's gradient relative to ``‖∇J(0)‖`` grows with C and is far too loose there.)

Two representations of the same iteration:

* **primal** (``D + 1`` unknowns): products with ``X̃`` and ``X̃ᵀ``; used when ``N > 2(D + 1)``.
* **Gram** (``N`` unknowns, ``w̃ = X̃ᵀa``): only ``G = X̃X̃ᵀ`` is needed; every vector ``a``
  travels with ``Ga`` so that one product ``G·(D·Gp)`` per CG step suffices (``2N²`` flops per
  problem against ``4N(D + 1)`` in the primal). The CG iterates are exactly those of primal CG,
  so truncated CG still yields descent directions. (A CG in the "dual" variables
  ``u = D^-½ a`` would need one product too, but its truncated iterates are not descent
  directions for J, and Newton stalls.)

No preconditioner: block-Jacobi on the top principal subspace of ``G`` (the mean direction of
non-negative features) was tried and made large-C solves several times *slower*, because the
Hessian couples that subspace strongly to the rest.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class SolverOptions(NamedTuple):
    """Stopping rules (static): ``gtol`` (gradient), ``ftol`` (Newton-point margins), caps."""

    gtol: float = 1e-5
    ftol: float = 1e-4
    max_newton: int = 100
    max_cg: int = 500
    cg_rtol: float = 0.05


DEFAULT_OPTIONS = SolverOptions()


def _bdot(a, b):
    """Column-wise dot products of ``[n, K]`` arrays -> ``[1, K]`` (per-problem scalars)."""
    return jnp.sum(a * b, axis=0, keepdims=True)


def _safe_div(a, b):
    return jnp.where(b > 0, a / jnp.where(b > 0, b, 1.0), 0.0)


def _cg(matvec, rhs, x0, *, rtol, max_iter, stop2_K):
    """Primal CG on K SPD systems (columns). ``matvec(p) -> (A p, X̃ p)``.

    Returns ``(x, X̃x, iterations, ‖r0‖²)``; ``‖r0‖ = ‖∇J‖`` at the warm start.
    """
    ax0, f0 = matvec(x0)
    r = rhs - ax0
    rr0_K = _bdot(r, r)
    # Inexact Newton: stop at rtol·‖r0‖; columns already converged (‖r0‖² ≤ stop2) skip CG.
    stop_K = jnp.where(rr0_K > stop2_K, rtol**2 * rr0_K, jnp.inf)

    def cond(state):
        return (state[-1] < max_iter) & jnp.any(state[-2] > stop_K)

    def body(state):
        x, f, r, p, rr_K, it = state
        ap, fp = matvec(p)
        pap_K = _bdot(p, ap)
        a_K = jnp.where(rr_K > stop_K, _safe_div(rr_K, pap_K), 0.0)
        x, f, r = x + a_K * p, f + a_K * fp, r - a_K * ap
        rr_new_K = _bdot(r, r)
        p = r + _safe_div(rr_new_K, rr_K) * p
        return x, f, r, p, jnp.where(rr_K > stop_K, rr_new_K, 0.0), it + 1

    x, f, *_, it = jax.lax.while_loop(cond, body, (x0, f0, r, r, rr0_K, jnp.int32(0)))
    return x, f, it, rr0_K


def _cg_gram(gram_NxN, d, rhs, x0, gx0, *, rtol, max_iter, stop2_K):
    """CG on ``(I + X̃ᵀDX̃) w = X̃ᵀ rhs`` with vectors as coefficients ``X̃ᵀa``.

    ``⟨X̃ᵀa, X̃ᵀb⟩ = aᵀGb``, ``(I + X̃ᵀDX̃)X̃ᵀa = X̃ᵀ(a + D·Ga)``; ``Gr`` and ``Gp`` follow
    by recurrences, so each step costs one product ``G·(D·Gp)``.
    Returns ``(a, Ga, iterations, ‖r0‖²)`` with ``‖r0‖ = ‖∇J‖`` at the warm start.
    """
    r = rhs - x0 - d * gx0
    gr = gram_NxN @ r
    # ‖r‖² = rᵀGr ≥ 0 in exact arithmetic; rounding can make it a hair negative.
    rr0_K = jnp.maximum(_bdot(r, gr), 0.0)
    stop_K = jnp.where(rr0_K > stop2_K, rtol**2 * rr0_K, jnp.inf)

    def cond(state):
        return (state[-1] < max_iter) & jnp.any(state[-2] > stop_K)

    def body(state):
        x, gx, r, gr, p, gp, rr_K, it = state
        live_K = rr_K > stop_K
        dgp = d * gp
        gdgp = gram_NxN @ dgp
        a_K = jnp.where(live_K, _safe_div(rr_K, _bdot(p, gp) + _bdot(gp, dgp)), 0.0)
        x, gx = x + a_K * p, gx + a_K * gp
        r, gr = r - a_K * (p + dgp), gr - a_K * (gp + gdgp)
        rr_new_K = jnp.where(live_K, jnp.maximum(_bdot(r, gr), 0.0), 0.0)
        p, gp = r + _safe_div(rr_new_K, rr_K) * p, gr + _safe_div(rr_new_K, rr_K) * gp
        return x, gx, r, gr, p, gp, rr_new_K, it + 1

    state = (x0, gx0, r, gr, r, gr, rr0_K, jnp.int32(0))
    x, gx, *_, it = jax.lax.while_loop(cond, body, state)
    return x, gx, it, rr0_K


def _line_search(y, c, f, df, wdw_K, dwdw_K, *, iters=30):
    """Exact minimiser over t ∈ [0, 2] of Φ(t) = ½‖w + tδ‖² + Σ c·max(0, 1 − y(f + t·df))².

    ``wdw = ⟨w, δ⟩``, ``dwdw = ‖δ‖²``. Φ' is increasing and piecewise linear; a safeguarded
    Newton iteration on Φ' inside a shrinking bracket converges to its root.
    """

    def body(_, state):
        lo, hi, t = state
        xi = jnp.maximum(0.0, 1.0 - y * (f + t * df))
        g = wdw_K + t * dwdw_K - 2.0 * _bdot(c * y * df, xi)
        h = dwdw_K + 2.0 * _bdot(c * df * df, (xi > 0).astype(f.dtype))
        lo, hi = jnp.where(g < 0, t, lo), jnp.where(g >= 0, t, hi)
        t_newton = t - g / jnp.maximum(h, 1e-30)
        inside = (t_newton > lo) & (t_newton < hi)
        return lo, hi, jnp.where(inside, t_newton, 0.5 * (lo + hi))

    shape = (1, f.shape[1])
    init = (jnp.zeros(shape, f.dtype), jnp.full(shape, 2.0, f.dtype), jnp.ones(shape, f.dtype))
    return jax.lax.fori_loop(0, iters, body, init)[2]


class SolveInfo(NamedTuple):
    """Newton iterations and CG steps run (shared by the K problems) and per-problem status."""

    newton_iterations: jax.Array
    cg_iterations: jax.Array
    converged_K: jax.Array


def _newton(newton_point, wnorm, margins, y, c, v0, opts):
    """Shared Newton loop; ``v`` is ``w̃`` (primal) or the coefficients ``a`` (Gram).

    ``margins(v)`` recomputes the decision values exactly at every iteration, so rounding
    accumulated by the CG recurrences never reaches the gradient that decides convergence.
    """

    def cond(state):
        return (state[3] < opts.max_newton) & jnp.any(~state[2])

    def body(state):
        v, _, _, it, cg_total = state
        f = margins(v)
        d = 2.0 * c * (y * f < 1.0)
        stop2_K = opts.gtol**2 * jnp.maximum(1.0, wnorm(v, f, v, f)[0])
        v_n, f_n, cg_it, gsq_K = newton_point(d, v, f, stop2_K)
        dv, df = v_n - v, f_n - f
        fscale_K = jnp.maximum(1.0, jnp.max(jnp.abs(f), axis=0, keepdims=True))
        df_max_K = jnp.max(jnp.abs(df), axis=0, keepdims=True)
        conv_K = (gsq_K <= stop2_K) | (df_max_K <= opts.ftol * fscale_K)
        t_K = jnp.where(conv_K, 0.0, _line_search(y, c, f, df, *wnorm(v, f, dv, df)))
        return v + t_K * dv, f + t_K * df, conv_K, it + 1, cg_total + cg_it

    init = (v0, jnp.zeros_like(y), jnp.zeros((1, y.shape[1]), bool), jnp.int32(0), jnp.int32(0))
    v, f, conv_K, it, cg_total = jax.lax.while_loop(cond, body, init)
    return v, f, SolveInfo(it, cg_total, conv_K[0])


def solve_gram(gram_NxN, y_NxK, cost_NxK, a0_NxK=None, *, options=DEFAULT_OPTIONS):
    """Gram-form solve, ``G = X̃X̃ᵀ = XXᵀ + s²`` (augmented features).

    Args:
      gram_NxN: float ``[N, N]``.
      y_NxK: float ``[N, K]`` in {−1, +1}.
      cost_NxK: float ``[N, K]`` ≥ 0, the per-example loss weights ``c_i`` (0 = excluded).
      a0_NxK: optional warm start (coefficients).

    Returns:
      ``(a_NxK, decision_NxK, info)``: ``w̃ = X̃ᵀa``, decision values ``G a`` on the same N
      examples, and a ``SolveInfo``.
    """
    if a0_NxK is None:
        a0_NxK = jnp.zeros_like(cost_NxK)

    def newton_point(d, a, f, stop2_K):
        opts = dict(rtol=options.cg_rtol, max_iter=options.max_cg, stop2_K=stop2_K)
        return _cg_gram(gram_NxN, d, d * y_NxK, a, f, **opts)

    # ⟨w, δw⟩ = δaᵀ G a = δaᵀ f and ‖δw‖² = δaᵀ G δa = δaᵀ δf.
    wnorm = lambda a, f, da, df: (_bdot(da, f), _bdot(da, df))
    margins = lambda a: gram_NxN @ a
    a, _, info = _newton(newton_point, wnorm, margins, y_NxK, cost_NxK, a0_NxK, options)
    return a, margins(a), info


def solve_primal(
    x_NxD,
    y_NxK,
    cost_NxK,
    w0_MxK=None,
    *,
    intercept_scaling,
    feature_mask_DxK=None,
    options=DEFAULT_OPTIONS,
):
    """Primal-form solve; ``w̃`` is ``[D + 1, K]`` with the scaled-bias weight last.

    ``feature_mask_DxK`` (optional, 0 / 1): problem k sees only the features with mask 1, i.e.
    it is the SVM on ``x * mask[:, k]`` (a feature it does not see has weight 0, its only
    gradient being the L2 penalty), with every problem sharing the one ``x``.

    Returns ``(w_tilde_MxK, decision_NxK, info)``.
    """
    s = intercept_scaling
    dim = x_NxD.shape[1]
    if w0_MxK is None:
        w0_MxK = jnp.zeros((dim + 1, y_NxK.shape[1]), x_NxD.dtype)
    mask = 1.0 if feature_mask_DxK is None else feature_mask_DxK.astype(x_NxD.dtype)
    # Xᵀ as its own row-major copy: XLA:CPU's products with a transposed operand inside the
    # loops ran about 3x slower (the barrier keeps XLA from folding the transpose back in).
    xt_DxN = jax.lax.optimization_barrier(x_NxD.T)
    fwd = lambda v: x_NxD @ (mask * v[:dim]) + s * v[dim:]
    bwd = lambda q: jnp.concatenate([mask * (xt_DxN @ q), s * jnp.sum(q, axis=0, keepdims=True)], 0)

    def newton_point(d, v, f, stop2_K):
        del f

        def matvec(p):
            fp = fwd(p)
            return p + bwd(d * fp), fp

        opts = dict(rtol=options.cg_rtol, max_iter=options.max_cg, stop2_K=stop2_K)
        return _cg(matvec, bwd(d * y_NxK), v, **opts)

    wnorm = lambda v, f, dv, df: (_bdot(v, dv), _bdot(dv, dv))
    v, _, info = _newton(newton_point, wnorm, fwd, y_NxK, cost_NxK, w0_MxK, options)
    return v, fwd(v), info


def _is_concrete(a):
    return not isinstance(a, jax.core.Tracer)


def fit_linear_svm(
    x,
    y,
    *,
    C,
    positive_weight=1.0,
    sample_weight=None,
    intercept_scaling=1.0,
    feature_mask=None,
    options=DEFAULT_OPTIONS,
):
    """Fit K one-vs-rest squared-hinge linear SVMs at once, same objective as ``LinearSVC``.

    Equivalent to ``LinearSVC(C=C, loss="squared_hinge", penalty="l2",
    intercept_scaling=intercept_scaling, class_weight={1: positive_weight, -1: 1})`` fitted
    with ``sample_weight`` (module docstring for the objective and solver).

    Args:
      x: float ``[N, D]``.
      y: ``[N]`` or ``[N, K]`` with values in {−1, +1} (checked when not traced).
      C: scalar or ``[K]``: one cost per problem.
      positive_weight: loss weight of the positive examples (``class_weight[1]``).
      sample_weight: optional ``[N]`` or ``[N, K]`` ≥ 0 per-example loss weights; 0 excludes.
      intercept_scaling: the constant feature ``s`` standing for the (regularised) bias.
      feature_mask: optional ``[D, K]`` of 0 / 1: problem k is the SVM on the features with
        mask 1 only (the others get weight 0); all K problems share ``x`` (primal form).
      options: ``SolverOptions`` (static).

    Returns:
      ``(w, b)``: ``w`` ``[D]`` / ``[D, K]`` and ``b`` scalar / ``[K]``; decision values are
      ``x @ w + b``. Jittable (``options`` static); the Gram form is used when ``N ≤ 2(D+1)``
      and no ``feature_mask`` is given.
    """
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    if x.ndim != 2 or not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"x must be a float [N, D] array, got {x.dtype} {x.shape}")
    single = y.ndim == 1
    y_NxK = y[:, None] if single else y
    n, dim = x.shape
    if y_NxK.ndim != 2 or y_NxK.shape[0] != n:
        raise ValueError(f"y must be [N] or [N, K] with N = {n}, got shape {y.shape}")
    if _is_concrete(y_NxK) and not bool(jnp.all(jnp.abs(y_NxK) == 1)):
        raise ValueError("y must contain only -1 and +1")
    k = y_NxK.shape[1]
    if jnp.shape(C) not in ((), (k,)):
        raise ValueError(f"C must be a scalar or have shape [{k}], got shape {jnp.shape(C)}")
    c_1xK = jnp.broadcast_to(jnp.asarray(C, x.dtype), (k,))[None, :]
    y_NxK = y_NxK.astype(x.dtype)
    cost_NxK = c_1xK * jnp.where(y_NxK > 0, jnp.asarray(positive_weight, x.dtype), 1.0)
    if sample_weight is not None:
        sw = jnp.asarray(sample_weight, x.dtype)
        sw = sw[:, None] if sw.ndim == 1 else sw
        if sw.shape not in ((n, 1), (n, k)):
            raise ValueError(f"sample_weight must be [N] or [N, K], got {jnp.shape(sample_weight)}")
        cost_NxK = cost_NxK * sw
    s = jnp.asarray(intercept_scaling, x.dtype)
    if feature_mask is not None and jnp.shape(feature_mask) != (dim, k):
        raise ValueError(
            f"feature_mask must be [D, K] = [{dim}, {k}], got {jnp.shape(feature_mask)}"
        )
    if n <= 2 * (dim + 1) and feature_mask is None:
        gram = x @ x.T + s * s
        a, _, _ = solve_gram(gram, y_NxK, cost_NxK, options=options)
        w, b = x.T @ a, s * s * jnp.sum(a, axis=0)  # w̃ = X̃ᵀa, so b = s·(s·Σa)
    else:
        v, _, _ = solve_primal(
            x, y_NxK, cost_NxK, intercept_scaling=s, feature_mask_DxK=feature_mask, options=options
        )
        w, b = v[:dim], s * v[dim]
        if feature_mask is not None:  # exactly 0 where masked (the iterates never move them)
            w = w * feature_mask
    return (w[:, 0], b[0]) if single else (w, b)
