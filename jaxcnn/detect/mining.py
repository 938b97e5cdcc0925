"""Per-class detector SVMs with hard-negative mining, as R-CNN's ``rcnn_train.m``.

Setting (docs/methods.md §Detection; every constant from R-CNN's code):

- Features are scaled by one factor so that their mean L2 norm is 20 (`feature_scale`,
  measured on a sample of training boxes; the same factor at test time).
- Positives of class c: its ground-truth boxes, difficult ones included. Negatives: boxes
  (proposals and other classes' ground-truth boxes) whose IoU with every ground-truth box of
  class c is < 0.3.
- One pass over the training images. The first image puts all its negatives into every class's
  cache and every class is trained. Afterwards a negative enters class c's cache when its score
  is > -1.0001 and it is not cached yet; class c is retrained when more than 2,000 negatives
  entered since its last training, and at the last image; after each training the cached
  negatives scoring < -1.2 are evicted.
- The SVM: C = 0.001, positive loss weight 2, bias as a constant feature of value 10
  (liblinear's ``-B 10``, the bias regularised with the weights).

R-CNN solves liblinear's hinge loss (``-s 3``). Here every due class is solved at once by
`jaxcnn.probe.svm.solve_primal` (squared hinge, batched Newton-CG, warm-started from the current
detector): one design matrix holds the positives and the union of all classes' cached
negatives, and per-class loss weights select each class's examples (weight 0 elsewhere).
`liblinear_solver` solves R-CNN's own objective with scikit-learn's ``LinearSVC(loss="hinge")``
one class at a time, for the comparison in ``benchmarks/detection.py``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.probe import svm


def _f(default, help_text, **meta):
    return dataclasses.field(default=default, metadata={"help": help_text, **meta})


@dataclasses.dataclass(frozen=True)
class MiningConfig:
    """R-CNN's SVM training with hard-negative mining (module docstring); flags are generated
    from it (experiments/detect.py)."""

    C: float = _f(0.001, "SVM C (R-CNN 0.001).", flag="svm_C")
    positive_weight: float = _f(
        2.0, "SVM loss weight of the positives.", flag="svm_positive_weight"
    )
    bias_multiplier: float = _f(
        10.0,
        "The bias as a constant feature of this value (liblinear -B).",
        flag="svm_bias_multiplier",
    )
    neg_overlap: float = _f(0.3, "Negatives: boxes whose IoU with every GT box is below this.")
    hard_threshold: float = _f(-1.0001, "Hard negatives: cached when scoring above this.")
    evict_threshold: float = _f(-1.2, "Easy negatives: evicted from the cache below this.")
    retrain_limit: int = _f(
        2000,
        "Retrain a class when more negatives than this entered its cache since its last training.",
    )


def feature_scale(sample_NxD: np.ndarray, *, target_norm: float = 20.0) -> float:
    """R-CNN's ``rcnn_feature_stats``: the factor making the sample's mean L2 norm `target`."""
    norms = np.linalg.norm(np.asarray(sample_NxD, np.float64), axis=1)
    mean = float(norms.mean()) if norms.size else 0.0
    if not mean > 0:
        raise ValueError("features of the sample are all zero: cannot scale to a mean norm")
    return target_norm / mean


def select_hard(z_BxK, overlap_BxK, cached_BxK, *, first_time: bool, cfg: MiningConfig):
    """bool [B, K]: which boxes enter each class's cache. Negatives only (overlap < 0.3); on
    the first image all of them, later those scoring > -1.0001 that are not cached yet."""
    negative = overlap_BxK < cfg.neg_overlap
    if first_time:
        return negative & ~cached_BxK
    return negative & (z_BxK > cfg.hard_threshold) & ~cached_BxK


def easy_negatives(z_MxK, member_MxK, due_K, *, cfg: MiningConfig):
    """bool [M, K]: cached negatives of the retrained classes that score < -1.2 (evicted)."""
    return member_MxK & due_K[None, :] & (z_MxK < cfg.evict_threshold)


@dataclasses.dataclass
class Cache:
    """Every class's negative cache over one shared row store (a row per distinct box)."""

    features: np.ndarray  # float32 [M, D]
    keys: np.ndarray  # int64 [M, 2]: (image, box)
    member: np.ndarray  # bool [M, K]
    num_added: np.ndarray  # int64 [K]: entered since the class's last training

    @classmethod
    def empty(cls, dim: int, num_classes: int) -> Cache:
        return cls(
            np.zeros((0, dim), np.float32),
            np.zeros((0, 2), np.int64),
            np.zeros((0, num_classes), bool),
            np.zeros(num_classes, np.int64),
        )

    def add(self, image: int, feats_BxD: np.ndarray, enter_BxK: np.ndarray) -> None:
        rows = np.nonzero(enter_BxK.any(axis=1))[0]
        if rows.size == 0:
            return
        self.features = np.concatenate([self.features, feats_BxD[rows].astype(np.float32)])
        keys = np.stack([np.full(rows.size, image), rows], axis=1)
        self.keys = np.concatenate([self.keys, keys])
        self.member = np.concatenate([self.member, enter_BxK[rows]])
        self.num_added += enter_BxK.sum(axis=0)

    def cached_rows_of(self, image: int, num_boxes: int) -> np.ndarray:
        """bool [B, K]: which of the image's boxes each class has cached."""
        out = np.zeros((num_boxes, self.member.shape[1]), bool)
        at = self.keys[:, 0] == image
        out[self.keys[at, 1]] = self.member[at]
        return out

    def compact(self) -> None:
        keep = self.member.any(axis=1)
        self.features, self.keys, self.member = (
            self.features[keep],
            self.keys[keep],
            self.member[keep],
        )


