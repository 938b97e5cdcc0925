"""`run_study`: the paper's study end to end as cached stages (see `jaxcnn.study`).

Stages: data -> pretrain (snapshots) -> fine-tune {det, scene} x {ft, fc-ft, scratch} and ft
from earlier snapshots (Table 4) -> probes over snapshots (Table 3, CKA, conv-1 evolution) ->
probes over ablations (Table 7) -> transfer probes (Tables 1, 2, 4, thesis 2.4) -> selectivity
(Tables 2.1, 5, 6, Figs. 1, 3-5) -> report. Each analysis stage returns plain JSON numbers and
writes its figures into its folder.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jaxcnn import checkpoints, stages, study, study_report, training_log
from jaxcnn.analysis import cka, plots
from jaxcnn.analysis import selectivity as sel
from jaxcnn.probe_runs import ablation_grid

log = logging.getLogger(__name__)

# Relative cost of the stages for the progress line's ETA (measured on the embedded default).
WEIGHTS = {
    "data": 1.0,
    "pretrain": 4.0,
    "finetune": 0.3,
    "probe-snapshots": 2.0,
    "probe-ablations": 1.0,
    "probe-transfer": 1.5,
    "selectivity": 1.0,
    "report": 0.1,
}


def _json(x):
    """numpy -> JSON-able (floats with NaN kept as None)."""
    if isinstance(x, dict):
        return {str(k): _json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return _json(x.tolist())
    if isinstance(x, float | np.floating):
        return None if np.isnan(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _cka_batches(x, max_batch: int = 250):
    """[N, ...] features -> [B, batch, D] minibatches (the remainder is dropped); batches of at
    least 8 rows, as the unbiased HSIC estimator needs n >= 4 per batch."""
    batch = min(max_batch, max(8, x.shape[0] // 4))
    n = (x.shape[0] // batch) * batch
    return np.asarray(x[:n], np.float32).reshape(n // batch, batch, -1)


def snapshot_probes(cfg, cache, pre, out_dir: Path) -> dict:
    """Table 3 (probe mAP per layer and snapshot), CKA of each snapshot to the final network,
    conv-1 filters at each snapshot (Fig. 2)."""
    steps = study.snapshot_steps(pre)
    sets = study.feature_sets(cfg)["cls"]
    grid = [(layer, "none") for layer in study.LAYERS]
    table = {s: study.probe(cache, pre, s, sets, grid, cfg.protocol) for s in steps}
    final = cache.get(pre, steps[-1], sets[1])
    ref = {layer: _cka_batches(final["taps"][layer]) for layer in study.LAYERS}
    snaps = {
        str(s): {
            layer: _cka_batches(cache.get(pre, s, sets[1])["taps"][layer]) for layer in study.LAYERS
        }
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
    values = {layer: [table[s][layer]["none"] for s in steps] for layer in study.LAYERS}
    plots.plot_metric_vs_iteration(steps, values, out_dir / "map_vs_iteration.png")
    grids = {
        f"{s} it.": plots.conv1_filter_grid(
            checkpoints.restore_params(pre.result["run_dir"], s)["conv1"]["kernel"]
        )
        for s in steps
    }
    plots.plot_filter_grids(grids, out_dir / "conv1_evolution.png")
    return _json(
        {
            "steps": steps,
            "map": {s: {la: table[s][la]["none"] for la in study.LAYERS} for s in steps},
            "cka": {"layers": layers, "names": names, "matrix": matrix},
        }
    )


def ablation_probes(cfg, cache, pre) -> dict:
    """Table 7 / thesis 5.1 on the PASCAL-CLS stand-in, and the same ablations of conv-5 and
    fc-7 on the SUN stand-in (whose categories depend on layout)."""
    sets = study.feature_sets(cfg)
    cls = study.probe(
        cache, pre, None, sets["cls"], ablation_grid(study.LAYERS, study.ABLATIONS), cfg.protocol
    )
    scene_grid = ablation_grid(("conv5", "fc7"), study.ABLATIONS)
    scene = study.probe(cache, pre, None, sets["scene"], scene_grid, cfg.protocol)
    return _json({"cls": cls, "scene": scene})


def transfer_probes(cfg, cache, pre, runs) -> dict:
    """GT-box probes per layer for pre-trained / ft / fc-ft (thesis Table 2.4), fc-7 probes of
    every regime on both targets (Tables 1, 2), ft from earlier snapshots (Table 4)."""
    sets = study.feature_sets(cfg)
    per_layer = [(layer, "none") for layer in study.LAYERS]
    fc7 = [("fc7", "none")]
    gt = {"pre-train": study.probe(cache, pre, None, sets["gt"], per_layer, cfg.protocol)}
    for regime in ("ft", "fc-ft"):
        gt[regime] = study.probe(
            cache, runs[("det", regime)], None, sets["gt"], per_layer, cfg.protocol
        )
    gt["scratch"] = study.probe(
        cache, runs[("det", "scratch")], None, sets["gt"], fc7, cfg.protocol
    )
    scene = {"pre-train": study.probe(cache, pre, None, sets["scene"], fc7, cfg.protocol)}
    for regime in study.REGIMES:
        scene[regime] = study.probe(
            cache, runs[("scene", regime)], None, sets["scene"], fc7, cfg.protocol
        )
    table4 = {}
    for step in (*cfg.table4_snapshots, cfg.pretrain_steps):
        run = runs[("det", "ft", step)] if step != cfg.pretrain_steps else runs[("det", "ft")]
        table4[step] = {
            "pre-train": study.probe(cache, pre, step, sets["gt"], fc7, cfg.protocol)["fc7"],
            "ft": study.probe(cache, run, None, sets["gt"], fc7, cfg.protocol)["fc7"],
        }
    nets_val = {
        f"{t}/{r}": runs[(t, r)].result["val_top1"] for t in ("det", "scene") for r in study.REGIMES
    }
    return _json({"gt": gt, "scene": scene, "table4": table4, "finetune_val_top1": nets_val})


def selectivity_study(cache, pre, ft_run, gt_sets, protocol: str, out_dir: Path) -> dict:
    """Entropy/AuE/MCAuE before and after fine-tuning, grandmother cells, subsets, overlap,
    sparsity, on the GT boxes of the PASCAL-DET-GT stand-in (SPEC §6-§8)."""
    train_fs, test_fs, _, num_classes = gt_sets
    taps = {}
    for name, run in (("pre", pre), ("ft", ft_run)):
        taps[name] = (cache.get(run, None, train_fs), cache.get(run, None, test_fs))
    # The SVM cost of the greedy subsets is the one the VOC07 protocol picks most often for
    # conv-5 sp-max on the training boxes (chosen by 3-fold CV, never on test).
    config = sel.SelectivityConfig(svm_c=_cv_cost(protocol, taps["pre"][0]))
    result = sel.selectivity(
        {k: np.asarray(v) for k, v in taps["pre"][1]["taps"].items()},
        {k: np.asarray(v) for k, v in taps["ft"][1]["taps"].items()},
        taps["pre"][1]["box_labels"],
        num_classes,
        config=config,
        train=(
            {"conv5": np.asarray(taps["pre"][0]["taps"]["conv5"])},
            {"conv5": np.asarray(taps["ft"][0]["taps"]["conv5"])},
            taps["pre"][0]["box_labels"],
        ),
    )
    names = list(taps["pre"][1]["class_names"])
    figures = sel.figures(result, names, str(out_dir))
    keep = ("mcaue", "sparsity", "filters_needed", "overlap_chance", "subset_ks", "subset_ap")
    summary = {net: {k: result[net][k] for k in keep if k in result[net]} for net in ("pre", "ft")}
    for net in ("pre", "ft"):
        summary[net]["aue_mean"] = {
            m: {layer: float(np.mean(v)) for layer, v in d.items()}
            for m, d in result[net]["aue"].items()
        }
        summary[net]["best_filter_ap"] = np.max(result[net]["filter_ap"], axis=1)
        overlap = np.asarray(result[net]["overlap"])
        summary[net]["overlap_offdiag_mean"] = float(
            (overlap.sum() - np.trace(overlap)) / (overlap.size - overlap.shape[0])
        )
    return _json(
        {
            "table_2_1": result["table_2_1"],
            "nets": summary,
            "class_names": names,
            "svm_c": config.svm_c,
            "figures": {k: str(v) for k, v in figures.items()},
        }
    )


def _cv_cost(protocol: str, train) -> float:
    from jaxcnn import probes
    from jaxcnn.probe_runs import ablated

    x = ablated(train["taps"]["conv5"], "sp-max")
    res = probes.multilabel_probe(
        x, train["labels"], x[:2], train["labels"][:2], protocol=probes.PROTOCOLS[protocol]
    )
    values, counts = np.unique(res.cost_K, return_counts=True)
    return float(values[np.argmax(counts)])


def run_study(cfg: study.StudyConfig, root: str, *, emit: Callable[[str], None] = print) -> dict:
    """Run (or resume) the whole study in `root`; returns the report's paths and timings."""
    root = study.ensure_dir(root)
    nft = 2 * len(study.REGIMES) + len(cfg.table4_snapshots)
    total = sum(WEIGHTS.values()) + WEIGHTS["finetune"] * (nft - 1)
    progress = study.Progress(total, emit)
    timings = []

    def done(res: stages.StageResult, weight_key: str):
        timings.append(
            (
                res.name if weight_key != "finetune" else Path(res.out_dir).name.rsplit("-", 1)[0],
                res.seconds,
                res.cached,
            )
        )
        progress.stage(timings[-1][0], WEIGHTS[weight_key], res.cached, res.seconds)
        return res

    def train_log(record):  # pre-training progress: every logged step and the validation
        emit("    pretrain " + training_log.format_progress(record, cfg.pretrain_steps))

    emit(f"study in {root}")
    data = done(study._data_stage(cfg, root), "data")
    pre = done(study.pretrain_stage(cfg, root, data, train_log), "pretrain")
    runs = {}
    for target in ("det", "scene"):
        for regime in study.REGIMES:
            runs[(target, regime)] = done(
                study.finetune_stage(cfg, root, data, pre, target, regime, None), "finetune"
            )
    for step in cfg.table4_snapshots:
        runs[("det", "ft", step)] = done(
            study.finetune_stage(cfg, root, data, pre, "det", "ft", None, from_step=step),
            "finetune",
        )
    cache = study.FeatureCache(root, batch_size=cfg.batch_size)
    ft_runs = tuple(runs.values())
    snap = done(
        stages.run_stage(
            root,
            "probe-snapshots",
            {"protocol": cfg.protocol, **_probe_conf(cfg)},
            lambda d: snapshot_probes(cfg, cache, pre, d),
            upstream=(pre,),
        ),
        "probe-snapshots",
    )
    abl = done(
        stages.run_stage(
            root,
            "probe-ablations",
            _probe_conf(cfg),
            lambda d: ablation_probes(cfg, cache, pre),
            upstream=(pre,),
        ),
        "probe-ablations",
    )
    tra = done(
        stages.run_stage(
            root,
            "probe-transfer",
            _probe_conf(cfg),
            lambda d: transfer_probes(cfg, cache, pre, runs),
            upstream=(pre, *ft_runs),
        ),
        "probe-transfer",
    )
    sel_res = done(
        stages.run_stage(
            root,
            "selectivity",
            _probe_conf(cfg),
            lambda d: selectivity_study(
                cache, pre, runs[("det", "ft")], study.feature_sets(cfg)["gt"], cfg.protocol, d
            ),
            upstream=(pre, runs[("det", "ft")]),
        ),
        "selectivity",
    )
    results = {
        "config": dataclasses.asdict(cfg),
        "snapshots": snap,
        "ablations": abl,
        "transfer": tra,
        "selectivity": sel_res,
        "pretrain": pre,
        "runs": runs,
    }
    md, html = study_report.write(root, results, timings)
    progress.stage("report", WEIGHTS["report"], False, 0.0)
    return {"report_md": str(md), "report_html": str(html), "timings": timings}


def _probe_conf(cfg) -> dict:
    return {
        "protocol": cfg.protocol,
        "train": cfg.probe_train_images,
        "test": cfg.probe_test_images,
        "crop": cfg.crop,
        "resize": cfg.resize,
    }
