"""Benchmark: R-CNN detection stages, jaxcnn against the reference implementations.

    python benchmarks/detection.py --part mining --images 400 --boxes 200 --dim 512
    python benchmarks/detection.py --part windows
    python benchmarks/detection.py --part eval --images 4952

(1) ``mining``: hard-negative mining and SVM training for 20 classes on a synthetic cache of
    ``images x boxes`` windows of ``dim`` features, in the same mining loop
    (`jaxcnn.detect.mining.train_detectors`) with (a) jaxcnn's batched squared-hinge
    Newton-CG solver, all due classes at once, and (b) scikit-learn's
    ``LinearSVC(loss="hinge", C=0.001, class_weight={1: 2}, intercept_scaling=10)`` (R-CNN's
    liblinear ``-s 3``) one class at a time. Reports time, ratio and the test mAP of each.
(2) ``windows``: windows per second through R-CNN's warp (host) and the small network's forward
    pass to pool5.
(3) ``eval``: NMS (0.3) and VOC07 AP for a VOC 2007-sized test set (4,952 images, 20 classes,
    100 detections per class and image): jaxcnn's jitted top-k + NMS + vectorised devkit AP
    against numpy ports of R-CNN's ``nms.m`` and the devkit's ``VOCevaldet`` loop; checks that
    both give the same APs.

Measured on the 2-core CPU with nothing else running (3 December 2026, load average 0.5-1.6 at
the start of each, after the AP rounding fix):
(1) 200 images x 200 boxes x 512 dims, feature noise 3, two runs: jaxcnn 7.8-8.6 s (80 class
    trainings, compilation included), scikit-learn 2.4-2.7 s (60): 0.28-0.35x (slower on these small
    problems); test mAP 53.9 (squared hinge) vs 45.0 (hinge, R-CNN's objective).
(2) warp 2,602 windows/s (one host thread), small-preset forward to pool5 1,102 windows/s.
(3) 2,000 images: jaxcnn 4.4 s, numpy ports 34.2 s (7.8x); 500 images: 2.0 s vs 2.5 s (1.2x);
    APs equal to 6e-9. (Earlier, under a load average of 12-20, 4,952 images: 158 s vs
    4,046 s, 25.6x.)
"""

import argparse
import time

import numpy as np

from jaxcnn import model
from jaxcnn.detect import ap as ap_lib
from jaxcnn.detect import devkit, evaluate, mining, roidb

CLASSES = 20


