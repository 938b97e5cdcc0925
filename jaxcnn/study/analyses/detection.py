"""R-CNN detection on the PASCAL-DET stand-in (docs/methods.md §9.2): the detection columns of
Tables 1, 2 and 4 (pre-trained, ft, fc-ft, scratch; ft from earlier snapshots), Table 8's conv-5
binarisation and sp-max for detection, and the thesis's per-class Tables 2.3 and 5.2. Optional
(``--detection``): window fine-tuning and hard-negative mining are the slowest part of the
paper's questions on a CPU.

The study's settings fix the experiment: the det_target's trainval / test splits capped at
``detect_images`` each, selective search at the image's own size (the first 100 boxes in rank
order), window fine-tuning of ``detect_steps`` iterations (default: the classification
fine-tunings' ``finetune_steps``; scratch twice as many, at the pre-training lr) from the final
pre-training snapshot and (ft only, fc7 only) from each ``table4_snapshots`` step, SVMs on the
layers the tables use (`CELLS`), VOC07 11-point AP. Every mAP is also
measured on bootstrap resamples of the test images, and the findings are decided by the
three-valued rules of §13 on the paired resamples.
"""

from __future__ import annotations

import dataclasses
import json
import os

from jaxcnn import detect
from jaxcnn.detect.run import network_name
from jaxcnn.documents import Finding, Section, Table, figure_if_exists, fmt
from jaxcnn.storage import jsonable
from jaxcnn.study import runs
from jaxcnn.study.registry import Analysis, Context
from jaxcnn.verdicts import above, all_of, below, estimate, paired, within

NETWORKS = ("none", "ft", "fc-ft", "scratch")  # "none": the pre-trained network
PAPER = {"none": 45.5, "ft": 54.1, "fc-ft": 53.3, "scratch": 40.7}  # fc7 mAP, Tables 1 and 2
PAPER_TABLE8 = {"none": 47.6, "binarize": 45.7, "sp-max": 25.4}  # fine-tuned conv5, Table 8
PAPER_TABLE4 = "50.2 / 52.6 / 55.3 / 55.4 after 50k / 105k / 205k / 305k iterations"
# thesis Table 2.3 rows: (label, network, layer, paper mAP); Table 5.2: (label, ablation, paper)
PAPER_T23 = (
    ("l5", "none", "conv5", 45.0),
    ("l5-ft", "ft", "conv5", 47.6),
    ("l6-ft", "ft", "fc6", 53.1),
    ("l6-fc-ft", "fc-ft", "fc6", 51.0),
    ("l7", "none", "fc7", 45.5),
    ("l7-ft", "ft", "fc7", 54.1),
    ("l7-fc-ft", "fc-ft", "fc7", 53.3),
)
PAPER_T52 = (("sp-max", "sp-max", 25.4), ("bin", "binarize", 45.7), ("pool-5", "none", 47.6))
BINARIZE_MAX_DROP = 5.0  # the same rule as the classification probes' (ablation.py)
BOXES = 100  # proposals per image: recall@0.5 98.1 % on seed 0's 200 test images (150: 99.4 %)


# The detectors each network needs, and no more: the cells of Tables 1, 2 and 4 (fc7), Table 8
# (ft conv5 and its ablations) and thesis Table 2.3 (none conv5, fc7; ft conv5, fc6, fc7; fc-ft
# fc6, fc7). (network, layers); Table 4's earlier snapshots get ("ft", ("fc7",)).
CELLS = (
    ("none", ("conv5", "fc7")),
    ("ft", ("conv5", "fc6", "fc7")),
    ("fc-ft", ("fc6", "fc7")),
    ("scratch", ("fc7",)),
)


