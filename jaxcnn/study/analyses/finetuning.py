"""Tables 1, 2 and 4, thesis Table 2.4: scratch, pre-trained, fine-tuned and fc-only networks
under fc-7 probes, GT-box probes per layer, and fine-tuning from earlier snapshots
(docs/methods.md §2.3, §4).

Three analyses, so that the PASCAL stand-in's probes start as soon as its fine-tunings are
done, while the SUN stand-in's networks still train, and the last ones are short:
``probe-transfer`` (GT-box fc-7 of every regime, Table 4), then ``probe-layers`` (Table 2.4's
layers below fc-7) and ``probe-regimes`` (SUN fc-7 of every regime; Tables 1 and 2 with the
GT-box numbers of ``probe-transfer``)."""

from __future__ import annotations

from jaxcnn import probe
from jaxcnn.documents import Finding, Section, Table, fmt, values
from jaxcnn.model import CONV_NAMES
from jaxcnn.storage import jsonable
from jaxcnn.study import runs
from jaxcnn.study.config import LAYERS, REGIMES
from jaxcnn.study.registry import Analysis, Context
from jaxcnn.verdicts import above, all_of, paired, within

NETS = ("scratch", "pre-train", "ft", "fc-ft")
PAPER_T12 = {
    "scene": {"scratch": 40.4, "pre-train": 53.1, "ft": 56.8, "fc-ft": 56.2},
    "gt": {"scratch": 40.7, "pre-train": 45.5, "ft": 54.1, "fc-ft": 53.3},
}


def _run_probe(ctx: Context, run, step, which, grid, splits=None):
    cfg = ctx.cfg
    splits = cfg.probe_splits if splits is None else splits
    sets = runs.feature_sets(cfg)[which]
    return probe.probe(ctx.cache, run, step, sets, grid, cfg.protocol, splits=splits)


def transfer_probes(ctx: Context, out_dir) -> dict:
    """GT-box fc-7 probes of every regime (Tables 1, 2) and of ft from earlier snapshots
    (Table 4)."""
    cfg, pre, ft_runs = ctx.cfg, ctx.stages["pretrain"], ctx.runs
    fc7 = [("fc7", "none")]
    nets = {"pre-train": pre, **{regime: ft_runs[("det", regime)] for regime in REGIMES}}
    gt = {net: _run_probe(ctx, run, None, "gt", fc7) for net, run in nets.items()}
    table4 = {}
    for step in (*cfg.table4_snapshots, cfg.pretrain_steps):
        run = ft_runs[("det", "ft", step)] if step != cfg.pretrain_steps else ft_runs[("det", "ft")]
        # Only the fine-tuned row decides a finding; the final snapshot's row is gt["pre-train"].
        splits = cfg.probe_splits if step == cfg.pretrain_steps else 1
        table4[step] = {
            "pre-train": _run_probe(ctx, pre, step, "gt", fc7, splits=splits)["fc7"],
            "ft": _run_probe(ctx, run, None, "gt", fc7)["fc7"],
        }
    nets_val = {f"det/{r}": ft_runs[("det", r)].result["val_top1"] for r in REGIMES}
    return jsonable({"gt": gt, "table4": table4, "finetune_val_top1": nets_val})


def layer_probes(ctx: Context, out_dir) -> dict:
    """Thesis Table 2.4: GT-box probes of the layers below fc-7 of the pre-trained, ft and fc-ft
    networks on split 0 (they decide no finding; docs/methods.md §4.6), beside fc-7 from
    ``probe-transfer``. conv1-5 of fc-ft, whose conv parameters equal the pre-trained
    network's (fc-ft freezes them), are the pre-trained network's cells: equal parameters give
    equal features and scores."""
    pre, ft_runs = ctx.stages["pretrain"], ctx.runs
    nets = {"pre-train": pre, "ft": ft_runs[("det", "ft")], "fc-ft": ft_runs[("det", "fc-ft")]}
    fc7 = ctx.stages["probe-transfer"].result["gt"]
    gt = {}
    for net, run in nets.items():
        own, shared = [layer for layer in LAYERS if layer != "fc7"], {}
        if net == "fc-ft" and runs.same_layers(run, pre, CONV_NAMES):
            shared = {layer: gt["pre-train"][layer] for layer in CONV_NAMES}
            own = [layer for layer in own if layer not in CONV_NAMES]
        grid = [(layer, "none") for layer in own]
        gt[net] = {**shared, **_run_probe(ctx, run, None, "gt", grid, splits=1)}
    return jsonable({"gt": {net: {**gt[net], "fc7": fc7[net]["fc7"]} for net in nets}})


