"""The study's data stage with damaged data: a truncated prepared shard makes the finished data
stage run again, which sets the damaged part aside (naming the file) and prepares it anew."""

import dataclasses
import logging
import os

from jaxcnn.data import integrity
from jaxcnn.study import runs

from .run_test import TINY


def test_damaged_toyworld_is_named_and_prepared_again(tmp_path, caplog):
    cfg = dataclasses.replace(TINY, data_dir=str(tmp_path / "data"))
    first = runs.data_stage(cfg, tmp_path / "work")
    source_dir = first.result["datasets"]["toyworld/source_tiny"]
    before = integrity.recorded(source_dir)
    assert before and integrity.verify(source_dir, full=True)
    assert runs.data_stage(cfg, tmp_path / "work").cached
    shard = sorted(p for p in os.listdir(source_dir) if "train.array_record" in p)[0]
    os.truncate(os.path.join(source_dir, shard), 100)
    with caplog.at_level(logging.WARNING, logger="jaxcnn.study"):
        again = runs.data_stage(cfg, tmp_path / "work")
    said = " | ".join(r.getMessage() for r in caplog.records)
    assert not again.cached and shard in said and "re-preparing toyworld/source_tiny" in said
    assert integrity.verify(source_dir, full=True)
    assert integrity.recorded(source_dir) == before  # generation is deterministic
    assert any(".damaged-" in name for name in os.listdir(os.path.dirname(source_dir)))


def test_same_layers_compares_every_array_of_the_named_layers(tmp_path):
    import types

    import numpy as np

    from jaxcnn.storage import checkpoints

    def stage(name, params):
        run_dir = str(tmp_path / name)
        checkpoints.save_params(run_dir, params, meta={}, step=3)
        return types.SimpleNamespace(result={"run_dir": run_dir})

    conv = {"kernel": np.arange(6.0).reshape(2, 3), "bias": np.zeros(3)}
    fc = {"kernel": np.ones((3, 2)), "bias": np.zeros(2)}
    a = stage("a", {"conv1": conv, "fc6": fc})
    b = stage("b", {"conv1": conv, "fc6": {**fc, "bias": np.array([0.0, 1e-30])}})
    c = stage("c", {"conv1": {**conv, "bias": np.array([0.0, 0.0, -0.0 + 1e-45])}, "fc6": fc})
    assert runs.same_layers(a, b, ["conv1"])
    assert not runs.same_layers(a, b, ["conv1", "fc6"])  # one value of fc6 differs
    assert not runs.same_layers(a, c, ["conv1"])
    assert runs.same_layers(a, c, ["fc6"])