def _bucket(n: int) -> int:
    """Padded row count, 2^k or 1.5 * 2^k (>= 64): few distinct shapes, so few compilations
    of the solver as the caches grow and shrink, at most 1.5x padding."""
    p = 1 << max(6, (max(n, 1) - 1).bit_length())  # smallest power of two >= n
    return p * 3 // 4 if n <= p * 3 // 4 and p >= 128 else p


def _design(pos_x, pos_y, cache: Cache, classes, num_cols: int, cfg: MiningConfig):
    """Padded X [N, D], y [N, num_cols] and loss weights for the columns `classes` (padding
    columns weigh nothing): only the rows some of these classes use (their positives and the
    union of their caches), so a single due class costs its own examples, not every cache."""
    classes = np.asarray(classes, np.int64)
    pos = np.isin(pos_y, classes)
    neg = cache.member[:, classes].any(axis=1)
    x = np.concatenate([pos_x[pos], cache.features[neg]]).astype(np.float32)
    col = np.full(num_cols, -1, np.int64)
    col[: len(classes)] = classes
    is_pos = pos_y[pos][:, None] == col[None, :]
    member = np.concatenate([cache.member[neg], np.zeros((int(neg.sum()), 1), bool)], axis=1)
    in_cache = member[:, col]  # column -1 picks the all-false padding column
    y = np.concatenate([np.where(is_pos, 1.0, -1.0), -np.ones(in_cache.shape)])
    cost = np.concatenate([is_pos * cfg.C * cfg.positive_weight, in_cache * cfg.C])
    n = _bucket(len(x))
    pad = lambda a: np.concatenate([a, np.zeros((n - len(a), *a.shape[1:]), a.dtype)])
    return pad(x), pad(y).astype(np.float32), pad(cost).astype(np.float32)


def _num_cols(n: int, k: int) -> int:
    """Columns solved at once: always K. A matrix product with K columns costs little more
    than with one (reading X dominates), and one column count means few compiled shapes."""
    del n
    return k


# R-CNN's liblinear runs its dual solver at its default tolerance (eps 0.1); Newton-CG on the
# squared hinge is stopped correspondingly early (`jaxcnn.probe.svm.SolverOptions`).
MINING_OPTIONS = svm.SolverOptions(gtol=1e-3, ftol=1e-3, max_newton=30, max_cg=200, cg_rtol=0.1)


@functools.cache
def _jitted_solve(bias_multiplier: float, options: svm.SolverOptions):
    """One jitted solver per setting, shared by every `jax_solver` (and so by every detector:
    each cache size compiles once per process, not once per detector)."""
    s = bias_multiplier

    @jax.jit
    def solve(x, y, cost, w0, b0):
        v0 = jnp.concatenate([w0, (b0 / s)[None, :]], axis=0)
        v, _, _ = svm.solve_primal(x, y, cost, v0, intercept_scaling=s, options=options)
        return v[:-1], s * v[-1]

    return solve


def jax_solver(cfg: MiningConfig, options: svm.SolverOptions = MINING_OPTIONS):
    """``solve(x, y, cost, w_DxK, b_K) -> (w, b)``: all columns at once, squared hinge."""
    solve = _jitted_solve(float(cfg.bias_multiplier), options)
    return lambda x, y, cost, w, b: tuple(np.asarray(a) for a in solve(x, y, cost, w, b))


