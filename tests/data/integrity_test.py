"""Tests for jaxcnn.data.integrity: recorded checksums name a missing, truncated or changed file
of a prepared dataset (made for real on disk), and a damaged folder is set aside."""

import os
import shutil

import pytest

from jaxcnn.data import integrity, sources


def _dataset(folder):
    os.makedirs(folder / "sub")
    (folder / "dataset_info.json").write_text('{"name": "x"}')
    (folder / "x-train.array_record-00000-of-00001").write_bytes(os.urandom(5000))
    (folder / "sub" / "features.json").write_text("{}")
    (folder / "jaxcnn-mean-train-72.npz").write_bytes(b"derived, not recorded")
    return folder


def test_record_and_verify(tmp_path):
    folder = _dataset(tmp_path / "ds")
    assert integrity.verify(folder) is False  # nothing recorded: not checked
    checksums = integrity.record(folder)
    assert sorted(checksums["files"]) == [
        "dataset_info.json",
        os.path.join("sub", "features.json"),
        "x-train.array_record-00000-of-00001",
    ]
    assert integrity.verify(folder, full=True) is True
    (folder / "jaxcnn-mean-train-72.npz").write_bytes(b"recomputed")  # derived files ignored
    assert integrity.verify(folder, full=True)


@pytest.mark.parametrize(
    "damage, full, why",
    [
        ("truncate", False, "has 2500 bytes, 5000 were recorded"),
        ("remove", False, "is missing"),
        ("flip", True, "does not match its recorded SHA-256"),
    ],
)
def test_damage_is_named_with_the_file(tmp_path, damage, full, why):
    folder = _dataset(tmp_path / "ds")
    integrity.record(folder)
    shard = folder / "x-train.array_record-00000-of-00001"
    if damage == "truncate":
        os.truncate(shard, 2500)
    elif damage == "remove":
        shard.unlink()
    else:
        data = bytearray(shard.read_bytes())
        data[100] ^= 1
        shard.write_bytes(bytes(data))
        assert integrity.verify(folder)  # same size: only the full check sees flipped bytes
    with pytest.raises(integrity.DamagedDatasetError, match=why) as err:
        integrity.verify(folder, full=full)
    assert str(shard) in str(err.value) and "prepare it again" in str(err.value)
    reason = integrity.set_aside_if_damaged(folder)
    assert str(shard) in reason and not folder.exists()
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("ds.damaged-")]
    assert (aside / "dataset_info.json").exists()  # kept for inspection


def test_open_split_names_a_truncated_shard(tiny_dir, tmp_path):
    part = os.path.join("toyworld", "source_tiny")
    shutil.copytree(os.path.join(tiny_dir, part), tmp_path / part)
    version_dir = next((tmp_path / part).iterdir())
    integrity.record(version_dir)
    assert len(sources.open_split("toyworld/source_tiny", "train", data_dir=str(tmp_path))) > 0
    shard = sorted(version_dir.glob("*train.array_record*"))[0]
    os.truncate(shard, os.path.getsize(shard) // 2)
    with pytest.raises(integrity.DamagedDatasetError, match=f"{shard} has"):
        sources.open_split("toyworld/source_tiny", "train", data_dir=str(tmp_path))
