"""stream: one ordered pass over a .tar.gz into spill chunks; interrupted passes resume."""

import os

import pytest

from jaxcnn.data.archives import inputs, stream, sun397
from tests.data.archives.originals import write_tar
from tests.data.archives.sun397_test import _files


class _Stop(Exception):
    """Raised by the tests to interrupt a preparation part-way."""


def _spill(gz, directory, **kwargs):
    return stream.spill(
        gz, wanted=sun397._is_image_path, process=sun397.shrink, directory=directory,
        keep={sun397.CLASS_FILE}, chunk_size=2, **kwargs,
    )  # fmt: skip


def _contents(spilled):
    with inputs.Reader() as reader:
        return {name: reader.read(loc) for name, loc in spilled.locations.items()}


def test_interrupted_spill_resumes_with_workers(tmp_path):
    gz = write_tar(str(tmp_path / "SUN397.tar.gz"), _files(), mode="w:gz")
    fresh = _spill(gz, str(tmp_path / "fresh"))
    assert len(fresh.locations) == 7  # 8 images in class-like paths, one undecodable
    assert fresh.skipped_names == ["SUN397/a/abbey/sun_zzzzbroken.jpg"]
    assert sun397.CLASS_FILE in fresh.kept

    def stop(progress):
        assert progress.done == 8 and progress.total >= 8 and progress.per_second > 0
        raise _Stop

    with pytest.raises(_Stop):  # after the first batch (all 8): chunks 0-2 closed, 3 open
        _spill(gz, str(tmp_path / "spill"), progress=stop)
    done = sorted(f for f in os.listdir(tmp_path / "spill") if f.endswith(".json"))
    assert done == ["chunk-00000.json", "chunk-00001.json", "chunk-00002.json"]
    resumed = _spill(gz, str(tmp_path / "spill"), num_workers=2)
    assert _contents(resumed) == _contents(fresh)
    assert resumed.notes == fresh.notes and resumed.skipped == fresh.skipped
