"""voc: tiny VOC 2007 / 2012 in their original layouts, prepared and read back unchanged."""

import glob
import hashlib
import os

import numpy as np
import pytest

from jaxcnn.data import boxes, integrity, sources
from jaxcnn.data.archives import inputs, prepare_dataset, voc
from tests.data.archives.originals import jpeg, write_files, write_tar

# id -> (width, height, objects (name, pose, truncated, difficult, xmin, ymin, xmax, ymax))
IMAGES = {
    "000001": (60, 40, [("dog", "Left", 1, 0, 5, 7, 30, 40),
                        ("person", "Frontal", 0, 1, 1, 1, 60, 40)]),  # full-image box
    "000002": (50, 50, []),  # an image without objects
    "000003": (40, 30, [("cat", "Rear", 0, 1, 2, 3, 9, 9),  # only difficult: label -1
                        ("chair", "Unspecified", 1, 0, 10, 10, 20, 20)]),
    "000004": (30, 30, [("car", "Unspecified", 0, 0, 3, 4, 25, 26)]),
    "000005": (36, 24, [("bird", "Right", 0, 1, 1, 2, 3, 4),
                        ("bird", "Left", 0, 0, 7, 7, 7, 7)]),  # a one-pixel box
}  # fmt: skip
SETS = {"train": ["000001", "000002"], "val": ["000003"], "test": ["000004", "000005"]}


def _xml(image_id):
    width, height, objects = IMAGES[image_id]
    parts = [f"<annotation><filename>{image_id}.jpg</filename>"]
    parts.append(f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>")
    for name, pose, truncated, difficult, *xyxy in objects:
        box = "".join(
            f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), xyxy, strict=True)
        )
        parts.append(
            f"<object><name>{name}</name><pose>{pose}</pose><truncated>{truncated}</truncated>"
            f"<difficult>{difficult}</difficult><bndbox>{box}</bndbox></object>"
        )
    return "".join(parts) + "</annotation>"


def _files(year, ids, sets):
    base = f"VOCdevkit/VOC{year}"
    files = {f"{base}/ImageSets/Main/{s}.txt": "".join(f"{i}\n" for i in sets[s]) for s in sets}
    for n, image_id in enumerate(ids):
        width, height, _ = IMAGES[image_id]
        files[f"{base}/Annotations/{image_id}.xml"] = _xml(image_id)
        files[f"{base}/JPEGImages/{image_id}.jpg"] = jpeg(width, height, seed=n)
    return files


def _voc2007_tars(directory):
    trainval = {s: SETS[s] for s in ("train", "val")}
    trainval["trainval"] = SETS["train"] + SETS["val"]
    files_tv = _files("2007", trainval["trainval"], trainval)
    files_test = _files("2007", SETS["test"], {"test": SETS["test"]})
    write_tar(os.path.join(directory, "VOCtrainval_06-Nov-2007.tar"), files_tv)
    write_tar(os.path.join(directory, "VOCtest_06-Nov-2007.tar"), files_test)
    return {**files_tv, **files_test}


def _check_split(source, ids, files, year):
    assert source.class_names == voc.CLASSES
    assert sorted(source[i]["id"] for i in range(len(source))) == sorted(f"{i}.jpg" for i in ids)
    for i in range(len(source)):
        record, raw = source[i], source.raw(i)
        image_id = record["id"][:-4]
        width, height, objects = IMAGES[image_id]
        assert raw["image"] == files[f"VOCdevkit/VOC{year}/JPEGImages/{image_id}.jpg"]
        assert record["image"].shape == (height, width, 3)
        xyxy = np.array([o[4:] for o in objects], np.int64).reshape(-1, 4)
        np.testing.assert_array_equal(
            record["objects"]["bbox"], boxes.voc_to_normalised(xyxy, height=height, width=width)
        )
        np.testing.assert_array_equal(
            boxes.normalised_to_voc(record["objects"]["bbox"], height=height, width=width), xyxy
        )
        names = [voc.CLASSES[k] for k in record["objects"]["label"]]
        assert names == [o[0] for o in objects]
        assert record["objects"]["difficult"].tolist() == [bool(o[3]) for o in objects]
        assert record["objects"]["truncated"].tolist() == [bool(o[2]) for o in objects]
        poses = [voc.POSES[k] for k in raw["objects"]["pose"]]
        assert poses == [o[1].lower() for o in objects]
        expected = np.zeros(20, np.int8)
        for name, _, _, difficult, *_ in objects:
            k = voc.CLASSES.index(name)
            expected[k] = max(expected[k], 1) if not difficult else (expected[k] or -1)
        np.testing.assert_array_equal(record["labels"], expected)
    return [source[i]["id"][:-4] for i in range(len(source))]


