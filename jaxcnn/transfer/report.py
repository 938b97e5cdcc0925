"""Figure, tables and findings of the transfer experiment (Yosinski et al., Fig. 2).

`sections(result, out_dir)` builds the report sections (`jaxcnn.documents`) from
`experiment.gather`'s result and draws the figure into `out_dir`; `write` renders them as
``report.md`` / ``report.html`` next to ``results.json``. A study can put the same sections into
its own render.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from jaxcnn import documents as render
from jaxcnn import storage
from jaxcnn.transfer import findings

# Yosinski et al. 2014, mean of the 10 best top-1 evaluations on B's validation set, from their
# released logs (ImageNet, 500/500 random splits). For BnB+ and AnB+ only the range over n.
PAPER_BASE_B = 0.625
PAPER = {
    "BnB": (0.627, 0.624, 0.621, 0.605, 0.594, 0.619, 0.623),
    "AnB": (0.628, 0.624, 0.619, 0.600, 0.578, 0.581, 0.543),
}
PAPER_RANGE = {"BnB+": (0.618, 0.631), "AnB+": (0.637, 0.647)}
STYLE = {  # the authors' colours: blue for B-to-B, red for A-to-B, light for "+"
    "baseB": ("white", "o"),
    "BnB": ("#1f3f9f", "o"),
    "BnB+": ("#7fa8ff", "o"),
    "AnB": ("#a01010", "D"),
    "AnB+": ("#ff8080", "D"),
    "random": ("#888888", "s"),
}


def means(rows, metric: str = "best") -> dict[tuple[str, int], float]:
    cells = {}
    for r in rows:
        cells.setdefault((r["treatment"], r["n"]), []).append(r[metric])
    return {k: float(np.mean(v)) for k, v in cells.items()}


def plot(rows, path: Path, *, title: str = "") -> Path:
    """Top-1 (mean of the k best evaluations) against n: one dot per run, one line per
    treatment through its means, baseB at n = 0 (white circles)."""
    from matplotlib.figure import Figure  # not pyplot: plots may be drawn on several threads

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    mean = means(rows)
    base = mean.get(("baseB", 0), float("nan"))
    names = [t for t in STYLE if any(r["treatment"] == t for r in rows)]
    for i, name in enumerate(names):
        colour, marker = STYLE[name]
        offset = 0.0 if name == "baseB" else (i - len(names) / 2) * 0.04
        xs = [r["n"] + offset for r in rows if r["treatment"] == name]
        ys = [r["best"] for r in rows if r["treatment"] == name]
        ax.scatter(xs, ys, c=colour, marker=marker, edgecolors="k", s=28, zorder=3)
        if name != "baseB":
            ns = sorted({r["n"] for r in rows if r["treatment"] == name})
            ax.plot([0, *ns], [base, *[mean[(name, n)] for n in ns]], "-", c=colour, label=name)
    ax.scatter([], [], c="white", edgecolors="k", label="baseB")
    ax.set(xlabel="layer n at which the network is chopped", ylabel="top-1 accuracy")
    ax.set_xticks(range(8))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    ax.set_title(title or "Yosinski et al. Fig. 2: transfer from A or B to B")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    return path


def means_table(rows) -> render.Table:
    """Means per n of every treatment, each beside the authors' value."""
    best, final = means(rows, "best"), means(rows, "final")
    names = [t for t in STYLE if t != "baseB" and any(k[0] == t for k in best)]
    header = ["n"]
    for name in names:
        header += [name, f"{name} (paper)"]
    out = [("0 (baseB)", *[_fmt(best.get(("baseB", 0))), _fmt(PAPER_BASE_B)] * len(names))]
    for n in sorted({r["n"] for r in rows if r["n"] > 0}):
        row = [str(n)]
        for name in names:
            row += [_fmt(best.get((name, n))), _paper(name, n)]
        out.append(tuple(row))
    out.append(
        ("final, mean over n", *[
            v for name in names for v in (_fmt(_mean_over_n(final, name)), "")
        ])
    )  # fmt: skip
    caption = (
        "Top-1 on the target half's validation set, mean of the k best evaluations, mean over "
        "runs; paper: Yosinski et al. 2014 (ImageNet 500/500), BnB+/AnB+ given as their range "
        "over n. Last row: the final evaluation's top-1 averaged over n."
    )
    return render.Table(tuple(header), tuple(out), caption)


def _mean_over_n(cell_means: dict, name: str) -> float:
    vals = [v for (t, n), v in cell_means.items() if t == name]
    return float(np.mean(vals)) if vals else float("nan")


def _fmt(value) -> str:
    return "–" if value is None or np.isnan(value) else f"{value:.3f}"


def _paper(name: str, n: int) -> str:
    if name in PAPER:
        return f"{PAPER[name][n - 1]:.3f}"
    if name in PAPER_RANGE:
        lo, hi = PAPER_RANGE[name]
        return f"{lo:.3f}–{hi:.3f}"
    return "–"


def sections(result: dict, out_dir: Path) -> tuple[list[render.Section], list[render.Finding]]:
    """The report's sections and findings for a gathered result (draws the figure)."""
    rows = result["rows"]
    found, nz = findings.decide(rows, result["val_count"])
    figure = plot(rows, Path(out_dir) / "transfer.png")
    runs = len({(r["split"], r["target"]) for r in rows})
    text = (
        f"{len(rows)} networks' top-1 on the target half's validation set "
        f"({result['val_count']} images), {runs} (split, target) block(s); metric: the mean of "
        f"the {result['best_k']} best evaluations. Noise for the findings: {nz.describe()}; a "
        f"difference counts when it exceeds {findings.Z:g} sigma sqrt(1/N_a + 1/N_b)."
    )
    sec = render.Section(
        "Transfer between halves A and B (Yosinski et al. 2014, Fig. 2)",
        text,
        (means_table(rows),),
        (render.Figure(figure, "top-1 against n: dots are runs, lines join the means"),),
        tuple(found),
    )
    return [sec], found


def write(result: dict, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """``results.json``, ``transfer.png``, ``report.md`` and ``report.html`` in `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    secs, found = sections(result, out_dir)
    verdicts = [{"claim": f.claim, "holds": f.holds, "evidence": f.evidence} for f in found]
    storage.write_json(
        out_dir / "results.json",
        {**result, "findings": verdicts},
        indent=1,
        sort_keys=True,
        default=str,
    )
    return render.write_report(out_dir, "Transferability of features (Yosinski et al.)", secs)


def load(out_dir: str | os.PathLike) -> dict:
    return json.loads((Path(out_dir) / "results.json").read_text())
