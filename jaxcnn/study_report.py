"""The study's report: one section per table and figure of the paper, this run's numbers beside
the paper's (SPEC §12), and the findings checklist, each verdict computed from the numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxcnn import report
from jaxcnn.report import Figure, Finding, Section, Table

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
PAPER_TABLE3 = dict(zip(LAYERS, (25.1, 45.3, 50.7, 54.5, 65.6, 71.7, 74.1), strict=True))
PAPER_TABLE6 = dict(zip(LAYERS, (87.5, 44.5, 31.8, 32.0, 27.7, 16.1, 21.6), strict=True))
PAPER_TABLE7 = {
    ("conv5", "none"): 65.6,
    ("fc7", "none"): 74.1,
    ("fc7", "binarize"): 73.7,
    ("conv5", "binarize"): 60.8,
    ("conv5", "sp-max"): 62.5,
    ("conv5", "sp-shuffle"): 59.5,
}
PAPER_TABLE8 = {"none": 47.6, "binarize": 45.7, "sp-max": 25.4}
PAPER_T12 = {
    "scene": {"scratch": 40.4, "pre-train": 53.1, "ft": 56.8, "fc-ft": 56.2},
    "gt": {"scratch": 40.7, "pre-train": 45.5, "ft": 54.1, "fc-ft": 53.3},
}
PAPER_T21 = {
    "pool-5 / conv5": (0.36, 1.85, 1.62),
    "relu-6 / fc6": (2.64, 4.27, 2.64),
    "relu-7 / fc7": (0.44, 7.78, 0.44),
}
STAND_IN = (
    "This run uses the embedded default, toyworld (a generated stand-in for ImageNet, "
    "PASCAL VOC and SUN397) and a small network of CaffeNet's topology, so its numbers "
    "are not expected to match the paper's; the findings are what can be compared."
)


def _score(d, *keys):
    for k in keys:
        if d is None:
            return float("nan")
        d = d.get(k)
    return float("nan") if d is None else float(d)


def _fig(stage_dir, name, caption):
    path = Path(stage_dir) / name
    return (Figure(path, caption),) if path.exists() else ()


def depth_findings(snap) -> tuple[Section, list[Finding]]:
    steps = [str(s) for s in snap["result"]["steps"]]
    table = snap["result"]["map"]
    rows = tuple(
        (layer, *[table[s][layer] for s in steps], PAPER_TABLE3[layer]) for layer in LAYERS
    )
    final = {layer: table[steps[-1]][layer] for layer in LAYERS}
    rises = sum(final[a] <= final[b] for a, b in zip(LAYERS, LAYERS[1:], strict=False))
    f_depth = Finding(
        "Probe mAP rises with depth (Table 3, last column)",
        bool(final["fc7"] > final["conv5"] > final["conv1"] and rises >= 5),
        "; ".join(f"{k} {v:.1f}" for k, v in final.items())
        + f" ({rises}/6 consecutive layers non-decreasing)",
    )
    first_fc7, last_fc7 = table[steps[0]]["fc7"], table[steps[-1]]["fc7"]
    f_long = Finding(
        "Longer pre-training helps (Table 3)",
        bool(last_fc7 > first_fc7 + 1.0),
        f"fc7 mAP {first_fc7:.1f} at {steps[0]} it. -> {last_fc7:.1f} at {steps[-1]} it.",
    )
    cka = snap["result"]["cka"]
    matrix = np.asarray(cka["matrix"], float)
    rhos = [_spearman(np.arange(len(LAYERS)), matrix[:, j]) for j in range(matrix.shape[1] - 1)]
    rhos = [r for r in rhos if np.isfinite(r)]
    rho = float(np.mean(rhos)) if rhos else float("nan")
    f_bottom = Finding(
        "Layers converge bottom-up (CKA of each snapshot to the final net)",
        None if np.isnan(rho) else bool(rho < -0.5),
        f"mean Spearman correlation of layer depth with CKA over the "
        f"intermediate snapshots: {rho:.2f} (< -0.5 holds)",
    )
    sec = Section(
        "Table 3: PASCAL-CLS stand-in probe mAP vs pre-training iteration",
        "Linear SVM probe (VOC07 protocol) on each layer of each pre-training snapshot.",
        (Table(("layer", *[f"{s} it." for s in steps], "paper 305k"), rows),),
        _fig(snap["out_dir"], "map_vs_iteration.png", "Probe mAP vs iteration")
        + _fig(snap["out_dir"], "conv1_evolution.png", "Fig. 2: conv-1 filters at each snapshot")
        + _fig(
            snap["out_dir"],
            "cka_snapshots.png",
            "Linear CKA of each layer at each snapshot to the final network",
        ),
    )
    return sec, [f_depth, f_long, f_bottom]


def _spearman(a, b) -> float:
    if np.any(~np.isfinite(b)) or np.std(b) == 0:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def ablation_findings(abl) -> tuple[Section, list[Finding]]:
    cls, scene = abl["result"]["cls"], abl["result"]["scene"]
    names = ("none", "binarize", "sp-shuffle", "sp-max", "sp-max-bin")
    rows = tuple((layer, *[cls[layer].get(a) for a in names]) for layer in LAYERS)
    paper = tuple(
        (
            f"paper {lay}",
            *[PAPER_TABLE7.get((lay, a)) for a in names],
        )
        for lay in ("conv5", "fc7")
    )
    srows = tuple((layer, *[scene[layer].get(a) for a in names]) for layer in ("conv5", "fc7"))
    drop = lambda t, lay, a: _score(t, lay, "none") - _score(t, lay, a)  # noqa: E731
    bin_drop = max(drop(cls, "fc7", "binarize"), drop(cls, "conv5", "binarize"))
    f_bin = Finding(
        "Binarisation costs little (< 5 mAP points at conv5 and fc7)",
        bool(bin_drop < 5.0),
        f"drop fc7 {drop(cls, 'fc7', 'binarize'):.1f}, conv5 "
        f"{drop(cls, 'conv5', 'binarize'):.1f} (paper 0.4, 4.8)",
    )
    c_drop, s_drop = drop(cls, "conv5", "sp-max"), drop(scene, "conv5", "sp-max")
    f_spmax = Finding(
        "sp-max costs little for classification but much where layout matters",
        bool(c_drop < 5.0 and s_drop > max(3.0, 2 * c_drop)),
        f"conv5 sp-max drop: PASCAL-CLS stand-in {c_drop:.1f}, SUN stand-in (categories "
        f"defined by layout) {s_drop:.1f} (paper: CLS 3.1, DET 22.2; holds if CLS < 5 and "
        f"layout > max(3, 2 x CLS))",
    )
    sec = Section(
        "Table 7: feature ablations on the PASCAL-CLS stand-in (mAP)",
        "",
        (
            Table(("layer", *names), rows + paper),
            Table(
                ("layer", *names),
                srows,
                "SUN stand-in, mean per-class accuracy (%); paper Table 8 (PASCAL-DET "
                "conv-5 mAP): " + ", ".join(f"{k} {v}" for k, v in PAPER_TABLE8.items()),
            ),
        ),
    )
    return sec, [f_bin, f_spmax]


def transfer_findings(tra) -> tuple[list[Section], list[Finding]]:
    res = tra["result"]
    gt = {
        net: _score(res["gt"], net, "fc7", "none")
        for net in ("scratch", "pre-train", "ft", "fc-ft")
    }
    scene = {net: _score(res["scene"], net, "fc7", "none") for net in gt}
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
        (layer, *[_score(res["gt"], n, layer, "none") for n in ("pre-train", "ft", "fc-ft")])
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
        ("pre-train only", *[_score(t4, s, "pre-train", "none") for s in steps]),
        ("fine-tuned", *[_score(t4, s, "ft", "none") for s in steps]),
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
            bool(_score(t4, steps[-1], "ft", "none") > _score(t4, steps[0], "ft", "none")),
            " -> ".join(f"{_score(t4, s, 'ft', 'none'):.1f}" for s in steps),
        ),
    ]
    return [t12, t24, t4sec], findings


def selectivity_findings(sel) -> tuple[list[Section], list[Finding]]:
    res, out = sel["result"], sel["out_dir"]
    t21 = res["table_2_1"]
    methods = list(next(iter(t21.values())))
    rows = tuple(
        (layer, *[f"{t21[layer][m][q]:.2f}" for m in methods for q in range(4)]) for layer in t21
    )
    head = ("layer", *[f"{m} {q}" for m in methods for q in (0.1, 0.25, 0.5, 1.0)])
    full = {layer: float(np.mean([abs(t21[layer][m][3]) for m in methods])) for layer in t21}
    fc, conv = max(full["fc6"], full["fc7"]), max(full[c] for c in LAYERS[:5])
    f_sel = Finding(
        "Fine-tuning changes fc-6/fc-7 selectivity far more than conv layers",
        bool(fc > 2 * conv),
        f"mean |MCAuE % decrease| at all filters: fc6/fc7 max {fc:.2f}, conv max "
        f"{conv:.2f} (holds if more than twice)",
    )
    nets = res["nets"]
    needed = np.asarray(nets["ft"]["filters_needed"], float)  # [2, C]: 50 % and 90 %
    median90, min50 = float(np.median(needed[1])), float(np.min(needed[0]))
    f_gmc = Finding(
        "A few grandmother-like filters, but mostly distributed codes",
        bool(min50 <= 2 and median90 >= 10),
        f"fine-tuned conv5: fewest filters for 50% of a class's AP {min50:.0f}; "
        f"median over classes for 90%: {median90:.0f} (paper: 30-40 for most "
        f"classes, a few with single strong filters)",
    )
    sparsity = tuple(
        (
            net,
            *[
                f"{nets[net]['sparsity'][la][0]:.1f} ± {nets[net]['sparsity'][la][1]:.1f}"
                for la in LAYERS
            ],
        )
        for net in ("pre", "ft")
    ) + (("paper", *[PAPER_TABLE6[la] for la in LAYERS]),)
    names = res["class_names"]
    t5 = tuple(
        (f"{net} {q}", *[int(v) for v in nets[net]["filters_needed"][i]])
        for net in ("pre", "ft")
        for i, q in enumerate(("50%", "90%"))
    )
    sections = [
        Section(
            "Fig. 1 and Table 2.1: class selectivity (MCAuE) before and after fine-tuning",
            "Entropy curves of every filter on GT boxes (100 thresholds from each filter's "
            "minimum to its maximum, entropy in bits, area over x in [0, 1]); MCAuE percent "
            "decrease from pre-trained to fine-tuned. Paper (thesis Table 2.1, fraction 1.0, "
            "label / weighted / spMax): "
            + "; ".join(f"{k} {a} / {b} / {c}" for k, (a, b, c) in PAPER_T21.items())
            + ".",
            (Table(head, rows),),
            _fig(out, "mcaue.png", "Fig. 1: MCAuE, pre-trained (dash-dot) vs fine-tuned (solid)")
            + _fig(out, "aue_label.png", "Thesis Fig. 2-1: AuE distributions per layer"),
        ),
        Section(
            "Figs. 3-5 and Table 5: grandmother cells and distributed codes (conv-5 sp-max)",
            f"SVM cost for the filter subsets, chosen by 3-fold CV on training boxes: "
            f"{res['svm_c']}.",
            (
                Table(
                    ("network", *names), t5, "Table 5: filters needed for 50% / 90% of the full AP"
                ),
            ),
            _fig(out, "top_pr.png", "Fig. 3: PR curves of the top-5 filters per class")
            + _fig(out, "ap_vs_filters.png", "Fig. 4: AP vs number of filters")
            + _fig(out, "overlap_ft.png", "Fig. 5: overlap of the top-50 filter sets (fine-tuned)"),
        ),
        Section(
            "Table 6: sparsity (% non-zero per image, mean ± std)",
            "",
            (Table(("network", *LAYERS), sparsity),),
        ),
    ]
    return sections, [f_sel, f_gmc]


def write(root, results: dict, timings) -> tuple[Path, Path]:
    """Build every section from the stage results and write report.md / report.html."""
    stage = lambda s: {"result": s.result, "out_dir": s.out_dir}  # noqa: E731
    s3, f3 = depth_findings(stage(results["snapshots"]))
    s7, f7 = ablation_findings(stage(results["ablations"]))
    st, ft = transfer_findings(stage(results["transfer"]))
    ss, fs = selectivity_findings(stage(results["selectivity"]))
    findings = f3 + f7 + ft + fs
    timing_rows = tuple(
        (name, f"{sec:.1f}", "cached" if cached else "ran") for name, sec, cached in timings
    )
    total = sum(sec for _, sec, _ in timings)
    pre_val = results["pretrain"].result.get("val_top1")
    ft_val = results["transfer"].result.get("finetune_val_top1") or {}
    vals = ", ".join(f"{k} {v:.3f}" for k, v in ft_val.items() if v is not None)
    intro = Section(
        "Setup",
        STAND_IN
        + "\n\nValidation top-1 of the networks' own classifiers: pre-training "
        + ("–" if pre_val is None else f"{pre_val:.3f}")
        + f"; fine-tuning: {vals}.",
    )
    sections = [
        intro,
        Section("Findings checklist", findings=tuple(findings)),
        s3,
        s7,
        *st,
        *ss,
        Section(
            "Stage timings",
            f"Total {total:.0f} s (stage run times; cached "
            "stages show the time of the run that made them).",
            (Table(("stage", "seconds", "this call"), timing_rows),),
        ),
    ]
    return report.write_report(Path(root), "jaxcnn study report", sections)