def test_voc2007_from_tars_reads_back_through_the_readers(tmp_path):
    files = _voc2007_tars(str(tmp_path))
    data_dir = str(tmp_path / "data")
    summary = prepare_dataset("voc2007", manual_dir=str(tmp_path), data_dir=data_dir)
    assert summary.counts == {"train": 2, "validation": 1, "test": 2}
    assert summary.skipped == {}
    assert summary.notes["image without objects"] == 1
    for split, ids in [
        ("train", SETS["train"]),
        ("validation", SETS["val"]),
        ("test", SETS["test"]),
    ]:
        order = _check_split(
            sources.open_split("voc2007", split, data_dir=data_dir), ids, files, "2007"
        )
        expected = sorted(ids, key=lambda k: hashlib.md5((split + k).encode()).digest())
        assert order == expected  # TFDS's writer order
    trainval = sources.open_split("voc2007", "trainval", data_dir=data_dir)
    assert len(trainval) == 3
    # 000005: a difficult and a clear bird -> positive; 000003: cat only difficult -> -1
    test = sources.open_split("voc2007", "test", data_dir=data_dir)
    record = next(test[i] for i in range(len(test)) if test[i]["id"] == "000005.jpg")
    assert record["labels"][voc.CLASSES.index("bird")] == 1
    # a second run finds it prepared and says so, without reading the archives again
    for tar in ("VOCtrainval_06-Nov-2007.tar", "VOCtest_06-Nov-2007.tar"):
        os.remove(tmp_path / tar)
    again = prepare_dataset("voc2007", manual_dir=str(tmp_path), data_dir=data_dir)
    assert again.already_prepared and again.counts == summary.counts


def test_voc2012_from_an_extracted_vocdevkit(tmp_path):
    sets = {"train": ["000001", "000003"], "val": ["000002"]}
    sets["trainval"] = sets["train"] + sets["val"]
    files = _files("2012", sets["trainval"], sets)
    write_files(str(tmp_path / "extracted"), files)
    data_dir = str(tmp_path / "data")
    manual = str(tmp_path / "extracted" / "VOCdevkit")  # the VOCdevkit/ directory itself
    summary = prepare_dataset("voc2012", manual_dir=manual, data_dir=data_dir)
    assert summary.counts == {"train": 2, "validation": 1}
    _check_split(
        sources.open_split("voc2012", "train", data_dir=data_dir), sets["train"], files, "2012"
    )
    both = sources.open_split("voc2012", "trainval", data_dir=data_dir)
    assert len(both) == 3


def test_missing_file_names_what_is_expected_where(tmp_path):
    files = _voc2007_tars(str(tmp_path))
    os.remove(tmp_path / "VOCtest_06-Nov-2007.tar")
    with pytest.raises(inputs.MissingInputError) as info:
        prepare_dataset("voc2007", manual_dir=str(tmp_path), data_dir=str(tmp_path / "d"))
    message = str(info.value)
    assert "VOCdevkit/VOC2007/ImageSets/Main/test.txt not found" in message
    assert "VOCtest_06-Nov-2007.tar" in message and str(tmp_path) in message
    # an image listed in a split file but absent from the archive
    del files["VOCdevkit/VOC2007/JPEGImages/000003.jpg"]
    tv = {
        k: v
        for k, v in files.items()
        if "000004" not in k and "000005" not in k and "test" not in k
    }
    write_tar(str(tmp_path / "VOCtrainval_06-Nov-2007.tar"), tv)
    write_tar(
        str(tmp_path / "VOCtest_06-Nov-2007.tar"),
        _files("2007", SETS["test"], {"test": SETS["test"]}),
    )
    with pytest.raises(inputs.MissingInputError, match="JPEGImages/000003.jpg not found"):
        prepare_dataset("voc2007", manual_dir=str(tmp_path), data_dir=str(tmp_path / "d"))


def test_truncated_tar_is_named(tmp_path):
    _voc2007_tars(str(tmp_path))
    path = str(tmp_path / "VOCtrainval_06-Nov-2007.tar")
    with open(path, "rb") as f:
        data = f.read()
    for cut in (len(data) // 2, 512 * 7 + 100):  # inside a member's data, inside a header
        with open(path, "wb") as f:
            f.write(data[:cut])
        with pytest.raises(inputs.ArchiveError, match="VOCtrainval_06-Nov-2007.tar is truncated"):
            prepare_dataset("voc2007", manual_dir=str(tmp_path), data_dir=str(tmp_path / "d"))


def test_a_damaged_prepared_dataset_is_set_aside_and_prepared_again(tmp_path, caplog):
    _voc2007_tars(str(tmp_path))
    data_dir = str(tmp_path / "data")
    summary = prepare_dataset("voc2007", manual_dir=str(tmp_path), data_dir=data_dir)
    assert integrity.verify(summary.directory, full=True)  # checksums recorded when finished
    shard = sorted(glob.glob(os.path.join(summary.directory, "*test.array_record*")))[0]
    with open(shard, "r+b") as f:  # flip one byte: same size, so only the SHA-256 sees it
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    with caplog.at_level("WARNING"):
        again = prepare_dataset("voc2007", manual_dir=str(tmp_path), data_dir=data_dir)
    assert not again.already_prepared and again.counts == summary.counts
    assert os.path.basename(shard) in caplog.text and "SHA-256" in caplog.text
    aside = glob.glob(summary.directory.rstrip(os.sep) + ".damaged-*")
    assert len(aside) == 1 and os.path.exists(os.path.join(aside[0], os.path.basename(shard)))
    assert integrity.verify(again.directory, full=True)
    test = sources.open_split("voc2007", "test", data_dir=data_dir)
    assert sorted(test[i]["id"] for i in range(len(test))) == ["000004.jpg", "000005.jpg"]