def specs(cfg) -> tuple:
    """(DataSpec, DetectorSpec, FinetuneSpec) of the study's detection experiment (the
    DetectorSpec's layers are every layer; `run` narrows them per network, `CELLS`)."""
    data = detect.DataSpec(
        dataset=runs.dataset_name(cfg, cfg.det_target),
        data_dir=cfg.data_dir,
        train_images=cfg.detect_images,
        test_images=cfg.detect_images,
        resize=cfg.resize,
        crop=cfg.crop,
        search=detect.SearchConfig(im_width=0, max_boxes=BOXES),
    )
    detector = detect.DetectorSpec(
        layers=("conv5", "fc6", "fc7"),
        conv5_ablations=("none", "binarize", "sp-max"),
        ablation_networks=("ft",),
        batch_size=cfg.batch_size,
        figures=("ft/fc7/none",),  # the report's figures
    )
    steps = cfg.detect_steps or cfg.finetune_steps
    finetune = detect.FinetuneSpec(
        steps=steps,
        scratch_steps=2 * steps,
        batch_size=cfg.finetune_batch,
        fg_per_batch=cfg.finetune_batch // 4,
        scratch_lr=cfg.pretrain_lr,
        seed=cfg.seed,
        devices=1,  # beside the other analyses (docs/methods.md §2.8)
    )
    return data, detector, finetune


def _config(cfg) -> dict:
    specs_ = {name: dataclasses.asdict(spec) for name, spec in zip("dsf", specs(cfg), strict=True)}
    return {**specs_, "table4": list(cfg.table4_snapshots), "cells": CELLS}


def run(ctx: Context, out_dir) -> dict:
    cfg = ctx.cfg
    data, detector, finetune = specs(cfg)
    source = ctx.stages["pretrain"].result["run_dir"]
    networks = [(n, -1, layers) for n, layers in CELLS]
    networks += [("ft", step, ("fc7",)) for step in cfg.table4_snapshots]  # Table 4
    rows = []
    for network, step, layers in networks:
        rows += detect.run_detection(
            data,
            dataclasses.replace(detector, layers=layers),
            finetune,
            str(out_dir),
            source_run=source,
            source_step=step,
            regimes=(network,),
            log=print,
        )
    with open(os.path.join(out_dir, "summary.json")) as f:  # written by run_detection
        summary = json.load(f)
    key = lambda r: f"{r['network']}/{r['layer']}/{r['ablation']}"
    return jsonable(
        {
            "mAP": {key(r): 100 * r["mAP"] for r in rows},
            "resamples": {key(r): [100 * m for m in r["mAP_resamples"]] for r in rows},
            "per_class": {key(r): {c: 100 * a for c, a in r["per_class"].items()} for r in rows},
            "table4_steps": [*cfg.table4_snapshots, cfg.pretrain_steps],
            "proposal_recall": summary["test_proposal_recall@0.5"],
            "boxes_per_image": summary["test_boxes_per_image"],
        }
    )


def _name(network: str, step: int, last: int) -> str:
    """`run_detection`'s name of `network` fine-tuned from snapshot `step` (the last: plain)."""
    return network_name(network, -1 if step == last else step)


def _key(network: str, layer: str, ablation: str = "none") -> str:
    return f"{network}/{layer}/{ablation}"


def findings(res: dict) -> list[Finding]:
    """The claims, each decided by a rule fixed before any run (docs/methods.md §9.2) on the
    paired bootstrap resamples of the test images (§13's three-valued rules)."""
    boot = lambda *k: res["resamples"].get(_key(*k), [float("nan")])
    pre, ft, fcft, scratch = (boot(n, "fc7") for n in ("none", "ft", "fc-ft", "scratch"))
    bin_drop = paired(boot("ft", "conv5"), boot("ft", "conv5", "binarize"))
    sp_drop = paired(boot("ft", "conv5"), boot("ft", "conv5", "sp-max"))
    steps = res.get("table4_steps", [])
    first = boot(_name("ft", steps[0], steps[-1]), "fc7") if steps else [float("nan")]
    d = lambda x: fmt(list(x))
    return [
        Finding(
            "Fine-tuning improves detection (fc7: ft > pre-trained by more than 2 mAP points)",
            above(paired(ft, pre), 2.0),
            f"ft - pre-trained {d(paired(ft, pre))} (paper 54.1 - 45.5 = 8.6)",
        ),
        Finding(
            "Pre-training beats training from scratch for detection (fc7, by > 2 points)",
            above(paired(pre, scratch), 2.0),
            f"pre-trained - scratch {d(paired(pre, scratch))} (paper 45.5 - 40.7 = 4.8)",
        ),
        Finding(
            "fc-ft is close to ft for detection (fc7, within 2 points)",
            within(paired(ft, fcft), 2.0),
            f"ft - fc-ft {d(paired(ft, fcft))} (paper 54.1 - 53.3 = 0.8)",
        ),
        Finding(
            "Longer pre-training helps detection after fine-tuning (Table 4, fc7)",
            above(paired(ft, first), 0.0) if steps else None,
            f"ft from the last snapshot - ft from step {steps[0] if steps else '?'}: "
            f"{d(paired(ft, first))} (paper 55.4 - 50.2 = 5.2)",
        ),
        Finding(
            f"Binarising conv5 costs detection little (< {BINARIZE_MAX_DROP:.0f} mAP points)",
            below(bin_drop, BINARIZE_MAX_DROP),
            f"ft conv5 drop {d(bin_drop)} (paper Table 8: 1.9)",
        ),
        Finding(
            "sp-max of conv5 costs detection much more than binarisation (more than twice, and "
            "> 3 points)",
            all_of(above(sp_drop, 3.0), above(paired(sp_drop, 2 * bin_drop), 0.0)),
            f"ft conv5 sp-max drop {d(sp_drop)} vs binarisation {d(bin_drop)} (paper 22.2, 1.9)",
        ),
    ]


