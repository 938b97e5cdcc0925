"""Probe tables of `jaxcnn.probe.sweep` results as JSON, CSV, Markdown and a plot."""

import csv
import io
import json
import os

from jaxcnn import storage
from jaxcnn.features.ablations import ABLATIONS
from jaxcnn.probe import plots


def write_tables(results: dict, meta: dict, out_dir: str) -> list:
    """Probe results ``{step: {layer: {ablation: score}}}`` -> probes.json / .csv / .md and a
    plot of score vs layer per ablation (last step), all written atomically. Returns paths."""
    os.makedirs(out_dir, exist_ok=True)
    rows = [
        (step, layer, abl, score)
        for step, by_layer in results.items()
        for layer, by_abl in by_layer.items()
        for abl, score in by_abl.items()
    ]
    ablations = sorted(
        {r[2] for r in rows}, key=lambda a: ABLATIONS.index(a) if a in ABLATIONS else 99
    )
    buf = io.StringIO()
    csv.writer(buf).writerows([("step", "layer", "ablation", "score"), *rows])
    md = [f"{meta['metric']} ({meta['protocol']}, {meta['dataset']} {meta['view']})", ""]
    for step, by_layer in results.items():
        md += [
            f"step {step}",
            "",
            "| layer | " + " | ".join(ablations) + " |",
            "|---" * (len(ablations) + 1) + "|",
        ]
        md += [
            "| "
            + layer
            + " | "
            + " | ".join(f"{by_abl[a]:.1f}" if a in by_abl else "–" for a in ablations)
            + " |"
            for layer, by_abl in by_layer.items()
        ]
        md.append("")
    texts = {
        "probes.json": json.dumps({"meta": meta, "results": results}, indent=1),
        "probes.csv": buf.getvalue(),
        "probes.md": "\n".join(md),
    }
    paths = []
    for name, text in texts.items():
        paths.append(os.path.join(out_dir, name))
        storage.write_text(paths[-1], text)
    last = results[list(results)[-1]]
    layers = list(last)
    values = {a: [last[la].get(a, float("nan")) for la in layers] for a in ablations}
    paths.append(
        plots.plot_metric_vs_layer(
            layers, values, os.path.join(out_dir, "metric_vs_layer.png"), ylabel=meta["metric"]
        )
    )
    return paths
