"""End-to-end smoke test of run_detection on tiny toyworld: proposals, pool5, mining, test,
result files; a rerun is served from the caches."""

import dataclasses
import json
import os

import jax
import numpy as np
import pytest

pytest.importorskip("cv2")

from jaxcnn import model
from jaxcnn.detect import data, mining, run  # noqa: E402
from jaxcnn.detect import search as ss  # noqa: E402
from jaxcnn.model import alexnet
from jaxcnn.storage import checkpoints

TINY = dict(width=0.125, fc_width=32, input_size=32)


@pytest.fixture(scope="module")
def tiny_scenes(tmp_path_factory):
    from jaxcnn.data import prepare

    data_dir = tmp_path_factory.mktemp("tfds")
    prepare.prepare_toyworld(size="tiny", data_dir=str(data_dir), num_workers=1)
    return str(data_dir)


def test_run_detection_smoke(tmp_path, tiny_scenes):
    src = tmp_path / "source"
    module = alexnet.from_preset("small", 7, **TINY)
    meta = {"model": {"preset": "small", "num_classes": 7, "overrides": TINY}}
    checkpoints.save_params(src, model.init_params(module, jax.random.key(0)), meta=meta)
    spec = data.DataSpec(
        dataset="toyworld/scenes_tiny",
        data_dir=tiny_scenes,
        train_images=8,
        test_images=6,
        crop=32,
        search=ss.SearchConfig(im_width=0, max_boxes=12),
        proposal_workers=1,
    )
    dspec = run.DetectorSpec(
        layers=("conv5", "fc7"),
        conv5_ablations=("sp-max",),
        mining=mining.MiningConfig(retrain_limit=20),
        figure_images=2,
    )
    fspec = run.FinetuneSpec(steps=2, batch_size=8, fg_per_batch=2, eval_windows=8)
    out = tmp_path / "out"
    lines = []
    rows = run.run_detection(
        spec, dspec, fspec, str(out), source_run=str(src), regimes=("ft",), log=lines.append
    )
    assert [(r["network"], r["layer"], r["ablation"]) for r in rows] == [
        (n, layer, a) for n in ("ft",) for layer, a in (("conv5", "sp-max"), ("fc7", "none"))
    ]
    assert all(0 <= r["mAP"] <= 1 and r["method"] == "voc07" for r in rows)
    for name in (
        "ap-fc7-none.json",
        "ap-fc7-none.csv",
        "ap-fc7-none.md",
        "pr-fc7-none.png",
        "top_detections.png",
    ):
        assert os.path.getsize(out / "ft" / name) > 0
    summary = json.load(open(out / "summary.json"))
    assert 0 <= summary["test_proposal_recall@0.5"] <= 1
    again = run.run_detection(
        spec, dspec, fspec, str(out), source_run=str(src), regimes=("ft",), log=lines.append
    )
    assert [r["mAP"] for r in again] == [r["mAP"] for r in rows]
    assert all(len(r["mAP_resamples"]) == dspec.resamples for r in rows)

    # fc-ft froze conv1-5: its pool5 is the source's (stored once, under "none"), so its conv5
    # detectors equal the source's; the summary keeps the ft rows of the first call.
    # Only the named detector is drawn.
    drawn = dataclasses.replace(dspec, figures=("fc-ft/fc7/none",))
    more = run.run_detection(
        spec, drawn, fspec, str(out), source_run=str(src), regimes=("none", "fc-ft"),
        log=lines.append,
    )  # fmt: skip
    assert sorted(p for p in os.listdir(out / "fc-ft") if p.endswith(".png")) == [
        "pr-fc7-none.png",
        "top_detections.png",
    ]
    assert not [p for p in os.listdir(out / "none") if p.endswith(".png")]
    by = {(r["network"], r["layer"]): r for r in more}
    np.testing.assert_array_equal(  # NaN: a class without positives in the tiny test split
        list(by[("fc-ft", "conv5")]["per_class"].values()),
        list(by[("none", "conv5")]["per_class"].values()),
    )
    assert not [p for p in os.listdir(out / "fc-ft") if p.startswith("pool5")]
    assert any("(none's: equal conv1-5)" in line for line in lines)
    summary = json.load(open(out / "summary.json"))
    assert sorted((r["network"], r["layer"]) for r in summary["rows"]) == sorted(
        [("ft", "conv5"), ("ft", "fc7"), *by]
    )


def test_windows_of_keeps_one_cache_per_split_and_spec_for_the_last_two():
    """The study calls `run_detection` once per network: `windows_of` hands each call the same
    `CachedWindows` for the same split and warp, a new one for another warp, and keeps two."""
    from types import SimpleNamespace

    from jaxcnn.detect import windows

    mean = np.zeros((8, 8, 3), np.float32)
    spec = windows.WarpSpec(8, 1.0, mean)
    train, test = (SimpleNamespace(key=k, source=[]) for k in ("train-1", "test-1"))
    first = run.windows_of(train, spec)
    assert run.windows_of(train, windows.WarpSpec(8, 1.0, mean.copy())) is first
    test_cache = run.windows_of(test, spec)
    assert test_cache is not first and test_cache.spec is spec
    assert run.windows_of(train, spec) is first
    other = run.windows_of(train, windows.WarpSpec(8, 0.5, mean))  # the third: test's goes
    assert other is not first and other.spec.pad == 0.5
    assert run.windows_of(train, spec) is first
    assert run.windows_of(test, spec) is not test_cache
