"""Report rendering: every section, table cell, figure and verdict reaches both documents."""

import base64
import math

from PIL import Image

from jaxcnn import documents as render


def _sections(tmp_path):
    png = tmp_path / "fig.png"
    Image.new("RGB", (4, 3), (255, 0, 0)).save(png)
    table = render.Table(
        ("layer", "mAP", "paper"),
        (("conv5", 61.234, 65.6), ("fc7", math.nan, 74.1)),
        caption="Probe mAP",
    )
    findings = (
        render.Finding("depth helps", True, "conv1 20.0 < fc7 70.0"),
        render.Finding("binarise is free", False, "drop 9.0"),
        render.Finding("bottom-up", None, "no snapshots"),
    )
    return [
        render.Section(
            "Table 3", "Two paragraphs.\n\nSecond.", (table,), (render.Figure(png, "a red square"),)
        ),
        render.Section("Findings", findings=findings),
    ], png


def test_markdown_and_html_contain_everything(tmp_path):
    sections, png = _sections(tmp_path)
    md_path, html_path = render.write_report(tmp_path, "Study", sections)
    md, page = md_path.read_text(), html_path.read_text()
    for text in (md, page):
        for needle in (
            "Table 3",
            "Probe mAP",
            "conv5",
            "61.2",
            "65.6",
            "–",
            "a red square",
            "depth helps",
            "does not hold",
            "undecided",
        ):
            assert needle in text, needle
    assert "| fc7 | – | 74.1 |" in md
    assert "![a red square](fig.png)" in md
    # The HTML embeds the PNG itself, so it is self-contained.
    assert base64.b64encode(png.read_bytes()).decode() in page
    assert "src='fig.png'" not in page
    assert page.count("<h2>") == 2


def test_fmt():
    assert render.fmt(1.25, 1) in ("1.2", "1.3")
    assert render.fmt(None) == "–" and render.fmt(float("nan")) == "–"
    assert render.fmt(7) == "7" and render.fmt("x") == "x"


def test_pipes_in_cells_are_escaped():
    assert render.cell("mean |x|") == "mean \\|x\\|"
    assert render.cell(1.25) in ("1.2", "1.3")
