"""The registry of analyses: declarations are checked, needs resolve to the right stages."""

import pytest

from jaxcnn import study
from jaxcnn.study.registry import Analysis, Context


def test_registered_analyses_are_distinct_and_complete():
    names = [a.name for a in study.ANALYSES]
    assert names == [
        "probe-snapshots",
        "probe-ablations",
        "probe-regimes",
        "probe-layers",
        "probe-transfer",
        "selectivity",
        "transfer",
        "detection",
    ]
    assert all(callable(a.run) and callable(a.report) and a.weight > 0 for a in study.ANALYSES)


def test_needs_resolve_to_stages():
    stages = {"pretrain": "P"}
    runs = {("det", "ft"): "D", ("scene", "ft"): "S", ("det", "ft", 75): "D75"}
    ctx = Context(study.StudyConfig(), None, stages, runs)
    assert ctx.upstream(("pretrain",)) == ("P",)
    assert ctx.upstream(("pretrain", "finetunes")) == ("P", "D", "S", "D75")
    assert ctx.upstream(("finetune-det-ft",)) == ("D",)
    assert ctx.upstream(("finetunes-det",)) == ("D", "D75")
    stages["probe-transfer"] = "T"
    assert ctx.upstream(("pretrain",), after=("probe-transfer",)) == ("T", "P")
    with pytest.raises(ValueError, match="finetunes"):
        ctx.upstream(("finetune",))
    with pytest.raises(ValueError, match="unknown needs"):
        Analysis("x", ("everything",), None, None, 1.0)
