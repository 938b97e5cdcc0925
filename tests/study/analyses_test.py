"""The findings logic of each analysis on hand-made numbers: a clear case each way."""

import numpy as np

from jaxcnn.study import LAYERS
from jaxcnn.study.analyses import ablation, depth, detection, finetuning, selectivity


def _verdicts(findings):
    return {f.claim.split(" (")[0]: f.holds for f in findings}


def _rho(columns):
    matrix = np.column_stack([*columns, np.ones(len(LAYERS))])
    return [depth._bottom_up_rho(matrix)]


def _snap(final, first_fc7, cka_columns, tmp_path, rho=None):
    steps = ["10", "600"]
    table = {"10": {la: 10.0 for la in LAYERS}, "600": dict(zip(LAYERS, final, strict=True))}
    table["10"]["fc7"] = first_fc7
    matrix = np.column_stack([*cka_columns, np.ones(len(LAYERS))])
    return {
        "result": {
            "steps": [10, 600],
            "map": table,
            "cka": {
                "layers": list(LAYERS),
                "names": steps,
                "matrix": matrix.tolist(),
                "rho": _rho(cka_columns) if rho is None else rho,
            },
        },
        "out_dir": str(tmp_path),
    }


def test_depth_findings(tmp_path):
    rising = (20, 30, 40, 50, 60, 70, 80)
    bottom_up = np.linspace(1, 0.2, len(LAYERS))  # deeper layers further from the final net
    _, found = depth.depth_findings(_snap(rising, 50.0, [bottom_up], tmp_path))
    assert list(_verdicts(found).values()) == [True, True, True]
    flat = (50, 49, 51, 50, 49, 48, 50)
    _, found = depth.depth_findings(_snap(flat, 50.5, [bottom_up[::-1]], tmp_path))
    assert list(_verdicts(found).values()) == [False, False, False]
    _, found = depth.depth_findings(_snap(flat, 50.5, [np.ones(len(LAYERS))], tmp_path))
    assert found[2].holds is None  # constant CKA: no rank correlation, undecided


def test_depth_findings_with_repeated_splits(tmp_path):
    # conv1 20 +- 1, conv5 30 +- 1, fc7: 31 +- 2 -> fc7 - conv5 within its noise: undecided
    final = [[19.0, 20.0, 21.0], *[[30.0, 30.0, 30.0]] * 3, [29.0, 30.0, 31.0]]
    final += [[30.0, 30.0, 30.0], [29.0, 31.0, 33.0]]
    snap = _snap(final, [20.0, 21.0, 22.0], [], tmp_path, rho=[-0.9, -0.3, -0.6])
    found = _verdicts(depth.depth_findings(snap)[1])
    # fc7 gain over the first snapshot: 9, 10, 11 -> holds; rho -0.6 +- 0.3 -> undecided
    assert list(found.values()) == [None, True, None]
    snap = _snap(final, [20.0, 21.0, 22.0], [], tmp_path, rho=[-0.9, -0.8, -0.85])
    assert depth.depth_findings(snap)[1][2].holds is True


def _cls(conv5_none, conv5_bin, conv5_spmax, fc7_none, fc7_bin):
    out = {la: {"none": 50.0, "binarize": 49.0} for la in LAYERS}
    out["conv5"] = {"none": conv5_none, "binarize": conv5_bin, "sp-max": conv5_spmax}
    out["fc7"] = {"none": fc7_none, "binarize": fc7_bin}
    return out


