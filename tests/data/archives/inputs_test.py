"""inputs: tar indexes (plain and nested) read member bytes exactly; damage is named."""

import io
import os

import pytest

from jaxcnn.data.archives import inputs
from tests.data.archives.originals import write_files, write_tar

FILES = {"a/one.txt": b"first", "a/b/two.bin": bytes(range(256)) * 5, "three": b""}


def test_index_reads_members_and_nested_tars_in_place(tmp_path):
    inner = io.BytesIO()
    write_tar(inner, FILES)
    outer = write_tar(
        str(tmp_path / "outer.tar"), {"x.txt": b"x" * 700, "inner.tar": inner.getvalue()}
    )
    index = inputs.index_tar(outer)
    assert sorted(index) == ["inner.tar", "x.txt"]
    nested = inputs.index_tar(index["inner.tar"])  # members located inside outer.tar
    assert sorted(nested) == sorted(FILES)
    with inputs.Reader() as reader:
        for name, data in FILES.items():
            assert nested[name].path == outer and reader.read(nested[name]) == data
        assert reader.read(index["x.txt"]) == b"x" * 700


def test_damaged_tars_are_named(tmp_path):
    path = write_tar(str(tmp_path / "t.tar"), FILES)
    with open(path, "rb") as f:
        data = f.read()
    # cut in a member's data, in a header, and right after a member (no end-of-archive block)
    for cut in (600, 512 * 2 + 100, 512 * 2):
        with open(path, "wb") as f:
            f.write(data[:cut])
        with pytest.raises(inputs.ArchiveError, match=r"t\.tar is truncated"):
            inputs.index_tar(path)
    with open(path, "wb") as f:
        f.write(b"not a tar at all" * 64)
    with pytest.raises(inputs.ArchiveError, match=r"t\.tar is truncated or not a tar"):
        inputs.index_tar(path)
    with open(path, "wb") as f:
        f.write(data)
    location = inputs.index_tar(path)["a/b/two.bin"]
    with open(path, "wb") as f:  # the file shrank after it was indexed
        f.write(data[: location.offset + 10])
    with pytest.raises(inputs.ArchiveError, match="truncated: 1280 bytes expected"):
        inputs.Reader().read(location)


def test_tree_prefers_directories_and_names_the_missing_file(tmp_path):
    write_files(str(tmp_path / "root"), {"a/one.txt": b"from the directory"})
    tar = write_tar(str(tmp_path / "t.tar"), FILES)
    tree = inputs.Tree([str(tmp_path / "root")], [tar], describe="Put it there.")
    with inputs.Reader() as reader:
        assert reader.read(tree.get("a/one.txt")) == b"from the directory"
        assert reader.read(tree.get("three")) == b""
    assert tree.names("a/") == ["a/b/two.bin", "a/one.txt"]
    with pytest.raises(inputs.MissingInputError) as info:
        tree.get("a/missing.txt")
    message = str(info.value)
    assert message.startswith("a/missing.txt not found (in " + tar)
    assert os.path.join(str(tmp_path / "root"), "a/missing.txt") in message
    assert message.endswith("Put it there.")
    assert not inputs.is_stream(tar)
    gz = write_tar(str(tmp_path / "t.tar.gz"), FILES, mode="w:gz")
    assert inputs.is_stream(gz)
