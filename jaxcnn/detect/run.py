"""The detection experiment: fine-tune on windows, cache pool5, mine and train detectors, test.

`run_detection` is the one function `experiments/detect.py` (and the study) calls. For a
source network (a pre-training run at any checkpointed step) and each requested regime --
``none`` (the source network itself, R-CNN "without fine-tuning"), ``ft``, ``fc-ft``,
``scratch`` (`jaxcnn.detect.window_finetune`) -- it stores the network's pool5 of every window
of both splits, then for every requested layer (and conv5 ablation) trains the detectors with
hard-negative mining, detects on the test split and writes per-class APs (JSON, CSV, Markdown)
and precision-recall curves; the fc7 (or last requested) layer of each network also gets a
figure of test images with their top detections. Every stage is cached under ``out_dir``
(proposals, fine-tuning runs, pool5, result tables), so a rerun skips what is finished; use one
``out_dir`` per source run (its snapshots are told apart by `network_name`).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import threading
import time

import numpy as np

from jaxcnn import model, storage
from jaxcnn.detect import ap, evaluate, mining, results, roidb, window_features, window_finetune
from jaxcnn.detect import data as data_lib
from jaxcnn.detect import windows as windows_lib
from jaxcnn.features.ablations import ABLATIONS
from jaxcnn.storage import checkpoints

REGIMES = ("none", "ft", "fc-ft", "scratch")

# The warped windows of the last two splits (training and test) this process used: the study calls
# `run_detection` once per network on the same splits (`windows_lib.CachedWindows`).
_WINDOWS: collections.OrderedDict = collections.OrderedDict()
_WINDOWS_LOCK = threading.Lock()


def windows_of(split: data_lib.Split, wspec: windows_lib.WarpSpec) -> windows_lib.CachedWindows:
    """The images of `split` with the windows warped by `wspec` kept for reuse."""
    mean = hashlib.sha256(np.ascontiguousarray(wspec.mean_OxOx3).tobytes()).hexdigest()
    key = (split.key, wspec.out_size, wspec.pad, mean)
    with _WINDOWS_LOCK:
        found = _WINDOWS.pop(key, None) or windows_lib.CachedWindows(split.source, wspec)
        _WINDOWS[key] = found
        while len(_WINDOWS) > 2:
            _WINDOWS.popitem(last=False)
        return found


def _f(default, help_text, **meta):
    return dataclasses.field(default=default, metadata={"help": help_text, **meta})


def _items(what: str, values, choices) -> None:
    bad = [v for v in values if v not in choices]
    if bad:
        raise ValueError(f"--{what}: {bad} not among the valid choices {list(choices)}")


@dataclasses.dataclass(frozen=True)
class Networks:
    """The networks detected with: the source run's snapshot as it is and fine-tuned per regime
    (`run_detection`'s keyword arguments; flags are generated from it)."""

    source_run: str  # the pre-training run directory (a required flag of the script)
    source_step: int = _f(-1, "Its checkpoint step (-1: the latest).")
    regimes: tuple[str, ...] = _f(
        REGIMES,
        "Networks: the source as it is (none), fine-tuned (ft, fc-ft), scratch.",
        choices=REGIMES,
    )

    def __post_init__(self):
        _items("regimes", self.regimes, REGIMES)


@dataclasses.dataclass(frozen=True)
class DetectorSpec:
    """The detectors and their test (flags are generated from it)."""

    layers: tuple[str, ...] = _f(
        window_features.LAYERS, "Feature layers.", choices=window_features.LAYERS
    )
    conv5_ablations: tuple[str, ...] = _f(
        ("none",), "conv5 ablations (Table 8: none, binarize, sp-max).", choices=ABLATIONS
    )
    ablation_networks: tuple[str, ...] = _f(
        ("ft",), "Networks whose conv5 gets the ablations (Table 8: ft).", choices=REGIMES
    )
    mining: mining.MiningConfig = mining.MiningConfig()
    scale_sample: int = _f(5000, "Training windows measured for the mean feature norm.")
    method: str = _f(
        "voc07", "AP: 11-point (voc07) or envelope (voc12).", choices=ap.METHODS, flag="ap_method"
    )
    top_k: int = _f(100, "Detections kept per class and image.")
    nms_threshold: float = _f(0.3, "Non-maximum suppression IoU threshold.")
    batch_size: int = _f(256, "Feature extraction batch.")
    figure_images: int = _f(8, "Test images in the top-detections figure.")
    figures: tuple[str, ...] = _f(
        ("all",), "Detectors drawn (PR curves, top detections): network/layer/ablation, or all."
    )
    resamples: int = _f(10, "Bootstrap resamples of the test images (mAP's noise).")

    def __post_init__(self):
        _items("layers", self.layers, window_features.LAYERS)
        _items("conv5_ablations", self.conv5_ablations, ABLATIONS)
        _items("ablation_networks", self.ablation_networks, REGIMES)
        _items("ap_method", (self.method,), ap.METHODS)


@dataclasses.dataclass(frozen=True)
class FinetuneSpec:
    """Window fine-tuning (R-CNN: lr 0.001 x0.1 every 20k, batch 128 = 32 fg + 96 bg); flags
    are generated from it."""

    steps: int = _f(300, "Window fine-tuning iterations (ft, fc-ft).", flag="ft_steps")
    scratch_steps: int = _f(600, "Iterations from scratch.")
    batch_size: int = _f(128, "Windows per batch.", flag="ft_batch")
    fg_per_batch: int = _f(32, "Foreground windows per batch.", flag="ft_fg")
    base_lr: float = _f(0.001, "Fine-tuning base learning rate.", flag="ft_lr")
    scratch_lr: float = _f(0.01, "Base learning rate from scratch.")
    lr_step: int = _f(20_000, "Iterations between x0.1 steps.", flag="ft_lr_step")
    head_lr_mult: float = _f(10.0, "lr multiplier of the new layer (bias: x2 more).")
    eval_windows: int = _f(1024, "Held-out test windows validated on.", flag="ft_eval_windows")
    seed: int = _f(0, "Fine-tuning seed (initialisation, window draws).", flag="ft_seed")
    devices: int = _f(
        0, "Local devices it trains on (0: all; the study: 1, beside its analyses).",
        flag="ft_devices",
    )  # fmt: skip

    def __post_init__(self):
        if not 0 <= self.fg_per_batch <= self.batch_size:
            raise ValueError(
                f"need 0 <= --ft_fg <= --ft_batch, got {self.fg_per_batch}, {self.batch_size}"
            )


def network_name(regime: str, source_step: int) -> str:
    """The folder and table name of a network: the regime, plus the source snapshot's step
    when one is named (Table 4 runs several snapshots into one out_dir)."""
    return regime if source_step < 0 else f"{regime}-step{source_step}"


def _model_meta(run_dir: str, step: int | None) -> dict:
    return checkpoints.restore_meta(run_dir, step)["model"]


def finetune_network(regime, source_run, source_step, train, test, wspec, fspec, out_dir, log):
    """The run directory of `regime`'s window fine-tuning (trained or resumed here); it is
    validated on a fixed draw of labelled test-split windows (a quarter foreground)."""
    meta = _model_meta(source_run, None if source_step < 0 else source_step)
    scratch = regime == "scratch"
    cfg = window_finetune.WindowTrainConfig(
        num_classes=train.source.num_classes + 1,
        num_steps=fspec.scratch_steps if scratch else fspec.steps,
        batch_size=fspec.batch_size,
        preset=meta["preset"],
        model_overrides=dict(meta.get("overrides", {})),
        compute_dtype=meta.get("compute_dtype", "float32"),
        regime=regime,
        init_from="" if scratch else os.path.abspath(source_run),
        init_step=source_step,
        base_lr=fspec.scratch_lr if scratch else fspec.base_lr,
        lr_step_size=fspec.lr_step,
        head_lr_mult=fspec.head_lr_mult,
        seed=fspec.seed,
        checkpoint_every=max(1, min(1000, fspec.steps)),
        log_every=max(1, fspec.steps // 5),
        num_local_devices=fspec.devices,
    )
    run_dir = os.path.join(out_dir, f"finetune-{network_name(regime, source_step)}-{train.key}")
    ws = windows_lib.window_set(train.entries)
    data = windows_lib.WindowIterator(
        windows_of(train, wspec),
        ws,
        wspec,
        seed=fspec.seed,
        num_fg=fspec.fg_per_batch,
        num_bg=fspec.batch_size - fspec.fg_per_batch,
    )
    num_classes = train.source.num_classes
    held_out = windows_lib.window_set(
        [
            roidb.make_entry(g, p, num_classes)
            for g, p in zip(test.ground_truth, test.proposals, strict=True)
        ]
    )
    evals = windows_lib.eval_batches(
        windows_of(test, wspec),
        held_out,
        wspec,
        batch_size=fspec.batch_size,
        count=fspec.eval_windows,
    )
    summary = window_finetune.finetune_windows(cfg, run_dir, train_data=data, eval_data=evals)
    val = summary["val"] or {}
    log(f"fine-tuned {regime}: window top-1 {val.get('top1', float('nan')):.3f} ({run_dir})")
    return run_dir


def _figure(test, dets, class_names, path, n):
    picks = list(range(min(n, len(test.ground_truth))))
    per_image = []
    for i in picks:
        found = []
        for c in range(len(class_names)):
            at = dets.image[c] == i
            found += [
                (c, float(s), b) for s, b in zip(dets.scores[c][at], dets.boxes[c][at], strict=True)
            ]
        per_image.append(sorted(found, key=lambda d: -d[1]))
    images = [test.source[i]["image"] for i in picks]
    return results.plot_top_detections(images, per_image, class_names, path)


def evaluate_features(name, params, pool5, train, test, spec: DetectorSpec, out_dir, log):
    """Detectors of every requested layer / ablation of one network; result rows."""
    rows, names = [], list(train.source.class_names)
    combos = [(layer, "none") for layer in spec.layers if layer != "conv5"]
    if "conv5" in spec.layers:
        ablated = name.split("-step")[0] in spec.ablation_networks
        combos = [("conv5", a) for a in (spec.conv5_ablations if ablated else ("none",))] + combos
    for layer, ablation in combos:
        prefix = os.path.join(out_dir, f"ap-{layer}-{ablation}")
        if os.path.exists(prefix + ".json"):
            with open(prefix + ".json") as f:
                rows.append(json.load(f))
            continue
        start = time.perf_counter()
        kw = dict(layer=layer, ablation=ablation)
        train_view = window_features.LayerView(pool5["train"], train.counts, params, **kw)
        test_view = window_features.LayerView(pool5["test"], test.counts, params, **kw)
        rng = np.random.default_rng(0)
        sample = rng.choice(len(train.entries), min(len(train.entries), 200), replace=False)
        feats = np.concatenate([train_view(int(i)) for i in sample])
        feats = feats[rng.permutation(len(feats))[: spec.scale_sample]]
        det = mining.train_detectors(
            train_view, train.entries, scale=mining.feature_scale(feats), cfg=spec.mining
        )
        scores = [det.scores(test_view(i)) for i in range(len(test.entries))]
        dets = evaluate.detect(
            scores,
            [e.boxes for e in test.entries],
            top_k=spec.top_k,
            iou_threshold=spec.nms_threshold,
        )
        aps, curves = evaluate.evaluate(dets, test.ground_truth, method=spec.method)
        boot = evaluate.bootstrap_map(
            dets, test.ground_truth, resamples=spec.resamples, method=spec.method
        )
        meta = {
            "network": name,
            "layer": layer,
            "ablation": ablation,
            "seconds": time.perf_counter() - start,
            "retrains": len(det.history),
            "train_images": len(train.entries),
            "test_images": len(test.entries),
            "mAP_resamples": boot,
        }
        table = results.ap_table(names, aps, method=spec.method, iou_threshold=0.5, meta=meta)
        results.write_tables(table, prefix)
        every = "all" in spec.figures
        if every or f"{name}/{layer}/{ablation}" in spec.figures:  # ~2 s of matplotlib each
            results.plot_pr_curves(
                curves,
                names,
                aps,
                prefix.replace("ap-", "pr-") + ".png",
                title=f"{name} {layer} {ablation}",
            )
            if not every or layer == combos[-1][0]:
                top = os.path.join(out_dir, "top_detections.png")
                _figure(test, dets, names, top, spec.figure_images)
        log(f"{name} {layer} {ablation}: mAP {100 * table['mAP']:.1f} ({meta['seconds']:.0f} s)")
        rows.append(table)
    return rows


def detect_with_network(
    name, run_dir, step, train, test, dspec, wspec, out_dir, log, *, pool5_of=None
):
    """pool5 of both splits through `run_dir`'s network (cached), then `evaluate_features`.
    `pool5_of`: another network's folder whose pool5 stores serve this one (equal conv1-5)."""
    module = model.module_from_run(run_dir, None if step < 0 else step)
    params = checkpoints.restore_params(run_dir, None if step < 0 else step)
    net_dir = os.path.join(out_dir, name)
    pool5_dir = os.path.join(out_dir, pool5_of or name)
    pool5 = {}
    for part, split in (("train", train), ("test", test)):
        start = time.perf_counter()
        pool5[part] = window_features.extract_pool5(
            module,
            params,
            windows_of(split, wspec),
            [e.boxes for e in split.entries],
            wspec,
            os.path.join(pool5_dir, f"pool5-{part}-{split.key}"),
            batch_size=dspec.batch_size,
        )
        rate = len(pool5[part]) / max(time.perf_counter() - start, 1e-9)
        how = f"{pool5_of}'s: equal conv1-5" if pool5_of else f"{rate:.0f} windows/s if new"
        log(f"{name} pool5 {part}: {len(pool5[part])} windows ({how})")
    return evaluate_features(name, params, pool5, train, test, dspec, net_dir, log)


def run_detection(
    spec: data_lib.DataSpec,
    dspec: DetectorSpec,
    fspec: FinetuneSpec,
    out_dir: str,
    *,
    source_run: str,
    source_step: int = -1,
    regimes=REGIMES,
    log=print,
) -> list[dict]:
    """The whole experiment (module docstring). Returns every result row (an `ap_table` each,
    with network, layer, ablation) and writes ``summary.json`` / ``summary.md``."""
    unknown = set(regimes) - set(REGIMES)
    if unknown:
        raise ValueError(f"unknown regimes {sorted(unknown)}; choose from {REGIMES}")
    os.makedirs(out_dir, exist_ok=True)
    train = data_lib.load_split(
        spec, spec.train_split, spec.train_images, out_dir, train=True, log=log
    )
    test = data_lib.load_split(
        spec, spec.test_split, spec.test_images, out_dir, train=False, log=log
    )
    wspec = data_lib.warp_spec(spec)
    rows = []
    for regime in regimes:
        if regime == "none":
            run_dir, step = source_run, source_step
        else:
            run_dir, step = (
                finetune_network(
                    regime, source_run, source_step, train, test, wspec, fspec, out_dir, log
                ),
                -1,
            )
        name = network_name(regime, source_step)
        shared = _frozen_convs_of(regime, run_dir, source_run, source_step)
        rows += detect_with_network(
            name, run_dir, step, train, test, dspec, wspec, out_dir, log, pool5_of=shared
        )
    write_summary(rows, out_dir, train, test)
    return rows


def _frozen_convs_of(regime, run_dir, source_run, source_step) -> str | None:
    """The source network's folder name when `regime` froze conv1-5 (fc-ft) and its parameters
    there equal the source's bit for bit: its pool5 is the source's, stored once."""
    if regime != "fc-ft":
        return None
    params = checkpoints.restore_params(run_dir)
    source = checkpoints.restore_params(source_run, None if source_step < 0 else source_step)
    return (
        network_name("none", source_step)
        if model.equal_layers(params, source, model.CONV_NAMES)
        else None
    )


def write_summary(rows, out_dir, train, test) -> None:
    """``summary.json`` and ``summary.md`` (mAP per network x layer/ablation): every row of
    this call and of earlier calls on the same `out_dir` (other networks, e.g. Table 4's
    snapshots), a row of this call replacing an earlier one of the same network and layer."""
    from jaxcnn.detect import proposals as proposals_lib

    key = lambda r: (r["network"], r["layer"], r["ablation"])
    path = os.path.join(out_dir, "summary.json")
    if os.path.exists(path):
        with open(path) as f:
            old = [r for r in json.load(f)["rows"] if key(r) not in {key(n) for n in rows}]
        rows = old + list(rows)

    recall, per_image = proposals_lib.recall_at(
        test.proposals, [g.boxes for g in test.ground_truth], iou=0.5
    )
    doc = {"rows": rows, "test_proposal_recall@0.5": recall, "test_boxes_per_image": per_image}
    storage.write_json(path, doc, indent=1)
    lines = [
        f"Detection mAP (%), {rows[0]['method'] if rows else ''}; {len(train.entries)} training "
        f"and {len(test.entries)} test images; proposals: recall@0.5 {100 * recall:.1f} % at "
        f"{per_image:.0f} boxes per image.",
        "",
        "| network | layer | ablation | mAP |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['network']} | {r['layer']} | {r['ablation']} | {100 * r['mAP']:.1f} |" for r in rows
    ]
    storage.write_text(os.path.join(out_dir, "summary.md"), "\n".join(lines) + "\n")