def test_ablation_findings():
    scene = {"conv5": {"none": 60.0, "sp-max": 40.0}, "fc7": {"none": 60.0, "binarize": 59.0}}
    abl = {"result": {"cls": _cls(65, 63, 62, 74, 73.5), "scene": scene}, "out_dir": "."}
    _, found = ablation.ablation_findings(abl)
    assert [f.holds for f in found] == [True, True]
    scene = {"conv5": {"none": 60.0, "sp-max": 58.0}, "fc7": {"none": 60.0, "binarize": 59.0}}
    abl = {"result": {"cls": _cls(65, 50, 62, 74, 73.5), "scene": scene}, "out_dir": "."}
    _, found = ablation.ablation_findings(abl)
    assert [f.holds for f in found] == [False, False]
    # repeated splits: binarize costs 4 +- 1.5 at conv5 -> its band reaches past 5: undecided
    cls = _cls([65.0] * 3, [62.5, 61.0, 59.5], [64.0] * 3, [74.0] * 3, [73.5] * 3)
    scene = {"conv5": {"none": [60.0] * 3, "sp-max": [40.0] * 3}, "fc7": {}}
    _, found = ablation.ablation_findings({"result": {"cls": cls, "scene": scene}, "out_dir": "."})
    assert [f.holds for f in found] == [None, True]


def _tra(gt, scene, table4):
    """(probe-transfer's, probe-regimes's) stage results."""
    per_net = lambda v: {la: {"none": v} for la in LAYERS}  # noqa: E731
    gt = {net: per_net(v) for net, v in gt.items()}
    table4 = {s: {"pre-train": {"none": 40.0}, "ft": {"none": v}} for s, v in table4}
    regimes = {
        "gt": {net: {"fc7": cells["fc7"]} for net, cells in gt.items()},
        "scene": {net: {"fc7": {"none": v}} for net, v in scene.items()},
    }
    return (
        {
            "result": {"gt": {n: {"fc7": c["fc7"]} for n, c in gt.items()}, "table4": table4},
            "out_dir": ".",
        },
        {"result": regimes, "out_dir": "."},
        {"result": {"gt": gt}, "out_dir": "."},
    )


def _findings(tra):
    """[fc-ft close to ft, pre-training beats scratch, Table 4] as the report orders them."""
    transfer, regimes, layers = tra
    sections, none = finetuning.layer_findings(layers)
    assert none == [] and sections[0].title.startswith("Thesis Table 2.4")
    return finetuning.regime_findings(regimes)[1] + finetuning.transfer_findings(transfer)[1]


def test_finetuning_findings():
    nets = ("scratch", "pre-train", "ft", "fc-ft")
    good = _tra(
        dict(zip(nets, (40, 50, 60, 59.5), strict=True)),
        dict(zip(nets, (30, 45, 55, 54), strict=True)),
        [("75", 50), ("600", 60)],
    )
    assert [f.holds for f in _findings(good)] == [True, True, True]
    bad = _tra(
        dict(zip(nets, (55, 50, 60, 52), strict=True)),
        dict(zip(nets, (30, 45, 55, 54), strict=True)),
        [("75", 60), ("600", 55)],
    )
    assert [f.holds for f in _findings(bad)] == [False, False, False]
    # repeated splits: ft - fc-ft on DET-GT 1.5 +- 1 straddles the 2-point margin; pre-train
    # above scratch by 1 +- 1 on SUN; the Table 4 gain 10 +- 0
    rep = lambda *v: list(map(float, v))  # noqa: E731
    noisy = _tra(
        {
            "scratch": rep(40, 40, 40),
            "pre-train": rep(50, 50, 50),
            "ft": rep(60.5, 61.5, 62.5),
            "fc-ft": rep(60, 60, 60),
        },
        {
            "scratch": rep(44, 44, 44),
            "pre-train": rep(44, 45, 46),
            "ft": rep(55, 55, 55),
            "fc-ft": rep(55, 55, 55),
        },
        [("75", rep(50, 50, 50)), ("600", rep(60, 60, 60))],
    )
    assert [f.holds for f in _findings(noisy)] == [None, None, True]


