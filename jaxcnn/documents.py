"""Report documents: sections of text, tables and figures, rendered to Markdown and to one
self-contained HTML page (PNG figures embedded as base64).

The study builds a list of `Section`s; this module only renders them. A `Finding` is one of the
paper's qualitative claims with the verdict this run's numbers give and the numbers themselves.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
import os
from collections.abc import Sequence
from pathlib import Path

from jaxcnn import storage, verdicts


@dataclasses.dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple, ...]
    caption: str = ""


@dataclasses.dataclass(frozen=True)
class Figure:
    path: Path  # a PNG file
    caption: str


@dataclasses.dataclass(frozen=True)
class Finding:
    claim: str
    holds: bool | None  # None: the run lacks the numbers to decide
    evidence: str


@dataclasses.dataclass(frozen=True)
class Section:
    title: str
    text: str = ""
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    findings: tuple[Finding, ...] = ()


def fmt(value, digits: int = 1) -> str:
    """Numbers to fixed decimals, NaN/None as an en dash, a list of repeated measurements as
    ``mean ± std`` (`jaxcnn.verdicts`), everything else as str."""
    if value is None:
        return "–"
    if isinstance(value, list | tuple) and value and all(isinstance(v, int | float) for v in value):
        return verdicts.estimate(value).text(digits)
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def values(d, *keys):
    """``d[k1][k2]...`` as stored: a number, a list of repeated measurements, or None."""
    for k in keys:
        if d is None:
            return None
        d = d.get(k)
    return d


def figure_if_exists(stage_dir, name: str, caption: str) -> tuple[Figure, ...]:
    """A one-figure tuple for `<stage_dir>/<name>` if the analysis drew it, else empty."""
    path = Path(stage_dir) / name
    return (Figure(path, caption),) if path.exists() else ()


def verdict(finding: Finding) -> str:
    return {True: "holds", False: "does not hold", None: "undecided"}[finding.holds]


def cell(value) -> str:
    """A Markdown table cell: `fmt`, with pipes escaped so that they do not split the cell."""
    return fmt(value).replace("|", "\\|")


def render_markdown(title: str, sections: Sequence[Section], *, figure_root: Path) -> str:
    out = [f"# {title}", ""]
    for sec in sections:
        out += [f"## {sec.title}", ""]
        if sec.text:
            out += [sec.text, ""]
        for table in sec.tables:
            if table.caption:
                out += [f"*{table.caption}*", ""]
            out.append("| " + " | ".join(table.header) + " |")
            out.append("|" + "---|" * len(table.header))
            out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.rows]
            out.append("")
        for fig in sec.figures:
            rel = os.path.relpath(fig.path, figure_root)
            out += [f"![{fig.caption}]({rel})", "", f"*{fig.caption}*", ""]
        if sec.findings:
            out += ["| claim | verdict | numbers |", "|---|---|---|"]
            out += [
                f"| {cell(f.claim)} | **{verdict(f)}** | {cell(f.evidence)} |" for f in sec.findings
            ]
            out.append("")
    return "\n".join(out)


_CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;padding:2px 8px;
text-align:right}th{background:#eee}td:first-child{text-align:left}img{max-width:100%}
.holds{color:#060;font-weight:bold}.no{color:#a00;font-weight:bold}.und{color:#777}
figcaption,.cap{font-style:italic;color:#444}"""
_VERDICT_CLASS = {True: "holds", False: "no", None: "und"}


def _html_table(header, rows, caption=""):
    cap = f'<p class="cap">{html.escape(caption)}</p>' if caption else ""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"{cap}<table><tr>{head}</tr>{body}</table>"


def render_html(title: str, sections: Sequence[Section]) -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
    ]
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        if sec.text:
            parts += [f"<p>{html.escape(p)}</p>" for p in sec.text.split("\n\n")]
        parts += [_html_table(t.header, t.rows, t.caption) for t in sec.tables]
        for fig in sec.figures:
            data = base64.b64encode(Path(fig.path).read_bytes()).decode()
            parts.append(
                f"<figure><img src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>"
            )
        if sec.findings:
            rows = "".join(
                f"<tr><td>{html.escape(f.claim)}</td><td class='{_VERDICT_CLASS[f.holds]}'>"
                f"{verdict(f)}</td><td>{html.escape(f.evidence)}</td></tr>"
                for f in sec.findings
            )
            parts.append(
                f"<table><tr><th>claim</th><th>verdict</th><th>numbers</th></tr>{rows}</table>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out_dir: Path, title: str, sections: Sequence[Section]) -> tuple[Path, Path]:
    """Write `report.md` and a self-contained `report.html` into `out_dir` (atomically)."""
    out_dir = Path(out_dir)
    md, html_path = out_dir / "report.md", out_dir / "report.html"
    storage.write_text(md, render_markdown(title, sections, figure_root=out_dir))
    storage.write_text(html_path, render_html(title, sections))
    return md, html_path
