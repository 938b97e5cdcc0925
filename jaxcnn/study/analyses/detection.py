"""R-CNN detection on the PASCAL-DET stand-in (docs/methods.md §9.2): the detection columns of
Tables 1 and 2 (pre-trained, ft, fc-ft, scratch), and Table 8's conv-5 binarisation and sp-max
for detection. Optional (``--detection``): window fine-tuning and hard-negative mining are the
slowest part of the paper's questions on a CPU.

The study's settings fix the experiment: the det_target's trainval / test splits capped at
``detect_images`` each, selective search at the image's own size (at most 150 boxes), window
fine-tuning of ``detect_steps`` iterations (scratch twice as many, at the pre-training lr) from
the final pre-training snapshot, SVMs on conv5 / fc6 / fc7, VOC07 11-point AP.
"""

from __future__ import annotations

import dataclasses
import json
import os

from jaxcnn import detect
from jaxcnn.documents import Finding, Section, Table
from jaxcnn.storage import jsonable
from jaxcnn.study import runs
from jaxcnn.study.registry import Analysis, Context

NETWORKS = ("none", "ft", "fc-ft", "scratch")  # "none": the pre-trained network
PAPER = {"none": 45.5, "ft": 54.1, "fc-ft": 53.3, "scratch": 40.7}  # fc7 mAP, Tables 1 and 2
PAPER_TABLE8 = {"none": 47.6, "binarize": 45.7, "sp-max": 25.4}  # fine-tuned conv5, Table 8
BINARIZE_MAX_DROP = 5.0  # the same rule as the classification probes' (ablation.py)


def specs(cfg) -> tuple:
    """(DataSpec, DetectorSpec, FinetuneSpec) of the study's detection experiment."""
    data = detect.DataSpec(
        dataset=runs.dataset_name(cfg, cfg.det_target),
        data_dir=cfg.data_dir,
        train_images=cfg.detect_images,
        test_images=cfg.detect_images,
        resize=cfg.resize,
        crop=cfg.crop,
        search=detect.SearchConfig(im_width=0, max_boxes=150),
    )
    detector = detect.DetectorSpec(
        layers=("conv5", "fc6", "fc7"),
        conv5_ablations=("none", "binarize", "sp-max"),
        ablation_networks=("ft",),
        batch_size=cfg.batch_size,
    )
    finetune = detect.FinetuneSpec(
        steps=cfg.detect_steps,
        scratch_steps=2 * cfg.detect_steps,
        batch_size=cfg.finetune_batch,
        fg_per_batch=cfg.finetune_batch // 4,
        scratch_lr=cfg.pretrain_lr,
        seed=cfg.seed,
    )
    return data, detector, finetune


def _config(cfg) -> dict:
    return {name: dataclasses.asdict(spec) for name, spec in zip("dsf", specs(cfg), strict=True)}


def run(ctx: Context, out_dir) -> dict:
    data, detector, finetune = specs(ctx.cfg)
    rows = detect.run_detection(
        data, detector, finetune, str(out_dir),
        source_run=ctx.stages["pretrain"].result["run_dir"], regimes=NETWORKS, log=print,
    )  # fmt: skip
    maps = {f"{r['network']}/{r['layer']}/{r['ablation']}": 100 * r["mAP"] for r in rows}
    with open(os.path.join(out_dir, "summary.json")) as f:  # written by run_detection
        recall = json.load(f)["test_proposal_recall@0.5"]
    return jsonable({"mAP": maps, "proposal_recall": recall})


def _get(maps: dict, network: str, layer: str, ablation: str = "none") -> float:
    return maps.get(f"{network}/{layer}/{ablation}", float("nan"))


def findings(maps: dict) -> list[Finding]:
    """The claims, each decided by a rule fixed before any run (docs/methods.md §9.2)."""
    pre, ft, fcft = (_get(maps, n, "fc7") for n in ("none", "ft", "fc-ft"))
    scratch = _get(maps, "scratch", "fc7")
    bin_drop = _get(maps, "ft", "conv5") - _get(maps, "ft", "conv5", "binarize")
    sp_drop = _get(maps, "ft", "conv5") - _get(maps, "ft", "conv5", "sp-max")
    return [
        Finding(
            "Fine-tuning improves detection (fc7: ft > pre-trained by more than 2 mAP points)",
            ft - pre > 2.0,
            f"pre-trained {pre:.1f}, ft {ft:.1f}, fc-ft {fcft:.1f} (paper 45.5, 54.1, 53.3)",
        ),
        Finding(
            "Pre-training beats training from scratch for detection (fc7, by > 2 points)",
            pre - scratch > 2.0,
            f"pre-trained {pre:.1f} vs scratch {scratch:.1f} (paper 45.5 vs 40.7)",
        ),
        Finding(
            f"Binarising conv5 costs detection little (< {BINARIZE_MAX_DROP:.0f} mAP points)",
            bin_drop < BINARIZE_MAX_DROP,
            f"ft conv5 drop {bin_drop:.1f} (paper Table 8: 1.9)",
        ),
        Finding(
            "sp-max of conv5 costs detection much more than binarisation (more than twice, and "
            "> 3 points)",
            sp_drop > max(3.0, 2 * bin_drop),
            f"ft conv5 sp-max drop {sp_drop:.1f} vs binarisation {bin_drop:.1f} (paper 22.2, 1.9)",
        ),
    ]


def report(det) -> tuple[list[Section], list[Finding]]:
    maps, recall = det["result"]["mAP"], det["result"].get("proposal_recall", float("nan"))
    rows = tuple(
        (n, *[_get(maps, n, layer) for layer in ("conv5", "fc6", "fc7")], PAPER[n])
        for n in NETWORKS
    )
    abl = tuple(
        (a, _get(maps, "ft", "conv5", a), PAPER_TABLE8[a]) for a in ("none", "binarize", "sp-max")
    )
    section = Section(
        "Detection: R-CNN on the PASCAL-DET stand-in (Tables 1, 2 and 8)",
        "VOC07 11-point mAP of hard-negative-mined SVMs on each network's features ('none' is "
        "the pre-trained network); the paper's column is fc7 (Tables 1, 2) or the fine-tuned "
        f"conv5 (Table 8). Selective-search recall at IoU 0.5 on the test images: "
        f"{100 * recall:.1f} %.",
        (
            Table(("network", "conv5", "fc6", "fc7", "paper fc7"), rows),
            Table(("ft conv5 ablation", "mAP", "paper"), abl),
        ),
    )
    return [section], findings(maps)


ANALYSIS = Analysis(
    "detection",
    ("pretrain",),
    run,
    report,
    weight=6.0,
    config=_config,
    enabled=lambda cfg: cfg.detection,
)