def _sel(fc_change, conv_change, fewest50, median90):
    t21 = {
        la: {
            m: [0.0, 0.0, 0.0, fc_change if la.startswith("fc") else conv_change]
            for m in ("label", "spmax")
        }
        for la in LAYERS
    }
    needed = [[fewest50, 5, 8], [median90, median90, 40]]
    net = {"filters_needed": needed, "sparsity": {la: [10.0, 1.0] for la in LAYERS}}
    return {
        "result": {
            "table_2_1": t21,
            "nets": {"pre": net, "ft": net},
            "class_names": ["a", "b", "c"],
            "svm_c": 1.0,
        },
        "out_dir": ".",
    }


def test_selectivity_findings():
    _, found = selectivity.selectivity_findings(_sel(8.0, 1.0, 1, 30))
    assert [f.holds for f in found] == [True, True]
    _, found = selectivity.selectivity_findings(_sel(3.0, 2.0, 4, 5))
    assert [f.holds for f in found] == [False, False]
    # bootstrap resamples: fc 5 +- 2 vs conv 2 -> 5 - 4 = 1 +- 2: undecided
    sel = _sel(8.0, 1.0, 1, 30)
    sel["result"]["change_resamples"] = [
        {la: (v if la.startswith("fc") else 2.0) for la in LAYERS} for v in (3.0, 5.0, 7.0)
    ]
    assert selectivity.selectivity_findings(sel)[1][0].holds is None


def test_selectivity_table_has_the_methods_in_their_defined_order():
    """Table 2.1's columns follow `entropy.METHODS` whether the result's keys come in that order
    (a fresh run), sorted (read back from stage.json) or reversed, each under its own values."""
    from jaxcnn.selectivity.entropy import METHODS

    for order in (METHODS, tuple(sorted(METHODS)), METHODS[::-1]):
        values = {m: float(i) for i, m in enumerate(order)}
        sel = _sel(8.0, 1.0, 1, 30)
        sel["result"]["table_2_1"] = {
            la: {m: [values[m], 0.0, 0.0, 1.0] for m in order} for la in LAYERS
        }
        sections, _ = selectivity.selectivity_findings(sel)
        (table,) = [t for s in sections for t in s.tables if t.header[1:2] == ("label 0.1",)]
        assert [h.split()[0] for h in table.header[1::4]] == list(METHODS)
        assert table.rows[0][1::4] == tuple(f"{values[m]:.2f}" for m in METHODS)


def _det_result(pre, ft, fcft, scratch, conv5, binarized, sp_max, first, noise=None):
    """A detection result: the fc7 of each network (conv5 3 and fc6 1 below it), the ft conv5
    ablations, ft fc7 from step 75 (`first`); every key measured on 3 resamples, equal to its
    value unless `noise` gives some keys per-resample offsets."""
    maps = {}
    for net, fc7 in (("none", pre), ("ft", ft), ("fc-ft", fcft), ("scratch", scratch)):
        maps.update(
            {f"{net}/conv5/none": fc7 - 3, f"{net}/fc6/none": fc7 - 1, f"{net}/fc7/none": fc7}
        )
    maps.update({"ft/conv5/none": conv5, "ft/conv5/binarize": binarized, "ft/conv5/sp-max": sp_max})
    maps["ft-step75/fc7/none"] = first
    offsets = noise or {}
    return {
        "mAP": maps,
        "resamples": {k: [v + e for e in offsets.get(k, (0, 0, 0))] for k, v in maps.items()},
        "per_class": {k: {"disc": v - 1, "star": v + 1} for k, v in maps.items()},
        "table4_steps": [75, 600],
        "proposal_recall": 0.98,
        "boxes_per_image": 100.0,
    }