def regime_probes(ctx: Context, out_dir) -> dict:
    """fc-7 probes of every regime on the SUN stand-in (Tables 1, 2), beside the GT-box fc-7
    numbers of ``probe-transfer``."""
    pre, ft_runs = ctx.stages["pretrain"], ctx.runs
    fc7 = [("fc7", "none")]
    scene = {"pre-train": _run_probe(ctx, pre, None, "scene", fc7)}
    for regime in REGIMES:
        scene[regime] = _run_probe(ctx, ft_runs[("scene", regime)], None, "scene", fc7)
    gt = ctx.stages["probe-transfer"].result["gt"]
    nets_val = {f"scene/{r}": ft_runs[("scene", r)].result["val_top1"] for r in REGIMES}
    return jsonable(
        {
            "gt": {net: {"fc7": gt[net]["fc7"]} for net in NETS},
            "scene": scene,
            "finetune_val_top1": nets_val,
        }
    )


def layer_findings(lay) -> tuple[list[Section], list[Finding]]:
    """Thesis Table 2.4 (it decides no finding)."""
    gt = lay["result"]["gt"]
    per_layer = tuple(
        (layer, *[fmt(values(gt, n, layer, "none")) for n in ("pre-train", "ft", "fc-ft")])
        for layer in LAYERS
    )
    t24 = Section(
        "Thesis Table 2.4: GT-box classification per layer (mAP)",
        "fc-7 over the probe splits; the layers below it on split 0 only (they decide no finding).",
        (Table(("layer", "pre-trained", "ft", "fc-ft"), per_layer),),
    )
    return [t24], []


def transfer_findings(tra) -> tuple[list[Section], list[Finding]]:
    """Table 4 and its finding."""
    t4 = tra["result"]["table4"]
    steps = sorted(t4, key=int)
    rows4 = (
        ("pre-train only", *[fmt(values(t4, s, "pre-train", "none")) for s in steps]),
        ("fine-tuned", *[fmt(values(t4, s, "ft", "none")) for s in steps]),
    )
    t4sec = Section(
        "Table 4: pre-training length x fine-tuning (DET-GT stand-in, fc-7 mAP)",
        "Paper (PASCAL-DET, 50k/105k/205k/305k): 50.2, 52.6, 55.3, 55.4. The pre-trained row "
        "before the last snapshot is split 0 alone (it decides no finding).",
        (Table(("", *[f"{s} it." for s in steps]), rows4),),
    )
    t4_first, t4_last = values(t4, steps[0], "ft", "none"), values(t4, steps[-1], "ft", "none")
    t4_gain = paired(t4_last, t4_first)
    finding = Finding(
        "Longer pre-training helps after fine-tuning too (Table 4)",
        above(t4_gain),
        f"{fmt(t4_first)} -> {fmt(t4_last)} (gain {fmt(list(t4_gain))})",
    )
    return [t4sec], [finding]


def regime_findings(reg) -> tuple[list[Section], list[Finding]]:
    """Tables 1 and 2 and their findings (fc-ft close to ft; pre-training beats scratch)."""
    res = reg["result"]
    gt = {net: values(res["gt"], net, "fc7", "none") for net in NETS}
    scene = {net: values(res["scene"], net, "fc7", "none") for net in NETS}
    rows = tuple(
        (net, fmt(scene[net]), PAPER_T12["scene"][net], fmt(gt[net]), PAPER_T12["gt"][net])
        for net in NETS
    )
    t12 = Section(
        "Tables 1 and 2: scratch, pre-trained, fine-tuned (ft) and fc-only (fc-ft)",
        "fc-7 linear probes of each network: SUN stand-in mean per-class accuracy, "
        "PASCAL-DET-GT stand-in mAP (the paper reports PASCAL-DET mAP).",
        (Table(("network", "SUN-like acc.", "paper SUN", "DET-GT-like mAP", "paper DET"), rows),),
    )
    d_gt, d_scene = paired(gt["ft"], gt["fc-ft"]), paired(scene["ft"], scene["fc-ft"])
    p_gt, p_scene = (
        paired(gt["pre-train"], gt["scratch"]),
        paired(scene["pre-train"], scene["scratch"]),
    )
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
    ]
    return [t12], findings


# name (its stage), needs, run, report, weight of the ETA (report order: Tables 1-2, 2.4, 4)
ANALYSIS = Analysis(
    "probe-transfer", ("pretrain", "finetunes-det"), transfer_probes, transfer_findings, 1.0
)
LAYERS_ANALYSIS = Analysis(
    "probe-layers",
    ("pretrain", "finetunes-det"),
    layer_probes,
    layer_findings,
    0.2,
    priority=1,  # before probe-regimes, which is shorter
    after=("probe-transfer",),
)
REGIMES_ANALYSIS = Analysis(
    "probe-regimes",
    ("pretrain", "finetunes"),
    regime_probes,
    regime_findings,
    0.4,
    after=("probe-transfer",),
)
