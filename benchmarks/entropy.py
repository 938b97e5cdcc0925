"""Class-entropy curves: jaxcnn's bucket-scatter kernel against the literal loop and a sort.

For each method (label, weighted, spmax) on a conv-5-sized and a conv-1-sized problem:

* **ours**: ``jax.jit(entropy_curves)`` on device-resident arrays (compilation excluded).
* **loop**: the definition in plain numpy, one filter and one threshold at a time (select the
  pairs with score >= τ, ``np.bincount`` their labels or weights, entropy). It is timed on
  ``--loop_filters`` filters and scaled linearly to all F (each filter is independent).
* **sort**: the floor: numpy forms the method's pairs from the same [N, P, F] input (a
  reshape, or the max over positions for spmax) and sorts every filter's scores
  (``np.sort`` of contiguous per-filter rows; the transposition that makes the rows contiguous
  is done once, outside the timing).

Runs alternate ours / sort / loop so that noise from other processes hits all three; the
medians over ``--rounds`` are printed with the ratios loop/ours and ours/sort, and the largest
entropy difference on the looped filters. The loop takes float64 ``np.linspace`` thresholds,
ours float32 ones; on millions of pairs a pair within an ulp of a threshold can then count on
one side only, which moves the entropy near the top thresholds (few pairs) by up to ~1e-4 bits.

    python benchmarks/entropy.py                          # both problems
    python benchmarks/entropy.py --problems=conv5 --rounds=3
"""

import functools
import statistics
import time

import jax
import numpy as np
from absl import app, flags

from jaxcnn.selectivity import entropy

FLAGS = flags.FLAGS
flags.DEFINE_list("problems", ["conv5", "conv1"], "Problems to run (conv5, conv1).")
flags.DEFINE_list("methods", list(entropy.METHODS), "Entropy methods.")
flags.DEFINE_integer("rounds", 5, "Alternating rounds; medians are reported.")
flags.DEFINE_integer("loop_filters", 4, "Filters the literal loop is timed on (scaled to F).")
flags.DEFINE_integer("num_classes", 20, "Classes (PASCAL: 20).")
flags.DEFINE_integer("num_thresholds", 100, "Thresholds per filter.")

PROBLEMS = {"conv5": (5000, 36, 256), "conv1": (2000, 729, 96)}  # N boxes, P = p², F


def make_problem(n, p, f, num_classes, seed=0):
    """ReLU-like responses (about half zeros) with a class-dependent shift per filter."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    shift = rng.normal(size=(num_classes, f)).astype(np.float32) * 0.5
    acts = rng.normal(size=(n, p, f)).astype(np.float32)
    acts += shift[labels][:, None, :]
    np.maximum(acts, 0, out=acts)
    return acts, labels


def method_pairs(acts, labels, method):
    """The (scores [M, F], labels [M]) pairs a method ranks."""
    n, p, f = acts.shape
    if method == "spmax":
        return acts.max(axis=1), labels
    return acts.reshape(n * p, f), np.repeat(labels, p)


def literal_loop(acts, labels, num_classes, method, num_thresholds, filters):
    """The definition, literally: entropy [T, len(filters)] in bits."""
    scores, y = method_pairs(acts, labels, method)
    out = np.zeros((num_thresholds, len(filters)))
    for j, f in enumerate(filters):
        s = scores[:, f]
        for t, tau in enumerate(np.linspace(s.min(), s.max(), num_thresholds)):
            keep = s >= tau
            h = np.bincount(y[keep], minlength=num_classes).astype(np.float64)
            if method == "weighted":
                hw = np.bincount(y[keep], weights=s[keep], minlength=num_classes)
                h = hw if hw.sum() > 0 else h
            prob = h[h > 0] / h.sum()
            out[t, j] = -np.sum(prob * np.log2(prob))
    return out


def sort_floor(acts, rows_FxM, method):
    if method == "spmax":
        return np.sort(np.ascontiguousarray(acts.max(axis=1).T), axis=1)
    return np.sort(rows_FxM, axis=1)


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    jax.block_until_ready(out)
    return time.perf_counter() - t0, out


def run_method(method, acts, labels, acts_dev, labels_dev, rows_FxM, loop_f):
    """Median seconds of ours, sort and (scaled) loop, and max |ours − loop| in bits."""
    num_f = acts.shape[2]
    ours = jax.jit(
        functools.partial(
            entropy.entropy_curves,
            num_classes=FLAGS.num_classes,
            method=method,
            num_thresholds=FLAGS.num_thresholds,
        )
    )
    _, (_, ent) = timed(ours, acts_dev, labels_dev)  # compile + warm up
    loop_args = (acts, labels, FLAGS.num_classes, method, FLAGS.num_thresholds, loop_f)
    times = {"ours": [], "sort": [], "loop": []}
    for _ in range(FLAGS.rounds):
        times["ours"].append(timed(ours, acts_dev, labels_dev)[0])
        times["sort"].append(timed(sort_floor, acts, rows_FxM, method)[0])
        dt, ref = timed(literal_loop, *loop_args)
        times["loop"].append(dt * num_f / len(loop_f))
    med = {k: statistics.median(v) for k, v in times.items()}
    return med, float(np.max(np.abs(np.asarray(ent)[:, loop_f] - ref)))


def run_problem(name):
    n, p, f = PROBLEMS[name]
    acts, labels = make_problem(n, p, f, FLAGS.num_classes)
    acts_dev, labels_dev = jax.device_put(acts), jax.device_put(labels)
    rows_FxM = np.ascontiguousarray(acts.reshape(n * p, f).T)
    loop_f = list(range(min(FLAGS.loop_filters, f)))
    print(
        f"\n{name}: N={n} P={p} F={f} C={FLAGS.num_classes} T={FLAGS.num_thresholds} "
        f"(loop timed on {len(loop_f)} filters, scaled ×{f / len(loop_f):.0f})"
    )
    print(
        f"{'method':>9} {'ours s':>8} {'sort s':>8} {'loop s':>9} {'loop/ours':>10} "
        f"{'ours/sort':>10} {'max|Δ| bits':>12}"
    )
    for method in FLAGS.methods:
        med, err = run_method(method, acts, labels, acts_dev, labels_dev, rows_FxM, loop_f)
        print(
            f"{method:>9} {med['ours']:8.3f} {med['sort']:8.3f} {med['loop']:9.2f} "
            f"{med['loop'] / med['ours']:9.0f}× {med['ours'] / med['sort']:9.2f}× {err:12.1e}"
        )


def main(argv):
    del argv
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}, numpy {np.__version__}; "
        f"medians of {FLAGS.rounds} alternating rounds"
    )
    for name in FLAGS.problems:
        run_problem(name)


if __name__ == "__main__":
    app.run(main)