def test_detection_findings():
    paper = _det_result(45.5, 54.1, 53.3, 40.7, 47.6, 45.7, 25.4, 50.2)
    assert list(_verdicts(detection.findings(paper)).values()) == [True] * 6
    # no gain from fine-tuning, scratch better, fc-ft far from ft, no gain from longer
    # pre-training, binarisation costly, sp-max less than twice binarisation's cost
    opposite = _det_result(50, 51, 45, 55, 40, 30, 29, 55)
    assert list(_verdicts(detection.findings(opposite)).values()) == [False] * 6
    # within noise: ft - pre-trained = 1, 3, 5 over the resamples (3 +- 2, band 4 around the
    # margin 2); ft - fc-ft = 1 +- 2 (band covers 2); binarisation drop 4 +- 2 (covers 5)
    noisy = _det_result(
        45, 48, 47, 40, 47, 43, 20, 40,
        noise={"ft/fc7/none": (-2, 0, 2), "ft/conv5/binarize": (2, 0, -2)},
    )  # fmt: skip
    found = _verdicts(detection.findings(noisy))
    assert [found[k] for k in list(found)[:3]] == [None, True, None]
    assert found["Binarising conv5 costs detection little"] is None


def test_detection_is_optional_and_reports_its_tables(tmp_path):
    from jaxcnn.study import StudyConfig
    from jaxcnn.study.analyses import ANALYSES

    names = lambda cfg: [a.name for a in ANALYSES if a.enabled(cfg)]  # noqa: E731
    assert "detection" not in names(StudyConfig())
    assert names(StudyConfig(detection=True))[-1] == "detection"
    res = _det_result(45.5, 54.1, 53.3, 40.7, 47.6, 45.7, 25.4, 50.2)
    sections, found = detection.report({"result": res, "out_dir": str(tmp_path)})
    t12, t4, t8, t23, t52 = sections[0].tables
    assert [r[0] for r in t12.rows] == ["none", "ft", "fc-ft", "scratch"]
    assert t12.rows[1][1:] == ("47.6 ± 0.0", "53.1 ± 0.0", "54.1 ± 0.0", 54.1)
    assert t4.rows == (("75 it.", "50.2 ± 0.0"), ("600 it.", "54.1 ± 0.0"))
    assert t8.rows[2] == ("sp-max", "25.4 ± 0.0", 25.4)
    assert t23.header == ("", "disc", "star", "mAP", "paper mAP")
    assert t23.rows[3] == ("l6-fc-ft", 51.3, 53.3, 52.3, 51.0)  # fc-ft fc6 = 53.3 - 1
    assert t52.rows[0] == ("sp-max", 24.4, 26.4, 25.4, 25.4)
    assert len(found) == 6 and "100 boxes per test image, recall at IoU 0.5 98.0 %" in (
        sections[0].text
    )


def test_transfer_is_optional_with_the_toy_grid_settings_and_reports_its_section(tmp_path):
    from jaxcnn.study import StudyConfig, runs
    from jaxcnn.study.analyses import ANALYSES, transferability
    from tests.transfer.findings_test import PAPER, _rows

    def names(cfg):
        return [a.name for a in ANALYSES if a.enabled(cfg)]

    assert "transfer" not in names(StudyConfig())
    assert "transfer" in names(StudyConfig(transfer=True))
    cfg = StudyConfig(transfer=True, toyworld_seed=2)
    t = transferability.transfer_config(cfg)
    # experiments/flags/transfer_toy.flags: 240 x 64, lr x0.1 at 180, top-1 every 60, 2 best
    assert (t.train.num_steps, t.train.batch_size, t.train.lr_step_size) == (240, 64, 180)
    assert (t.train.eval_every, t.best_k, t.data.crop) == (60, 2, 64)
    assert t.data.dataset == runs.dataset_name(cfg, cfg.source)
    rows = [{**r, "final": r["best"]} for r in _rows(PAPER)]
    (tmp_path / "report").mkdir()  # the run writes its report there
    sections, found = transferability.report(
        {"result": {"rows": rows, "val_count": 2500, "best_k": 2}, "out_dir": str(tmp_path)}
    )
    assert sections[0].title.startswith("Transfer between halves") and len(found) == 3
    assert (tmp_path / "report" / "transfer.png").exists()
