"""Stage caching: finished stages are skipped, config changes re-run, failures leave no marker."""

import json

import pytest

from jaxcnn.storage import stages


def _counting_stage(calls, value):
    def fn(out_dir):
        calls.append(value)
        (out_dir / "out.txt").write_text(str(value))
        return {"value": value}

    return fn


def test_finished_stage_is_cached(tmp_path):
    calls = []
    a = stages.run_stage(tmp_path, "a", {"x": 1}, _counting_stage(calls, 1))
    b = stages.run_stage(tmp_path, "a", {"x": 1}, _counting_stage(calls, 1))
    assert calls == [1]
    assert (a.cached, b.cached) == (False, True)
    assert b.result == {"value": 1} and b.out_dir == a.out_dir
    assert json.loads((a.out_dir / stages.MARKER).read_text())["config"] == {"x": 1}


def test_config_and_upstream_changes_rerun(tmp_path):
    calls = []
    a1 = stages.run_stage(tmp_path, "a", {"x": 1}, _counting_stage(calls, "a1"))
    a2 = stages.run_stage(tmp_path, "a", {"x": 2}, _counting_stage(calls, "a2"))
    assert a1.key != a2.key
    b1 = stages.run_stage(tmp_path, "b", {}, _counting_stage(calls, "b1"), upstream=(a1,))
    b2 = stages.run_stage(tmp_path, "b", {}, _counting_stage(calls, "b2"), upstream=(a2,))
    b1_again = stages.run_stage(tmp_path, "b", {}, _counting_stage(calls, "x"), upstream=(a1,))
    assert b1.key != b2.key and b1_again.cached
    assert calls == ["a1", "a2", "b1", "b2"]


def test_key_ignores_dict_order():
    assert stages.stage_key("s", {"a": 1, "b": 2}) == stages.stage_key("s", {"b": 2, "a": 1})


def test_interrupted_stage_runs_again(tmp_path):
    def boom(out_dir):
        (out_dir / "partial").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stages.run_stage(tmp_path, "a", {}, boom)
    calls = []
    res = stages.run_stage(tmp_path, "a", {}, _counting_stage(calls, 3))
    assert calls == [3] and not res.cached
    assert (res.out_dir / "partial").read_text() == "half"  # the stage may resume from it


def test_upstream_checkpoint_digests_are_part_of_the_key(tmp_path):
    """A training stage retrained to different checkpoints (same config) re-keys its
    consumers; one whose digests are unchanged does not."""
    calls = []
    first = stages.StageResult("t", "k", tmp_path, {"checkpoints": {"4": "aa"}}, 0.0, False)
    same = stages.StageResult("t", "k", tmp_path, {"checkpoints": {"4": "aa"}}, 0.0, True)
    retrained = stages.StageResult("t", "k", tmp_path, {"checkpoints": {"4": "bb"}}, 0.0, False)
    a = stages.run_stage(tmp_path, "probe", {}, _counting_stage(calls, 1), upstream=(first,))
    b = stages.run_stage(tmp_path, "probe", {}, _counting_stage(calls, 2), upstream=(same,))
    c = stages.run_stage(tmp_path, "probe", {}, _counting_stage(calls, 3), upstream=(retrained,))
    assert b.cached and a.key == b.key and c.key != a.key and calls == [1, 3]


def test_invalid_finished_stage_runs_again(tmp_path):
    calls, state = [], {"digest": "aa"}

    def fn(out_dir):
        calls.append(state["digest"])
        return {"checkpoints": {"1": state["digest"]}}

    def valid(result):
        return result["checkpoints"] == {"1": state["digest"]}

    stages.run_stage(tmp_path, "train", {}, fn, valid=valid)
    assert stages.run_stage(tmp_path, "train", {}, fn, valid=valid).cached
    state["digest"] = "bb"  # its checkpoints were replaced behind its back
    again = stages.run_stage(tmp_path, "train", {}, fn, valid=valid)
    assert not again.cached and again.result == {"checkpoints": {"1": "bb"}}
    assert calls == ["aa", "bb"]
