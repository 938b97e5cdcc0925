"""Benchmark: the VOC07 linear-probe protocol, jaxcnn vs scikit-learn LinearSVC.

Synthetic but structured data shaped like one CaffeNet layer on PASCAL VOC 2007 (conv5:
5,011 x 9,216 train, 4,952 test, 20 classes). Both sides run the same protocol
(``jaxcnn.probe.VOC07_VISSL``: L2-normalised features, 11 costs x 3 shared folds, final fit at
the chosen cost, VOC12 test AP) on the same folds; scikit-learn uses VISSL's LinearSVC call.

    python benchmarks/probes.py --size small --repeats 3          # ~40 s
    python benchmarks/probes.py --sklearn_classes 2 --repeats 2   # ~15-25 min

Measured on the shared 2-core CPU (other jobs running; load average 2-7), sklearn timed on
classes 0 and 19 and extrapolated x10: jaxcnn 29-51 s per protocol, sklearn 1,250-2,150 s,
ratio 24x-75x depending on load (multi-threaded XLA suffers more from contention than the
single-threaded liblinear); mAP on the timed classes 80.94-80.95 for both, same chosen costs.
"""

import numpy as np


def make_dataset(*, n_train, n_test, dim, num_classes, seed=0, difficult_rate=0.08):
    """VOC-like multi-label data with conv-feature-like (non-negative, low-rank) features.

    Each image holds 1 + Poisson(0.4) classes drawn with Zipf-like frequencies (one class is
    frequent, like "person"). Features are ``relu(latent @ basis + noise - 0.5)`` where the
    latent mixes the image's class codes (scaled by a per-image visibility, smaller for
    "difficult" objects) with class-independent nuisance factors, so the classes are only
    partly linearly separable and the best cost is neither the smallest nor the largest.

    Returns ``(x_train, labels_train, x_test, labels_test)``: float32 features ``[n, dim]`` and
    int8 labels ``[n, num_classes]`` in the VOC convention 1 present, −1 absent, 0 difficult.
    """
    rng = np.random.default_rng(seed)
    rank, nuisance = 48, 48
    freq = 1.0 / (1.0 + np.arange(num_classes)) ** 0.8
    freq /= freq.sum()
    codes = rng.normal(size=(num_classes, rank)).astype(np.float32)
    basis = rng.normal(size=(rank + nuisance, dim)).astype(np.float32) / np.sqrt(rank)

    def split(n):
        labels = np.full((n, num_classes), -1, np.int8)
        counts = 1 + rng.poisson(0.4, size=n)
        visibility = np.zeros((n, num_classes), np.float32)
        for i in range(n):
            cls = rng.choice(num_classes, size=min(counts[i], num_classes), replace=False, p=freq)
            labels[i, cls] = 1
            visibility[i, cls] = rng.uniform(0.2, 1.0, size=len(cls))
        hard = (labels == 1) & (rng.random(labels.shape) < difficult_rate)
        labels[hard] = 0
        visibility[hard] *= 0.3
        latent = np.concatenate(
            [visibility @ codes * 0.15, rng.normal(size=(n, nuisance)).astype(np.float32)], 1
        )
        x = latent @ basis + rng.normal(size=(n, dim)).astype(np.float32) * 0.8
        return np.maximum(x - 0.5, 0.0).astype(np.float32), labels

    x_train, y_train = split(n_train)
    x_test, y_test = split(n_test)
    return x_train, y_train, x_test, y_test


SIZES = {
    # name: (n_train, n_test, dim, num_classes)
    "full": (5011, 4952, 9216, 20),
    "small": (600, 500, 1024, 5),
}