def _synthetic_image(rng, boxes, dim, protos, noise, size=200):
    """Ground truth, proposals (jittered ground truth + random boxes) and features: each box's
    feature is relu(sum over objects of IoU^2 * class prototype + noise)."""
    k = rng.integers(1, 4)
    xy = rng.integers(1, size - 60, (k, 2))
    wh = rng.integers(20, 60, (k, 2))
    gt_boxes = np.concatenate([xy, xy + wh], 1)
    gt = roidb.GroundTruth(
        "s", size, size, gt_boxes, rng.integers(0, CLASSES, k), rng.random(k) < 0.1
    )
    near = gt_boxes[rng.integers(0, k, boxes // 2)] + rng.integers(-15, 16, (boxes // 2, 4))
    x1 = rng.integers(1, size - 20, boxes - boxes // 2)
    far = np.stack(
        [x1, x1, x1 + 20 + rng.integers(0, 80, len(x1)), x1 + 20 + rng.integers(0, 80, len(x1))], 1
    )
    props = np.clip(np.concatenate([near, far]), 1, size)
    props[:, 2:] = np.maximum(props[:, 2:], props[:, :2])
    entry = roidb.make_entry(gt, props, CLASSES)
    signal = entry.overlap**2 @ protos  # [K, dim]
    feats = np.maximum(signal + noise * rng.normal(size=signal.shape), 0).astype(np.float32)
    return gt, entry, feats


def bench_mining(args):
    rng = np.random.default_rng(0)
    protos = rng.normal(size=(CLASSES, args.dim)).astype(np.float32)
    train = [
        _synthetic_image(rng, args.boxes, args.dim, protos, args.noise) for _ in range(args.images)
    ]
    test = [
        _synthetic_image(rng, args.boxes, args.dim, protos, args.noise)
        for _ in range(args.images // 2)
    ]
    scale = mining.feature_scale(np.concatenate([f for _, _, f in train[:50]]))
    cfg = mining.MiningConfig()
    out = {}
    for name, solver in (
        ("jaxcnn", mining.jax_solver(cfg)),
        ("sklearn", mining.liblinear_solver(cfg)),
    ):
        start = time.perf_counter()
        det = mining.train_detectors(
            lambda i: train[i][2], [e for _, e, _ in train], scale=scale, cfg=cfg, solve=solver
        )
        seconds = time.perf_counter() - start
        scores = [det.scores(f[~e.is_gt]) for _, e, f in test]
        dets = evaluate.detect(scores, [e.boxes[~e.is_gt] for _, e, _ in test])
        aps, _ = evaluate.evaluate(dets, [g for g, _, _ in test])
        out[name] = (seconds, float(np.nanmean(aps)), len(det.history))
        print(
            f"{name}: {seconds:.1f} s, {len(det.history)} class trainings, "
            f"test mAP {100 * out[name][1]:.2f}",
            flush=True,
        )
    print(
        f"mining+SVM for {CLASSES} classes, {args.images} images x {args.boxes} boxes x "
        f"{args.dim} dims: sklearn/jaxcnn time ratio {out['sklearn'][0] / out['jaxcnn'][0]:.1f}x, "
        f"mAP difference (jaxcnn - sklearn) {100 * (out['jaxcnn'][1] - out['sklearn'][1]):+.2f}"
    )


def bench_windows(args):
    import jax

    from jaxcnn.detect import window_features, windows
    from jaxcnn.features import extraction
    from jaxcnn.model import alexnet

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (72, 72, 3)).astype(np.uint8) for _ in range(20)]
    x1 = rng.integers(1, 40, (20, 150))
    boxes = [np.stack([a, a, np.minimum(a + 30, 72), np.minimum(a + 25, 72)], 1) for a in x1]
    spec = windows.WarpSpec(64, 64 * 16 / 227, np.zeros((64, 64, 3), np.float32))
    start = time.perf_counter()
    batches = list(window_features.window_batches(images.__getitem__, boxes, spec, batch_size=256))
    warp = 3000 / (time.perf_counter() - start)
    module = alexnet.from_preset("small", 100, input_size=64, init="msra")
    params = model.init_params(module, jax.random.key(0))
    fwd = jax.jit(extraction.make_forward(module, ("conv5",)))
    fwd(params, batches[0]["image"])["conv5"].block_until_ready()
    start = time.perf_counter()
    for b in batches:
        fwd(params, b["image"])["conv5"].block_until_ready()
    forward = len(batches) * 256 / (time.perf_counter() - start)
    print(
        f"small preset, 64 px windows: warp {warp:.0f} windows/s (host, one thread), forward "
        f"to pool5 {forward:.0f} windows/s ({jax.devices()[0].platform})"
    )


def bench_eval(args):
    rng = np.random.default_rng(0)
    n, per = args.images, 100
    gt_img, gt_box, gt_lab, gt_dif = [], [], [], []
    scores, boxes = [], []
    for i in range(n):  # 1-4 objects per image, 100 boxes per class around them and elsewhere
        k = rng.integers(1, 5)
        xy = rng.integers(1, 300, (k, 2))
        g = np.concatenate([xy, xy + rng.integers(30, 150, (k, 2))], 1)
        gt_img.append(np.full(k, i)), gt_box.append(g), gt_lab.append(rng.integers(0, CLASSES, k))
        gt_dif.append(rng.random(k) < 0.1)
        b = g[rng.integers(0, k, per)] + rng.integers(-20, 21, (per, 4))
        b[:, 2:] = np.maximum(b[:, 2:], b[:, :2])
        boxes.append(np.clip(b, 1, 500).astype(np.float32))
        scores.append(rng.normal(size=(per, CLASSES)).astype(np.float32))
    gt_img, gt_box = np.concatenate(gt_img), np.concatenate(gt_box)
    gt_lab, gt_dif = np.concatenate(gt_lab), np.concatenate(gt_dif)
    start = time.perf_counter()
    dets = evaluate.detect(scores, boxes, top_k=per, iou_threshold=0.3, chunk=256)
    ours = [
        ap_lib.detection_ap(
            dets.image[c],
            dets.boxes[c],
            dets.scores[c],
            gt_img[gt_lab == c],
            gt_box[gt_lab == c],
            gt_dif[gt_lab == c],
        )
        for c in range(CLASSES)
    ]
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    ref = []
    for c in range(CLASSES):
        di, db, ds = [], [], []
        for i in range(n):
            keep = devkit.nms_numpy(boxes[i], scores[i][:, c], iou_threshold=0.3)
            (
                di.append(np.full(len(keep), i)),
                db.append(boxes[i][keep]),
                ds.append(scores[i][keep, c]),
            )
        sel = gt_lab == c
        ref.append(
            devkit.voc_ap_literal(
                np.concatenate(di),
                np.concatenate(db),
                np.concatenate(ds),
                gt_img[sel],
                gt_box[sel],
                gt_dif[sel],
            )[0]
        )
    t_ref = time.perf_counter() - start
    diff = np.max(np.abs(np.array(ours) - np.array(ref)))
    print(
        f"NMS + VOC07 AP, {n} images x {CLASSES} classes x {per} detections: jaxcnn "
        f"{t_ours:.1f} s, numpy devkit port {t_ref:.1f} s, ratio {t_ref / t_ours:.1f}x; "
        f"mAP {100 * np.mean(ours):.2f} vs {100 * np.mean(ref):.2f} (max AP diff {diff:.1e})"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["mining", "windows", "eval"], required=True)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--boxes", type=int, default=200)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--noise", type=float, default=3.0, help="feature noise (mining)")
    args = parser.parse_args()
    {"mining": bench_mining, "windows": bench_windows, "eval": bench_eval}[args.part](args)


if __name__ == "__main__":
    main()
