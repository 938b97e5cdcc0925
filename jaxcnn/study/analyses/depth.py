"""Table 3, Fig. 2 and CKA: probes of every layer at every pre-training snapshot, the conv-1
filters per snapshot, and how each layer converges (docs/methods.md §4, §8.1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxcnn import probe
from jaxcnn.documents import Finding, Section, Table, figure_if_exists
from jaxcnn.model import plots as model_plots
from jaxcnn.probe import plots as probe_plots
from jaxcnn.selectivity import cka, plots
from jaxcnn.storage import checkpoints, jsonable
from jaxcnn.study import runs
from jaxcnn.study.config import LAYERS
from jaxcnn.study.registry import Analysis, Context, probe_config

PAPER_TABLE3 = dict(zip(LAYERS, (25.1, 45.3, 50.7, 54.5, 65.6, 71.7, 74.1), strict=True))


def _cka_batches(x, max_batch: int = 250):
    """[N, ...] features -> [B, batch, D] minibatches (the remainder is dropped); batches of at
    least 8 rows, as the unbiased HSIC estimator needs n >= 4 per batch."""
    batch = min(max_batch, max(8, x.shape[0] // 4))
    n = (x.shape[0] // batch) * batch
    return np.asarray(x[:n], np.float32).reshape(n // batch, batch, -1)


def snapshot_probes(ctx: Context, out_dir: Path) -> dict:
    """Table 3 (probe mAP per layer and snapshot), CKA of each snapshot to the final network,
    conv-1 filters at each snapshot (Fig. 2)."""
    cfg, cache, pre = ctx.cfg, ctx.cache, ctx.stages["pretrain"]
    steps = runs.snapshot_steps(pre)
    sets = runs.feature_sets(cfg)["cls"]
    grid = [(layer, "none") for layer in LAYERS]
    table = {s: probe.probe(cache, pre, s, sets, grid, cfg.protocol) for s in steps}
    final = cache.get(pre, steps[-1], sets[1])
    ref = {layer: _cka_batches(final["taps"][layer]) for layer in LAYERS}
    snaps = {
        str(s): {layer: _cka_batches(cache.get(pre, s, sets[1])["taps"][layer]) for layer in LAYERS}
        for s in steps
    }
    layers, names, matrix = cka.cka_matrix(ref, snaps)
    plots.plot_cka_heatmap(
        matrix,
        layers,
        names,
        out_dir / "cka_snapshots.png",
        title="Linear CKA of each snapshot to the final network",
    )
    values = {layer: [table[s][layer]["none"] for s in steps] for layer in LAYERS}
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
            "cka": {"layers": layers, "names": names, "matrix": matrix},
        }
    )


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
    2.0,
    config=lambda cfg: {"protocol": cfg.protocol, **probe_config(cfg)},
)
