"""Tables 1, 2 and 4, thesis Table 2.4: scratch, pre-trained, fine-tuned and fc-only networks
under fc-7 probes, GT-box probes per layer, and fine-tuning from earlier snapshots
(docs/methods.md §2.3, §4)."""

from __future__ import annotations

from jaxcnn import probe
from jaxcnn.documents import Finding, Section, Table, score
from jaxcnn.storage import jsonable
from jaxcnn.study import runs
from jaxcnn.study.config import LAYERS, REGIMES
from jaxcnn.study.registry import Analysis, Context

PAPER_T12 = {
    "scene": {"scratch": 40.4, "pre-train": 53.1, "ft": 56.8, "fc-ft": 56.2},
    "gt": {"scratch": 40.7, "pre-train": 45.5, "ft": 54.1, "fc-ft": 53.3},
}


def transfer_probes(ctx: Context, out_dir) -> dict:
    """GT-box probes per layer for pre-trained / ft / fc-ft (thesis Table 2.4), fc-7 probes of
    every regime on both targets (Tables 1, 2), ft from earlier snapshots (Table 4)."""
    cfg, cache, pre = ctx.cfg, ctx.cache, ctx.stages["pretrain"]
    ft_runs = ctx.runs
    sets = runs.feature_sets(cfg)
    per_layer = [(layer, "none") for layer in LAYERS]
    fc7 = [("fc7", "none")]
    gt = {"pre-train": probe.probe(cache, pre, None, sets["gt"], per_layer, cfg.protocol)}
    for regime in ("ft", "fc-ft"):
        gt[regime] = probe.probe(
            cache, ft_runs[("det", regime)], None, sets["gt"], per_layer, cfg.protocol
        )
    gt["scratch"] = probe.probe(
        cache, ft_runs[("det", "scratch")], None, sets["gt"], fc7, cfg.protocol
    )
    scene = {"pre-train": probe.probe(cache, pre, None, sets["scene"], fc7, cfg.protocol)}
    for regime in REGIMES:
        scene[regime] = probe.probe(
            cache, ft_runs[("scene", regime)], None, sets["scene"], fc7, cfg.protocol
        )
    table4 = {}
    for step in (*cfg.table4_snapshots, cfg.pretrain_steps):
        run = ft_runs[("det", "ft", step)] if step != cfg.pretrain_steps else ft_runs[("det", "ft")]
        table4[step] = {
            "pre-train": probe.probe(cache, pre, step, sets["gt"], fc7, cfg.protocol)["fc7"],
            "ft": probe.probe(cache, run, None, sets["gt"], fc7, cfg.protocol)["fc7"],
        }
    nets_val = {
        f"{t}/{r}": ft_runs[(t, r)].result["val_top1"] for t in ("det", "scene") for r in REGIMES
    }
    return jsonable({"gt": gt, "scene": scene, "table4": table4, "finetune_val_top1": nets_val})


def transfer_findings(tra) -> tuple[list[Section], list[Finding]]:
    res = tra["result"]
    gt = {
        net: score(res["gt"], net, "fc7", "none") for net in ("scratch", "pre-train", "ft", "fc-ft")
    }
    scene = {net: score(res["scene"], net, "fc7", "none") for net in gt}
    rows = tuple(
        (net, scene[net], PAPER_T12["scene"][net], gt[net], PAPER_T12["gt"][net]) for net in gt
    )
    t12 = Section(
        "Tables 1 and 2: scratch, pre-trained, fine-tuned (ft) and fc-only (fc-ft)",
        "fc-7 linear probes of each network: SUN stand-in mean per-class accuracy, "
        "PASCAL-DET-GT stand-in mAP (the paper reports PASCAL-DET mAP).",
        (Table(("network", "SUN-like acc.", "paper SUN", "DET-GT-like mAP", "paper DET"), rows),),
    )
    per_layer = tuple(
        (layer, *[score(res["gt"], n, layer, "none") for n in ("pre-train", "ft", "fc-ft")])
        for layer in LAYERS
    )
    t24 = Section(
        "Thesis Table 2.4: GT-box classification per layer (mAP)",
        "",
        (Table(("layer", "pre-trained", "ft", "fc-ft"), per_layer),),
    )
    t4 = res["table4"]
    steps = sorted(t4, key=int)
    rows4 = (
        ("pre-train only", *[score(t4, s, "pre-train", "none") for s in steps]),
        ("fine-tuned", *[score(t4, s, "ft", "none") for s in steps]),
    )
    t4sec = Section(
        "Table 4: pre-training length x fine-tuning (DET-GT stand-in, fc-7 mAP)",
        "Paper (PASCAL-DET, 50k/105k/205k/305k): 50.2, 52.6, 55.3, 55.4.",
        (Table(("", *[f"{s} it." for s in steps]), rows4),),
    )
    findings = [
        Finding(
            "fc-ft is close to ft with little data (within 2 points on both targets)",
            bool(abs(gt["ft"] - gt["fc-ft"]) <= 2 and abs(scene["ft"] - scene["fc-ft"]) <= 2),
            f"DET-GT ft {gt['ft']:.1f} vs fc-ft {gt['fc-ft']:.1f}; SUN ft {scene['ft']:.1f} "
            f"vs fc-ft {scene['fc-ft']:.1f} (paper 54.1/53.3, 56.8/56.2)",
        ),
        Finding(
            "Pre-training beats training from scratch (both targets)",
            bool(gt["pre-train"] > gt["scratch"] and scene["pre-train"] > scene["scratch"]),
            f"DET-GT {gt['pre-train']:.1f} vs scratch {gt['scratch']:.1f}; SUN "
            f"{scene['pre-train']:.1f} vs scratch {scene['scratch']:.1f}",
        ),
        Finding(
            "Longer pre-training helps after fine-tuning too (Table 4)",
            bool(score(t4, steps[-1], "ft", "none") > score(t4, steps[0], "ft", "none")),
            " -> ".join(f"{score(t4, s, 'ft', 'none'):.1f}" for s in steps),
        ),
    ]
    return [t12, t24, t4sec], findings


# name (its stage), needs, run, report, weight of the ETA
ANALYSIS = Analysis(
    "probe-transfer", ("pretrain", "finetunes"), transfer_probes, transfer_findings, 1.5
)