def liblinear_solver(cfg: MiningConfig, *, tol: float = 1e-4, max_iter: int = 10_000):
    """R-CNN's objective (hinge, ``-s 3``) with scikit-learn's LinearSVC, one class at a time
    (a class without both positive and negative examples keeps its detector)."""
    from sklearn.svm import LinearSVC  # optional comparison path

    def solve(x, y, cost, w, b):
        w, b = w.copy(), b.copy()
        for c in range(y.shape[1]):
            rows = cost[:, c] > 0
            if len(np.unique(y[rows, c])) < 2:  # liblinear needs both labels
                continue
            clf = LinearSVC(
                loss="hinge",
                C=cfg.C,
                class_weight={1: cfg.positive_weight, -1: 1.0},
                intercept_scaling=cfg.bias_multiplier,
                dual=True,
                tol=tol,
                max_iter=max_iter,
            )
            clf.fit(x[rows], y[rows, c])
            w[:, c], b[c] = clf.coef_[0], clf.intercept_[0]
        return w, b

    return solve


@dataclasses.dataclass
class Detectors:
    """Linear detectors on scaled features: score = (scale * x) @ w + b."""

    w: np.ndarray  # float32 [D, K]
    b: np.ndarray  # float32 [K]
    scale: float
    history: list = dataclasses.field(default_factory=list)

    def scores(self, feats_NxD: np.ndarray) -> np.ndarray:
        return (self.scale * np.asarray(feats_NxD, np.float32)) @ self.w + self.b


def train_detectors(
    features_of: Callable[[int], np.ndarray],
    entries: Sequence,
    *,
    scale: float,
    cfg: MiningConfig = MiningConfig(),
    solve=None,
    progress=None,
) -> Detectors:
    """Mine hard negatives and train every class's detector (module docstring).

    Args:
      features_of: ``i -> float [K_i, D]`` unscaled features of entry i's boxes.
      entries: `jaxcnn.detect.roidb.Entry` per training image (its ``overlap``, ``is_gt``,
        ``gt_label``).
      scale: `feature_scale` of the training features.
      solve: a solver from `jax_solver` (default) or `liblinear_solver`.
      progress: optional callable ``(image, num_images, cache_sizes_K)``.
    """
    solve = jax_solver(cfg) if solve is None else solve
    pos_x, pos_y = [], []
    for i, e in enumerate(entries):  # positives: every ground-truth box, difficult included
        if e.is_gt.any():
            pos_x.append(scale * np.asarray(features_of(i), np.float32)[e.is_gt])
            pos_y.append(e.gt_label[e.is_gt])
    k = entries[0].overlap.shape[1]
    dim = pos_x[0].shape[1] if pos_x else np.asarray(features_of(0)).shape[1]
    pos_x = np.concatenate(pos_x) if pos_x else np.zeros((0, dim), np.float32)
    pos_y = np.concatenate(pos_y) if pos_y else np.zeros(0, np.int64)
    det = Detectors(np.zeros((dim, k), np.float32), np.zeros(k, np.float32), scale)
    cache = Cache.empty(dim, k)
    for i, e in enumerate(entries):
        feats = scale * np.asarray(features_of(i), np.float32)
        z = feats @ det.w + det.b
        cached = cache.cached_rows_of(i, len(feats))
        enter = select_hard(z, e.overlap, cached, first_time=i == 0, cfg=cfg)
        cache.add(i, feats, enter)
        last = i == len(entries) - 1
        due = (i == 0) | (cache.num_added > cfg.retrain_limit) | last
        due &= cache.member.any(axis=0)
        if due.any():
            _retrain(det, cache, pos_x, pos_y, due, solve, cfg, image=i)
        if progress is not None:
            progress(i, len(entries), cache.member.sum(axis=0))
    return det


def _retrain(det, cache, pos_x, pos_y, due, solve, cfg, *, image):
    classes = np.nonzero(due)[0]
    cols = _num_cols(len(classes), len(due))
    x, y, cost = _design(pos_x, pos_y, cache, classes, cols, cfg)
    w0, b0 = np.zeros((det.w.shape[0], cols), np.float32), np.zeros(cols, np.float32)
    w0[:, : len(classes)], b0[: len(classes)] = det.w[:, classes], det.b[classes]
    w, b = solve(x, y, cost, w0, b0)
    det.w[:, classes], det.b[classes] = w[:, : len(classes)], b[: len(classes)]
    cache.num_added[due] = 0
    z_pos = pos_x @ det.w + det.b
    z_neg = cache.features @ det.w + det.b
    for c in np.nonzero(due)[0]:
        hinge_pos = np.maximum(0, 1 - z_pos[pos_y == c, c]).sum()
        hinge_neg = np.maximum(0, 1 + z_neg[cache.member[:, c], c]).sum()
        det.history.append(
            {
                "image": image,
                "class": int(c),
                "negatives": int(cache.member[:, c].sum()),
                "pos_loss": float(cfg.C * cfg.positive_weight * hinge_pos),
                "neg_loss": float(cfg.C * hinge_neg),
            }
        )
    cache.member &= ~easy_negatives(z_neg, cache.member, due, cfg=cfg)
    cache.compact()
