"""Writing detection results: per-class AP tables (JSON, CSV, Markdown), precision-recall curves
and a figure of test images with their top detections.

Every table records the AP method (``voc07``: 11-point, VOC 2007 / R-CNN; ``voc12``: area
under the envelope) and the IoU threshold it was computed with.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from jaxcnn import storage


def ap_table(class_names, aps_K, *, method: str, iou_threshold: float, meta: dict | None = None):
    """The results as one JSON-able dict: per-class AP (NaN: no positives), mAP over the
    classes with an AP, the method and threshold, and any `meta`."""
    aps = [float(a) for a in aps_K]
    defined = [a for a in aps if np.isfinite(a)]
    return {
        "method": method,
        "iou_threshold": float(iou_threshold),
        "per_class": dict(zip(class_names, aps, strict=True)),
        "mAP": float(np.mean(defined)) if defined else float("nan"),
        **(meta or {}),
    }


def write_tables(table: dict, prefix: str) -> list[str]:
    """``<prefix>.json``, ``.csv`` and ``.md`` of an `ap_table` (APs in percent in CSV/MD)."""
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    paths = [prefix + ext for ext in (".json", ".csv", ".md")]
    storage.write_json(paths[0], table, indent=1, sort_keys=True)
    names = list(table["per_class"])
    with storage.replacing(paths[1]) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "AP", "method", "iou_threshold"])
        for name in names:
            w.writerow(
                [
                    name,
                    f"{100 * table['per_class'][name]:.1f}",
                    table["method"],
                    table["iou_threshold"],
                ]
            )
        w.writerow(["mAP", f"{100 * table['mAP']:.1f}", table["method"], table["iou_threshold"]])
    storage.write_text(paths[2], markdown(table) + "\n")
    return paths


def markdown(table: dict) -> str:
    """One Markdown table: a row of per-class APs (percent) and the mAP."""
    names = list(table["per_class"])
    head = "| " + " | ".join([*names, "mAP"]) + " |"
    rule = "|" + "---|" * (len(names) + 1)
    row = "| " + " | ".join(f"{100 * table['per_class'][n]:.1f}" for n in names)
    caption = (
        f"Detection AP (%), {table['method']} "
        f"({'11-point' if table['method'] == 'voc07' else 'envelope'}), IoU "
        f"{table['iou_threshold']}."
    )
    return f"{caption}\n\n{head}\n{rule}\n{row} | {100 * table['mAP']:.1f} |"


def plot_pr_curves(curves, class_names, aps_K, path: str, *, title: str = "") -> str:
    """A grid of per-class precision-recall curves, each titled with its AP."""
    from matplotlib.figure import Figure  # not pyplot: plots may be drawn on several threads

    k = len(curves)
    cols = min(5, k)
    rows = -(-k // cols)
    fig = Figure(figsize=(2.4 * cols, 2.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for c, ax in enumerate(axes.flat):
        if c >= k:
            ax.axis("off")
            continue
        rec, prec = curves[c]
        ax.plot(rec, np.nan_to_num(prec, nan=0.0), lw=1)
        ax.set(xlim=(0, 1), ylim=(0, 1.02), title=f"{class_names[c]}: {100 * aps_K[c]:.1f}")
        ax.title.set_fontsize(7)
        ax.tick_params(labelsize=6)
    fig.suptitle(title or "precision (y) vs recall (x)", fontsize=9)
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.06, top=0.9, wspace=0.25, hspace=0.45)
    fig.savefig(path, dpi=100)  # fixed margins: tight_layout took ~1 s a figure
    return path


def plot_top_detections(images, detections, class_names, path: str, *, per_image: int = 3):
    """Test images with their top detections (box, class, score).

    ``detections[i]`` is a list of ``(class, score, box [x1, y1, x2, y2])`` for image i,
    best first; the first `per_image` are drawn."""
    import matplotlib
    from matplotlib.figure import Figure  # not pyplot: plots may be drawn on several threads
    from matplotlib.patches import Rectangle

    n = len(images)
    cols = min(4, n)
    rows = -(-n // cols)
    fig = Figure(figsize=(2.6 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    colours = matplotlib.colormaps["tab10"].colors
    for ax, image, dets in zip(axes.flat, images, detections, strict=False):
        ax.imshow(image)
        for r, (c, score, (x1, y1, x2, y2)) in enumerate(dets[:per_image]):
            col = colours[r % len(colours)]
            # Pixel j (1-based) covers [j - 1.5, j - 0.5] in imshow's 0-based centred axes.
            ax.add_patch(
                Rectangle(
                    (x1 - 1.5, y1 - 1.5), x2 - x1 + 1, y2 - y1 + 1, fill=False, lw=1.2, ec=col
                )
            )
            ax.text(
                x1 - 1.5,
                y1 - 2,
                f"{class_names[c]} {score:.2f}",
                fontsize=5,
                color=col,
                va="bottom",
                bbox=dict(fc="white", alpha=0.6, lw=0, pad=0.5),
            )
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
