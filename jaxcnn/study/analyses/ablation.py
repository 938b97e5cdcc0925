"""Table 7 / thesis 5.1: ablations of every layer's features under the probe, on the PASCAL-CLS
stand-in, and of conv-5 and fc-7 on the SUN stand-in (docs/methods.md §5)."""

from __future__ import annotations

from jaxcnn import features, probe
from jaxcnn.documents import Finding, Section, Table, fmt, values
from jaxcnn.storage import jsonable
from jaxcnn.study import runs
from jaxcnn.study.config import ABLATIONS, LAYERS
from jaxcnn.study.registry import Analysis, Context
from jaxcnn.verdicts import above, all_of, below, paired

PAPER_TABLE7 = {
    ("conv5", "none"): 65.6,
    ("fc7", "none"): 74.1,
    ("fc7", "binarize"): 73.7,
    ("conv5", "binarize"): 60.8,
    ("conv5", "sp-max"): 62.5,
    ("conv5", "sp-shuffle"): 59.5,
}
PAPER_TABLE8 = {"none": 47.6, "binarize": 45.7, "sp-max": 25.4}
# The cells whose probes decide a finding (`ablation_findings`), per target.
DECIDING = {
    "cls": {
        ("conv5", "none"),
        ("conv5", "binarize"),
        ("conv5", "sp-max"),
        ("fc7", "none"),
        ("fc7", "binarize"),
    },
    "scene": {("conv5", "none"), ("conv5", "sp-max")},
}


def _merge(a: dict, b: dict) -> dict:
    """Two ``{layer: {ablation: score}}`` results as one."""
    out = {layer: dict(cells) for layer, cells in a.items()}
    for layer, cells in b.items():
        out.setdefault(layer, {}).update(cells)
    return out


def ablation_probes(ctx: Context, out_dir) -> dict:
    """Table 7 / thesis 5.1 on the PASCAL-CLS stand-in, and the same ablations of conv-5 and
    fc-7 on the SUN stand-in (whose categories depend on layout)."""
    cfg, cache, pre = ctx.cfg, ctx.cache, ctx.stages["pretrain"]
    sets = runs.feature_sets(cfg)
    k = cfg.probe_splits

    def probes(which, grid):
        """The cells that decide a finding (`DECIDING`) on every split, the others on split 0
        only (docs/methods.md §4.6)."""
        many = [cell for cell in grid if cell in DECIDING[which]]
        once = [cell for cell in grid if cell not in DECIDING[which]]
        return _merge(
            probe.probe(cache, pre, None, sets[which], once, cfg.protocol, splits=1),
            probe.probe(cache, pre, None, sets[which], many, cfg.protocol, splits=k),
        )

    cls = probes("cls", features.ablation_grid(LAYERS, ABLATIONS))
    scene = probes("scene", features.ablation_grid(("conv5", "fc7"), ABLATIONS))
    return jsonable({"cls": cls, "scene": scene})


def ablation_findings(abl) -> tuple[Section, list[Finding]]:
    cls, scene = abl["result"]["cls"], abl["result"]["scene"]
    names = ("none", "binarize", "sp-shuffle", "sp-max", "sp-max-bin")
    rows = tuple((layer, *[fmt(cls[layer].get(a)) for a in names]) for layer in LAYERS)
    paper = tuple(
        (
            f"paper {lay}",
            *[PAPER_TABLE7.get((lay, a)) for a in names],
        )
        for lay in ("conv5", "fc7")
    )
    srows = tuple((layer, *[fmt(scene[layer].get(a)) for a in names]) for layer in ("conv5", "fc7"))
    drop = lambda t, lay, a: paired(values(t, lay, "none"), values(t, lay, a))  # noqa: E731
    bin_fc7, bin_conv5 = drop(cls, "fc7", "binarize"), drop(cls, "conv5", "binarize")
    f_bin = Finding(
        "Binarisation costs little (< 5 mAP points at conv5 and fc7)",
        all_of(below(bin_fc7, 5.0), below(bin_conv5, 5.0)),
        f"drop fc7 {fmt(list(bin_fc7))}, conv5 {fmt(list(bin_conv5))} (paper 0.4, 4.8)",
    )
    c_drop, s_drop = drop(cls, "conv5", "sp-max"), drop(scene, "conv5", "sp-max")
    f_spmax = Finding(
        "sp-max costs little for classification but much where layout matters",
        all_of(below(c_drop, 5.0), above(s_drop, 3.0), above(paired(s_drop, 2 * c_drop))),
        f"conv5 sp-max drop: PASCAL-CLS stand-in {fmt(list(c_drop))}, SUN stand-in (categories "
        f"defined by layout) {fmt(list(s_drop))} (paper: CLS 3.1, DET 22.2; holds if CLS < 5, "
        f"layout > 3 and layout > 2 x CLS)",
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


# name (its stage), needs, run, report, weight of the ETA
ANALYSIS = Analysis("probe-ablations", ("pretrain",), ablation_probes, ablation_findings, 0.4)