def report(det) -> tuple[list[Section], list[Finding]]:
    res, out = det["result"], det["out_dir"]
    maps, boot = res["mAP"], res["resamples"]

    def cell(*k):  # the whole test set's mAP, ± the bootstrap standard deviation
        m, b = maps.get(_key(*k)), boot.get(_key(*k))
        return "–" if m is None else f"{m:.1f} ± {estimate(b).std:.1f}"

    rows = tuple(
        (n, *[cell(n, layer) for layer in ("conv5", "fc6", "fc7")], PAPER[n]) for n in NETWORKS
    )
    abl = tuple((a, cell("ft", "conv5", a), PAPER_TABLE8[a]) for a in PAPER_TABLE8)
    steps = res.get("table4_steps", [])
    t4 = tuple((f"{s} it.", cell(_name("ft", s, steps[-1]), "fc7")) for s in steps)
    classes = list(res["per_class"].get(_key("ft", "fc7"), {}))

    def per_class(label, key, paper):
        aps = res["per_class"].get(key, {})
        return (label, *[aps.get(c, float("nan")) for c in classes], maps.get(key), paper)

    t23 = tuple(per_class(lab, _key(n, layer), p) for lab, n, layer, p in PAPER_T23)
    t52 = tuple(per_class(lab, _key("ft", "conv5", a), p) for lab, a, p in PAPER_T52)
    head = ("", *classes, "mAP", "paper mAP")
    section = Section(
        "Detection: R-CNN on the PASCAL-DET stand-in (Tables 1, 2, 4 and 8)",
        "VOC07 11-point mAP of hard-negative-mined SVMs on each network's features ('none' is "
        "the pre-trained network), ± the standard deviation over bootstrap resamples of the "
        "test images; the paper's column is fc7 (Tables 1, 2) or the fine-tuned conv5 "
        f"(Table 8). Selective search: {res.get('boxes_per_image', float('nan')):.0f} boxes "
        f"per test image, recall at IoU 0.5 {100 * res['proposal_recall']:.1f} %.",
        (
            Table(("network", "conv5", "fc6", "fc7", "paper fc7"), rows, "Tables 1 and 2"),
            Table(("ft from snapshot", "fc7 mAP"), t4, f"Table 4 (paper {PAPER_TABLE4})"),
            Table(("ft conv5 ablation", "mAP", "paper"), abl, "Table 8"),
            Table(head, t23, "Thesis Table 2.3: AP per class (l5/l6/l7: conv5/fc6/fc7)"),
            Table(head, t52, "Thesis Table 5.2: ft conv5 ablations, AP per class"),
        ),
        figure_if_exists(out, "ft/pr-fc7-none.png", "Precision-recall per class, ft fc7")
        + figure_if_exists(out, "ft/top_detections.png", "Test images: ft fc7's top detections"),
    )
    return [section], findings(res)


ANALYSIS = Analysis(
    "detection",
    ("pretrain",),
    run,
    report,
    weight=2.0,  # seed 0 from a clean start at 178c884: 571 s with --detection, 449 s without
    config=_config,
    enabled=lambda cfg: cfg.detection,
    priority=1,  # the longest analysis: it starts beside the fine-tunings
)
