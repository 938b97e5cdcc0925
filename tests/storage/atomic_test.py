"""Atomic writes: whole files appear, a failed write leaves the old file and no temporary."""

import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from jaxcnn import storage


def test_writers_round_trip_and_leave_no_temporaries(tmp_path):
    storage.write_text(tmp_path / "a.txt", "hello")
    storage.write_json(tmp_path / "sub" / "b.json", {"x": [1, 2]}, indent=1, sync=True)
    storage.save_npy(tmp_path / "c.npy", np.arange(3))
    storage.save_npz(tmp_path / "d.npz", a=np.ones(2), b=np.zeros(1))
    fig = Figure()
    fig.subplots().plot([0, 1])
    storage.save_figure(fig, tmp_path / "e.png")
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert json.loads((tmp_path / "sub" / "b.json").read_text()) == {"x": [1, 2]}
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), np.arange(3))
    assert sorted(np.load(tmp_path / "d.npz").files) == ["a", "b"]
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["a.txt", "c.npy", "d.npz", "e.png", "sub"]
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "r.json"
    storage.write_json(path, {"v": 1})
    with pytest.raises(TypeError):
        storage.write_json(path, {"v": object()})  # not JSON-serialisable
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_jsonable():
    got = storage.jsonable(
        {1: np.float32(0.5), "n": np.nan, "a": np.arange(2), "t": (np.int64(3),)}
    )
    assert got == {"1": 0.5, "n": None, "a": [0, 1], "t": [3]}
    assert json.dumps(got)
