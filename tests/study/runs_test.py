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