def sklearn_protocol(x_train, y_train, x_test, y_test, classes, protocol, folds):
    """The same protocol with scikit-learn's LinearSVC (VISSL's call), one class at a time.

    Features must already be scaled. CV folds, AP methods and tie-breaking are the ones
    ``jaxcnn.probe.multilabel_probe`` uses. Returns ``(ap per class, chosen cost per class)``.
    """
    from sklearn.metrics import average_precision_score
    from sklearn.svm import LinearSVC

    from jaxcnn import metrics

    train_f, tmask_f, held_f, hmask_f = folds

    def svc(cost):
        return LinearSVC(
            C=cost,
            class_weight={1: protocol.positive_weight, -1: 1},
            intercept_scaling=protocol.intercept_scaling,
            loss="squared_hinge",
            penalty="l2",
            dual=True,
            tol=1e-4,
            max_iter=2000,
        )

    aps, chosen = [], []
    for k in classes:
        y = np.where(y_train[:, k] == 1, 1, -1)
        cv = np.zeros(len(protocol.costs))
        for li, cost in enumerate(protocol.costs):
            fold_ap = []
            for f in range(len(train_f)):
                tr, ho = train_f[f][tmask_f[f]], held_f[f][hmask_f[f]]
                clf = svc(cost).fit(x_train[tr], y[tr])
                fold_ap.append(
                    average_precision_score(y[ho] == 1, clf.decision_function(x_train[ho]))
                )
            cv[li] = np.mean(fold_ap)
        best = int(np.argmax(cv))
        clf = svc(protocol.costs[best]).fit(x_train, y)
        scores = clf.decision_function(x_test).astype(np.float32)
        ap = metrics.average_precision(
            scores, y_test[:, k] == 1, method=protocol.ap_method, where=y_test[:, k] != 0
        )
        aps.append(float(ap))
        chosen.append(protocol.costs[best])
    return np.array(aps), np.array(chosen)


def main():
    import argparse
    import time
    import warnings

    import jax
    from sklearn.exceptions import ConvergenceWarning

    from jaxcnn.probe import cost_path, protocols

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument(
        "--sklearn_classes",
        type=int,
        default=None,
        help="time scikit-learn on this many classes (evenly spaced) and "
        "extrapolate linearly to all classes; default all",
    )
    parser.add_argument("--repeats", type=int, default=1, help="alternating timed repeats")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)

    n_train, n_test, dim, num_classes = SIZES[args.size]
    x_tr, y_tr, x_te, y_te = make_dataset(
        n_train=n_train, n_test=n_test, dim=dim, num_classes=num_classes, seed=args.seed
    )
    protocol = protocols.VOC07_VISSL
    n_sk = num_classes if args.sklearn_classes is None else min(args.sklearn_classes, num_classes)
    classes = np.unique(np.linspace(0, num_classes - 1, n_sk).round().astype(int))
    print(
        f"data: train {x_tr.shape}, test {x_te.shape}, {num_classes} classes; protocol "
        f"{protocol.name}: {len(protocol.costs)} costs x {protocol.num_folds} folds + final "
        f"fit, test AP {protocol.ap_method}; devices {jax.devices()}"
    )

    t0 = time.perf_counter()
    ours = protocols.multilabel_probe(x_tr, y_tr, x_te, y_te, protocol=protocol)
    print(f"jaxcnn first call (includes compilation): {time.perf_counter() - t0:.1f} s")
    folds = cost_path.fold_indices(n_train, protocol.num_folds)
    xs_tr, xs_te = (np.asarray(a) for a in protocols.scale_features(x_tr, x_te, protocol=protocol))
    t_ours, t_sk = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ours = protocols.multilabel_probe(x_tr, y_tr, x_te, y_te, protocol=protocol)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sk_ap, sk_cost = sklearn_protocol(xs_tr, y_tr, xs_te, y_te, classes, protocol, folds)
        t_sk.append(time.perf_counter() - t0)
    med_ours, med_sk = float(np.median(t_ours)), float(np.median(t_sk))
    scale = num_classes / len(classes)
    sk_all = med_sk * scale
    extrap = (
        ""
        if len(classes) == num_classes
        else (
            f" (measured on classes {classes.tolist()}: {med_sk:.1f} s, x{scale:.1f} linear "
            "extrapolation to all classes)"
        )
    )
    print(
        f"jaxcnn   wall (median of {args.repeats}): {med_ours:8.2f} s  mAP {100 * ours.mean_ap:.2f}"
    )
    print(f"sklearn  wall (median of {args.repeats}): {sk_all:8.2f} s{extrap}")
    print(f"ratio sklearn / jaxcnn: {sk_all / med_ours:.1f}x")
    print(
        f"mAP on the sklearn classes: jaxcnn {100 * np.mean(ours.ap_K[classes]):.2f}, "
        f"sklearn {100 * np.mean(sk_ap):.2f}"
    )
    print(f"chosen costs: jaxcnn {ours.cost_K[classes].tolist()}, sklearn {sk_cost.tolist()}")


if __name__ == "__main__":
    main()
