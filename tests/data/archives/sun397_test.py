"""sun397: a tiny SUN397 tree (ClassName.txt, odd images) from a .tar.gz and extracted."""

import os

import numpy as np
import pytest

from jaxcnn.data import records, sources
from jaxcnn.data.archives import inputs, prepare_dataset, sun397, writer
from tests.data.archives.originals import jpeg, write_files, write_tar

# file_name -> (image bytes, TFDS split it is listed in, or None)
IMAGES = {
    "/a/abbey/sun_aaaulhwrhqgejnyt.jpg": (jpeg(40, 30, 0), "train"),
    "/a/abbey/sun_aaalbzqrimafwbiv.jpg": (jpeg(600, 400, 1), "validation"),  # > 120,000 px
    "/a/abbey/sun_aalltzgxbismofdm.jpg": (jpeg(30, 40, 2, mode="CMYK"), "test"),
    "/c/church/outdoor/sun_aajygicrimzryiuc.jpg": (jpeg(20, 20, 3, "L", fmt="PNG"), "train"),
    "/c/church/outdoor/sun_bhenjvsvrtumjuri.jpg": (jpeg(25, 20, 4), None),  # not listed
    "/c/church/outdoor/sun_aakgafaespfihctl.jpg": (jpeg(3, 2, 5), "train"),  # tiny
}
BROKEN = "/a/abbey/sun_zzzzbroken.jpg"


def _files():
    files = {"SUN397/ClassName.txt": "\n".join(sun397.tfds_classes()) + "\n"}
    files.update({f"SUN397{k}": data for k, (data, _) in IMAGES.items()})
    files[f"SUN397{BROKEN}"] = b"\xff\xd8 not really a jpeg"
    files["SUN397/x/unknown_class/sun_q.jpg"] = jpeg(10, 10, 6)
    files["SUN397/README.txt"] = "readme"
    return files


def _records(directory):
    return sorted(f for f in os.listdir(directory) if ".array_record-" in f)


def _check(data_dir, summary):
    assert summary.counts == {"train": 4, "validation": 1, "test": 1}
    assert summary.skipped["undecodable image"]["count"] == 1
    assert BROKEN in summary.skipped["undecodable image"]["examples"][0]
    assert summary.notes["file outside the class directories (ignored)"] == 1
    assert summary.notes["not in TFDS's split lists (written to train)"] == 2  # + the broken one
    assert summary.notes["converted JPEG CMYK to RGB"] == 1
    assert summary.notes["converted PNG L to RGB"] == 1
    assert summary.notes["tiny image (a side < 4 px, stored, rejected when read)"] == 1
    builder = writer.builder_for(sun397.TFDS_NAME, data_dir)
    classes = sun397.tfds_classes()
    for split in ("train", "validation", "test"):
        source = builder.as_data_source(split)
        names = {source[i]["file_name"].decode() for i in range(len(source))}
        assert names == {k for k, (_, s) in IMAGES.items() if (s or "train") == split}
    # the readers pool the three TFDS splits and draw the seeded 50/10/40 split
    parts = [
        sources.open_split("sun397", s, data_dir=data_dir, seed=0) for s in ("train", "val", "test")
    ]
    assert parts[0].class_names == classes and sum(len(p) for p in parts) == 6
    for part in parts:
        for i in range(len(part)):
            raw = part.raw(i)
            name = raw["file_name"].decode()
            assert classes[int(raw["label"])] == os.path.dirname(name)
            if name.endswith("sun_aakgafaespfihctl.jpg"):
                with pytest.raises(records.BadExampleError, match="below min_side"):
                    part[i]
                continue
            image = part[i]["image"]
            original = {"sun_aaalbzqrimafwbiv.jpg": (283, 424)}.get(os.path.basename(name))
            assert image.dtype == np.uint8 and image.shape[2] == 3
            if original:
                assert image.shape[:2] == original  # 600 x 400 scaled by sqrt(120000 / 240000)


def test_sun397_from_tar_gz_and_from_tree_agree(tmp_path):
    files = _files()
    (tmp_path / "gz").mkdir()
    write_tar(str(tmp_path / "gz" / "SUN397.tar.gz"), files, mode="w:gz")
    from_gz = prepare_dataset(
        "sun397", manual_dir=str(tmp_path / "gz"), data_dir=str(tmp_path / "a")
    )
    _check(str(tmp_path / "a"), from_gz)
    write_files(str(tmp_path / "tree"), files)
    from_tree = prepare_dataset(
        "sun397", manual_dir=str(tmp_path / "tree" / "SUN397"), data_dir=str(tmp_path / "b")
    )
    _check(str(tmp_path / "b"), from_tree)
    a, b = from_gz.directory, from_tree.directory
    assert _records(a) == _records(b)
    for f in _records(a):
        with open(os.path.join(a, f), "rb") as x, open(os.path.join(b, f), "rb") as y:
            assert x.read() == y.read()


def test_sun397_class_file_and_truncated_gz_are_named(tmp_path):
    files = _files()
    del files["SUN397/ClassName.txt"]
    write_files(str(tmp_path / "tree"), files)
    with pytest.raises(inputs.MissingInputError, match="SUN397/ClassName.txt not found"):
        prepare_dataset("sun397", manual_dir=str(tmp_path / "tree"), data_dir=str(tmp_path / "d"))
    write_files(str(tmp_path / "tree"), {"ClassName.txt": "/a/abbey\n/b/bakery\n"})
    with pytest.raises(ValueError, match="2 classes that differ from SUN397's 397"):
        prepare_dataset("sun397", manual_dir=str(tmp_path / "tree"), data_dir=str(tmp_path / "d"))
    gz = write_tar(str(tmp_path / "SUN397.tar.gz"), _files(), mode="w:gz")
    with open(gz, "rb") as f:
        data = f.read()
    with open(gz, "wb") as f:
        f.write(data[: len(data) * 2 // 3])
    with pytest.raises(inputs.ArchiveError, match="SUN397.tar.gz is truncated or corrupt"):
        prepare_dataset("sun397", manual_dir=str(tmp_path), data_dir=str(tmp_path / "e"))
