"""Table 3, Fig. 2 and CKA: probes of every layer at every pre-training snapshot, the conv-1
filters per snapshot, and how each layer converges (docs/methods.md §4, §8.1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxcnn import probe
from jaxcnn.documents import Finding, Section, Table, figure_if_exists, fmt
from jaxcnn.model import plots as model_plots
from jaxcnn.probe import plots as probe_plots
from jaxcnn.selectivity import cka, plots
from jaxcnn.storage import checkpoints, jsonable
from jaxcnn.study import runs
from jaxcnn.study.config import LAYERS
from jaxcnn.study.registry import Analysis, Context, probe_config
from jaxcnn.verdicts import above, all_of, below, paired

# The layers whose probes decide a finding (`depth_findings`), at the final and first snapshot.
DECIDING = {"final": ("conv1", "conv5", "fc7"), "first": ("fc7",)}
PAPER_TABLE3 = dict(zip(LAYERS, (25.1, 45.3, 50.7, 54.5, 65.6, 71.7, 74.1), strict=True))


def _cka_batches(x, max_batch: int = 50):
    """[N, ...] features -> [B, batch, D] minibatches (the remainder is dropped); batches of at
    least 8 rows, as the unbiased HSIC estimator needs n >= 4 per batch."""
    batch = min(max_batch, max(8, x.shape[0] // 4))
    n = (x.shape[0] // batch) * batch
    return np.asarray(x[:n], np.float32).reshape(n // batch, batch, -1)


def _bottom_up_rho(matrix) -> float:
    """Mean over the intermediate snapshots (all but the last column) of the Spearman
    correlation of layer depth with CKA to the final network; NaN if none is defined."""
    matrix = np.asarray(matrix, float)
    rhos = [_spearman(np.arange(matrix.shape[0]), matrix[:, j]) for j in range(matrix.shape[1] - 1)]
    rhos = [r for r in rhos if np.isfinite(r)]
    return float(np.mean(rhos)) if rhos else float("nan")


def _cka(ref, snaps, pick=slice(None)):
    return cka.cka_matrix(
        {la: v[pick] for la, v in ref.items()},
        {s: {la: v[pick] for la, v in d.items()} for s, d in snaps.items()},
    )


def snapshot_probes(ctx: Context, out_dir: Path) -> dict:
    """Table 3 (probe mAP per layer and snapshot, over `probe_splits` splits), CKA of each
    snapshot to the final network (all test images, and the bottom-up correlation on
    `probe_splits` disjoint subsets of their minibatches), conv-1 filters per snapshot (Fig. 2)."""
    cfg, cache, pre = ctx.cfg, ctx.cache, ctx.stages["pretrain"]
    steps = runs.snapshot_steps(pre)
    sets = runs.feature_sets(cfg)["cls"]
    k = cfg.probe_splits

    def layers_at(step):
        """Every split where a finding reads the cell (`DECIDING`: conv1, conv5 and fc7 of the
        final snapshot, fc7 of the first); split 0 only for the rest of Table 3
        (docs/methods.md §4.6)."""
        deciding = DECIDING["final"] if step == steps[-1] else ()
        deciding += DECIDING["first"] if step == steps[0] else ()
        grid = [(layer, "none") for layer in LAYERS]
        many = [cell for cell in grid if cell[0] in deciding]
        once = [cell for cell in grid if cell[0] not in deciding]
        return {
            **probe.probe(cache, pre, step, sets, once, cfg.protocol, splits=1),
            **probe.probe(cache, pre, step, sets, many, cfg.protocol, splits=k),
        }

    table = {s: layers_at(s) for s in steps}
    final = cache.get(pre, steps[-1], sets[1])
    ref = {layer: _cka_batches(final["taps"][layer]) for layer in LAYERS}
    snaps = {
        str(s): {layer: _cka_batches(cache.get(pre, s, sets[1])["taps"][layer]) for layer in LAYERS}
        for s in steps
    }
    layers, names, matrix = _cka(ref, snaps)
    rho_subsets = [_bottom_up_rho(_cka(ref, snaps, slice(i, None, k))[2]) for i in range(k)]
    plots.plot_cka_heatmap(
        matrix,
        layers,
        names,
        out_dir / "cka_snapshots.png",
        title="Linear CKA of each snapshot to the final network",
    )
    values = {layer: [float(np.mean(table[s][layer]["none"])) for s in steps] for layer in LAYERS}
    probe_plots.plot_metric_vs_iteration(steps, values, out_dir / "map_vs_iteration.png")
    grids = {
        f"{s} it.": model_plots.conv1_filter_grid(
            checkpoints.restore_params(pre.result["run_dir"], s)["conv1"]["kernel"]
        )
        for s in steps
    }
    model_plots.plot_filter_grids(grids, out_dir / "conv1_evolution.png")
    return jsonable(
        {
            "steps": steps,
            "map": {s: {la: table[s][la]["none"] for la in LAYERS} for s in steps},
            "cka": {"layers": layers, "names": names, "matrix": matrix, "rho": rho_subsets},
        }
    )


def depth_findings(snap) -> tuple[Section, list[Finding]]:
    steps = [str(s) for s in snap["result"]["steps"]]
    table = snap["result"]["map"]
    rows = tuple(
        (layer, *[fmt(table[s][layer]) for s in steps], PAPER_TABLE3[layer]) for layer in LAYERS
    )
    final = {layer: table[steps[-1]][layer] for layer in LAYERS}
    top, mid = paired(final["fc7"], final["conv5"]), paired(final["conv5"], final["conv1"])
    f_depth = Finding(
        "Probe mAP rises with depth (Table 3, last column: conv1 < conv5 < fc7)",
        all_of(above(top), above(mid)),
        "; ".join(f"{k} {fmt(v)}" for k, v in final.items())
        + f"; fc7 - conv5 {fmt(list(top))}, conv5 - conv1 {fmt(list(mid))}",
    )
    gain = paired(table[steps[-1]]["fc7"], table[steps[0]]["fc7"])
    f_long = Finding(
        "Longer pre-training helps (Table 3)",
        above(gain),
        f"fc7 mAP {fmt(table[steps[0]]['fc7'])} at {steps[0]} it. -> "
        f"{fmt(table[steps[-1]]['fc7'])} at {steps[-1]} it. (gain {fmt(list(gain))})",
    )
    rho = snap["result"]["cka"].get("rho")
    f_bottom = Finding(
        "Layers converge bottom-up (CKA of each snapshot to the final net)",
        below(rho, -0.5) if rho else None,
        f"mean Spearman correlation of layer depth with CKA over the intermediate snapshots, "
        f"on disjoint image subsets: {fmt(rho, 2)} (holds below -0.5)",
    )
    sec = Section(
        "Table 3: PASCAL-CLS stand-in probe mAP vs pre-training iteration",
        "Linear SVM probe (VOC07 protocol) on each layer of each pre-training snapshot; mean "
        "± std over the probe splits for conv-1, conv-5 and fc-7 of the last snapshot and fc-7 "
        "of the first (they decide findings), split 0 alone elsewhere.",
        (Table(("layer", *[f"{s} it." for s in steps], "paper 305k"), rows),),
        figure_if_exists(snap["out_dir"], "map_vs_iteration.png", "Probe mAP vs iteration")
        + figure_if_exists(
            snap["out_dir"], "conv1_evolution.png", "Fig. 2: conv-1 filters at each snapshot"
        )
        + figure_if_exists(
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


# name (its stage), needs, run, report, weight of the ETA
ANALYSIS = Analysis(
    "probe-snapshots",
    ("pretrain",),
    snapshot_probes,
    depth_findings,
    0.3,
    config=lambda cfg: {"protocol": cfg.protocol, **probe_config(cfg)},
)
