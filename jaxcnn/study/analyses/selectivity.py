"""Fig. 1, Tables 2.1, 5 and 6, Figs. 3-5: class selectivity before and after fine-tuning,
grandmother cells and distributed codes, sparsity (docs/methods.md §6-§8)."""

from __future__ import annotations

import numpy as np

from jaxcnn.documents import Finding, Section, Table, figure_if_exists, fmt
from jaxcnn.selectivity import compare_pair
from jaxcnn.selectivity.entropy import METHODS
from jaxcnn.study import runs
from jaxcnn.study.config import LAYERS
from jaxcnn.study.registry import Analysis, Context
from jaxcnn.verdicts import above, paired

PAPER_TABLE6 = dict(zip(LAYERS, (87.5, 44.5, 31.8, 32.0, 27.7, 16.1, 21.6), strict=True))
PAPER_T21 = {
    "pool-5 / conv5": (0.36, 1.85, 1.62),
    "relu-6 / fc6": (2.64, 4.27, 2.64),
    "relu-7 / fc7": (0.44, 7.78, 0.44),
}


def selectivity_run(ctx: Context, out_dir) -> dict:
    gt_sets = runs.feature_sets(ctx.cfg)["gt"]
    return compare_pair(
        ctx.cache,
        ctx.stages["pretrain"],
        ctx.runs[("det", "ft")],
        gt_sets,
        ctx.cfg.protocol,
        out_dir,
        resamples=ctx.cfg.probe_splits,
    )


def selectivity_findings(sel) -> tuple[list[Section], list[Finding]]:
    res, out = sel["result"], sel["out_dir"]
    t21 = res["table_2_1"]
    # The entropy methods in their defined order: a result read back from stage.json has its keys
    # sorted, a fresh one in the order they were computed; the table is the same either way.
    first = next(iter(t21.values()))
    methods = [m for m in METHODS if m in first] + sorted(set(first) - set(METHODS))
    rows = tuple(
        (layer, *[f"{t21[layer][m][q]:.2f}" for m in methods for q in range(4)]) for layer in t21
    )
    head = ("layer", *[f"{m} {q}" for m in methods for q in (0.1, 0.25, 0.5, 1.0)])
    full = {layer: float(np.mean([abs(t21[layer][m][3]) for m in methods])) for layer in t21}
    samples = res.get("change_resamples") or [full]
    fc = [max(r["fc6"], r["fc7"]) for r in samples]
    conv = [max(r[c] for c in LAYERS[:5]) for r in samples]
    f_sel = Finding(
        "Fine-tuning changes fc-6/fc-7 selectivity far more than conv layers",
        above(paired(fc, 2 * np.asarray(conv))),
        f"mean |MCAuE % decrease| at all filters over {len(samples)} bootstrap resample(s) of "
        f"the test boxes: fc6/fc7 max {fmt(fc, 2)}, conv max {fmt(conv, 2)} (holds if more "
        f"than twice)",
    )
    nets = res["nets"]
    needed = np.asarray(nets["ft"]["filters_needed"], float)  # [2, C]: 50 % and 90 %
    median90, min50 = float(np.median(needed[1])), float(np.min(needed[0]))
    f_gmc = Finding(
        "A few grandmother-like filters, but mostly distributed codes",
        bool(min50 <= 2 and median90 >= 10),
        f"fine-tuned conv5, one measurement (the greedy subsets are not repeated): fewest "
        f"filters for 50% of a class's AP {min50:.0f}; "
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
            figure_if_exists(
                out, "mcaue.png", "Fig. 1: MCAuE, pre-trained (dash-dot) vs fine-tuned (solid)"
            )
            + figure_if_exists(
                out, "aue_label.png", "Thesis Fig. 2-1: AuE distributions per layer"
            ),
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
            figure_if_exists(out, "top_pr.png", "Fig. 3: PR curves of the top-5 filters per class")
            + figure_if_exists(out, "ap_vs_filters.png", "Fig. 4: AP vs number of filters")
            + figure_if_exists(
                out, "overlap_ft.png", "Fig. 5: overlap of the top-50 filter sets (fine-tuned)"
            ),
        ),
        Section(
            "Table 6: sparsity (% non-zero per image, mean ± std)",
            "",
            (Table(("network", *LAYERS), sparsity),),
        ),
    ]
    return sections, [f_sel, f_gmc]


# name (its stage), needs, run, report, weight of the ETA
ANALYSIS = Analysis(
    "selectivity", ("pretrain", "finetune-det-ft"), selectivity_run, selectivity_findings, 0.4
)
