"""Tables 1, 2 and 4, thesis Table 2.4: scratch, pre-trained, fine-tuned and fc-only networks
under fc-7 probes, GT-box probes per layer, and fine-tuning from earlier snapshots
(docs/methods.md §2.3, §4)."""

from __future__ import annotations

from jaxcnn import probe
from jaxcnn.documents import Finding, Section, Table, fmt, values
from jaxcnn.model import CONV_NAMES
from jaxcnn.storage import jsonable
from jaxcnn.study import runs
from jaxcnn.study.config import LAYERS, REGIMES
from jaxcnn.study.registry import Analysis, Context
from jaxcnn.verdicts import above, all_of, paired, within

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
    fc7 = [("fc7", "none")]
    below_fc7 = [(layer, "none") for layer in LAYERS if layer != "fc7"]

    def run_probe(run, step, which, grid, splits=cfg.probe_splits):
        return probe.probe(cache, run, step, sets[which], grid, cfg.protocol, splits=splits)

    def per_layer(run, convs_of=None):
        """fc7 (it decides findings) on every split, the layers below it on split 0 only
        (thesis Table 2.4 decides none; docs/methods.md §4.6). conv1-5 of a network whose conv
        parameters equal those of `convs_of` (fc-ft freezes them) are `convs_of`'s cells:
        equal parameters give equal features and scores."""
        below = below_fc7
        reused = {}
        if convs_of is not None and runs.same_layers(run, convs_of, CONV_NAMES):
            reused = run_probe(convs_of, None, "gt", [(c, "none") for c in CONV_NAMES], splits=1)
            below = [cell for cell in below_fc7 if cell[0] not in CONV_NAMES]
        return {
            **reused,
            **run_probe(run, None, "gt", below, splits=1),
            **run_probe(run, None, "gt", fc7),
        }

    gt = {"pre-train": per_layer(pre)}
    gt["ft"] = per_layer(ft_runs[("det", "ft")])
    gt["fc-ft"] = per_layer(ft_runs[("det", "fc-ft")], convs_of=pre)
    gt["scratch"] = run_probe(ft_runs[("det", "scratch")], None, "gt", fc7)
    scene = {"pre-train": run_probe(pre, None, "scene", fc7)}
    for regime in REGIMES:
        scene[regime] = run_probe(ft_runs[("scene", regime)], None, "scene", fc7)
    table4 = {}
    for step in (*cfg.table4_snapshots, cfg.pretrain_steps):
        run = ft_runs[("det", "ft", step)] if step != cfg.pretrain_steps else ft_runs[("det", "ft")]
        table4[step] = {
            "pre-train": run_probe(pre, step, "gt", fc7)["fc7"],
            "ft": run_probe(run, None, "gt", fc7)["fc7"],
        }
    nets_val = {
        f"{t}/{r}": ft_runs[(t, r)].result["val_top1"] for t in ("det", "scene") for r in REGIMES
    }
    return jsonable({"gt": gt, "scene": scene, "table4": table4, "finetune_val_top1": nets_val})


def transfer_findings(tra) -> tuple[list[Section], list[Finding]]:
    res = tra["result"]
    nets = ("scratch", "pre-train", "ft", "fc-ft")
    gt = {net: values(res["gt"], net, "fc7", "none") for net in nets}
    scene = {net: values(res["scene"], net, "fc7", "none") for net in nets}
    rows = tuple(
        (net, fmt(scene[net]), PAPER_T12["scene"][net], fmt(gt[net]), PAPER_T12["gt"][net])
        for net in nets
    )
    t12 = Section(
        "Tables 1 and 2: scratch, pre-trained, fine-tuned (ft) and fc-only (fc-ft)",
        "fc-7 linear probes of each network: SUN stand-in mean per-class accuracy, "
        "PASCAL-DET-GT stand-in mAP (the paper reports PASCAL-DET mAP).",
        (Table(("network", "SUN-like acc.", "paper SUN", "DET-GT-like mAP", "paper DET"), rows),),
    )
    per_layer = tuple(
        (layer, *[fmt(values(res["gt"], n, layer, "none")) for n in ("pre-train", "ft", "fc-ft")])
        for layer in LAYERS
    )
    t24 = Section(
        "Thesis Table 2.4: GT-box classification per layer (mAP)",
        "fc-7 over the probe splits; the layers below it on split 0 only (they decide no finding).",
        (Table(("layer", "pre-trained", "ft", "fc-ft"), per_layer),),
    )
    t4 = res["table4"]
    steps = sorted(t4, key=int)
    rows4 = (
        ("pre-train only", *[fmt(values(t4, s, "pre-train", "none")) for s in steps]),
        ("fine-tuned", *[fmt(values(t4, s, "ft", "none")) for s in steps]),
    )
    t4sec = Section(
        "Table 4: pre-training length x fine-tuning (DET-GT stand-in, fc-7 mAP)",
        "Paper (PASCAL-DET, 50k/105k/205k/305k): 50.2, 52.6, 55.3, 55.4.",
        (Table(("", *[f"{s} it." for s in steps]), rows4),),
    )
    d_gt, d_scene = paired(gt["ft"], gt["fc-ft"]), paired(scene["ft"], scene["fc-ft"])
    p_gt, p_scene = (
        paired(gt["pre-train"], gt["scratch"]),
        paired(scene["pre-train"], scene["scratch"]),
    )
    t4_first, t4_last = values(t4, steps[0], "ft", "none"), values(t4, steps[-1], "ft", "none")
    t4_gain = paired(t4_last, t4_first)
    findings = [
        Finding(
            "fc-ft is close to ft with little data (within 2 points on both targets)",
            all_of(within(d_gt, 2.0), within(d_scene, 2.0)),
            f"ft - fc-ft: DET-GT {fmt(list(d_gt))} ({fmt(gt['ft'])} vs {fmt(gt['fc-ft'])}); "
            f"SUN {fmt(list(d_scene))} ({fmt(scene['ft'])} vs {fmt(scene['fc-ft'])}) "
            f"(paper 54.1/53.3, 56.8/56.2)",
        ),
        Finding(
            "Pre-training beats training from scratch (both targets)",
            all_of(above(p_gt), above(p_scene)),
            f"pre-train - scratch: DET-GT {fmt(list(p_gt))} ({fmt(gt['pre-train'])} vs "
            f"{fmt(gt['scratch'])}); SUN {fmt(list(p_scene))} ({fmt(scene['pre-train'])} vs "
            f"{fmt(scene['scratch'])})",
        ),
        Finding(
            "Longer pre-training helps after fine-tuning too (Table 4)",
            above(t4_gain),
            f"{fmt(t4_first)} -> {fmt(t4_last)} (gain {fmt(list(t4_gain))})",
        ),
    ]
    return [t12, t24, t4sec], findings


# name (its stage), needs, run, report, weight of the ETA
ANALYSIS = Analysis(
    "probe-transfer", ("pretrain", "finetunes"), transfer_probes, transfer_findings, 1.03
)
