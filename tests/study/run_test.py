"""The whole study at a tiny size: every stage runs, every report section is present with finite
numbers, and a second call finds everything cached; a second study in a busy workdir is refused
at once."""

import dataclasses
import math
import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

from jaxcnn import model, study
from jaxcnn.storage import locks

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TINY = study.StudyConfig(
    toyworld_size="tiny", network=model.NetworkSpec(width=0.125, fc_width=32), pretrain_steps=8,
    pretrain_batch=16,
    pretrain_lr_step=6, snapshots=(4, 8), finetune_steps=4, finetune_batch=16,
    finetune_lr_step=3, scratch_steps=4, table4_snapshots=(4,), probe_train_images=40,
    probe_test_images=40, batch_size=16,
)  # fmt: skip

SECTIONS = (
    "Setup",
    "Findings checklist",
    "Table 3",
    "Table 7",
    "Tables 1 and 2",
    "Thesis Table 2.4",
    "Table 4",
    "Table 2.1",
    "Table 5",
    "Table 6",
    "Stage timings",
)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    cfg = dataclasses.replace(TINY, data_dir=str(root / "data"))
    lines = []
    first = study.run_study(cfg, str(root / "work"), emit=lines.append)
    return cfg, root, first, lines


def test_every_section_with_finite_numbers(tiny_study):
    _, _, first, lines = tiny_study
    md = open(first["report_md"]).read()
    html = open(first["report_html"]).read()
    for title in SECTIONS:
        assert re.search(rf"^## .*{re.escape(title)}", md, re.M), title
        assert title in html
    assert "data:image/png;base64," in html  # figures embedded
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(figures) >= 8
    for fig in figures:
        assert (pathlib.Path(first["report_md"]).parent / fig).stat().st_size > 1000, fig
    # Every numeric table cell is finite (undefined values would be rendered as "–").
    numbers = [float(x) for x in re.findall(r"(?<=\| )-?\d+\.\d+(?= \|)", md)]
    assert numbers and all(math.isfinite(x) for x in numbers)
    verdicts = re.findall(r"\*\*(holds|does not hold|undecided)\*\*", md)
    assert len(verdicts) == 10
    assert any("ETA" in line or "cached" in line for line in lines)


def test_second_run_is_cached(tiny_study):
    cfg, root, _, _ = tiny_study
    lines = []
    again = study.run_study(cfg, str(root / "work"), emit=lines.append)
    assert all(cached for _, _, cached in again["timings"])
    assert sum("cached" in line for line in lines) == len(again["timings"])


def test_second_study_in_the_same_workdir_is_refused_at_once(tmp_path):
    """A real study runs in a child process; a second one in the same workdir stops before any
    stage, naming the child; once the child is killed the workdir is free."""
    work, data = tmp_path / "work", tmp_path / "data"
    code = (
        "import dataclasses, sys\n"
        "sys.path.insert(0, 'tests/study')\n"
        "from run_test import TINY\n"
        "from jaxcnn import study\n"
        f"cfg = dataclasses.replace(TINY, data_dir={str(data)!r})\n"
        f"study.run_study(cfg, {str(work)!r}, emit=lambda s: print(s, flush=True))\n"
    )
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu")
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    try:
        assert child.stdout.readline().startswith("study in ")  # it holds the workdir now
        cfg = dataclasses.replace(TINY, data_dir=str(data))
        lines = []
        with pytest.raises(locks.DirectoryInUseError, match=f"in use by PID {child.pid} on host"):
            study.run_study(cfg, str(work), emit=lines.append)
        assert lines == []  # refused before any stage
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    locks.acquire(work).release()


def test_fc_ft_conv_cells_are_the_pretrained_ones(tiny_study):
    """fc-ft freezes conv1-5, so Table 2.4's fc-ft conv cells are the pre-trained network's
    (docs/methods.md §4.6) while its fc cells are its own."""
    import glob
    import json

    _, root, _, _ = tiny_study
    (summary,) = glob.glob(str(root / "work" / "probe-layers-*" / "stage.json"))
    gt = json.load(open(summary))["result"]["gt"]
    for layer in model.CONV_NAMES:
        assert gt["fc-ft"][layer] == gt["pre-train"][layer]
    assert gt["fc-ft"]["fc6"] != gt["pre-train"]["fc6"]


def test_analyses_give_the_same_numbers_one_at_a_time(tiny_study, tmp_path, monkeypatch):
    """The analyses run on two threads (study.run._Analyses); run one at a time on the same
    trained networks, every analysis's numbers are the same, bit for bit."""
    import json
    import shutil

    from jaxcnn.study import run

    cfg, root, first, _ = tiny_study
    work = root / "work"
    analyses = [a.name for a in study.ANALYSES if a.enabled(cfg)]
    again = tmp_path / "work"
    again.mkdir()
    for d in work.iterdir():  # the data and training stages only
        if d.is_dir() and d.name != "features" and d.name.rsplit("-", 1)[0] not in analyses:
            shutil.copytree(d, again / d.name, symlinks=True)
    monkeypatch.setattr(run, "WORKERS", 1)
    second = study.run_study(cfg, str(again), emit=lambda line: None)
    ran = {name for name, _, cached in second["timings"] if not cached}
    assert ran == set(analyses)

    def results(folder):  # figure paths name the folder
        out = {}
        for name in analyses:
            (stage,) = folder.glob(f"{name}-*/stage.json")
            out[name] = json.loads(stage.read_text().replace(str(folder), "<work>"))["result"]
        return out

    assert results(again) == results(work)
