"""imagenet: a train tar of per-class tars and a validation tar with each label format."""

import io
import os

import numpy as np
import pytest
import scipy.io

from jaxcnn.data import sources
from jaxcnn.data.archives import PrepareMismatchError, imagenet, imagenet_labels, prepare_dataset
from tests.data.archives.originals import jpeg, write_files, write_tar

TENCH, GOLDFISH, SHARK = "n01440764", "n01443537", "n01484850"
TRAIN = {
    TENCH: {"n01440764_1.JPEG": jpeg(40, 30, 0), "n01440764_2.JPEG": jpeg(30, 50, 1, "CMYK")},
    GOLDFISH: {
        "n01443537_7.JPEG": jpeg(20, 20, 2, fmt="PNG"),
        "n01443537_9.JPEG": jpeg(64, 48, 3, "L"),
    },
}
VAL = {"ILSVRC2012_val_00000001.JPEG": (SHARK, jpeg(50, 40, 4)),
       "ILSVRC2012_val_00000002.JPEG": (TENCH, jpeg(30, 30, 5)),
       "ILSVRC2012_val_00000003.JPEG": (GOLDFISH, jpeg(100, 40, 6))}  # fmt: skip


def _tars(directory):
    outer = {}
    for wnid, files in TRAIN.items():
        buffer = io.BytesIO()
        write_tar(buffer, files)
        outer[f"{wnid}.tar"] = buffer.getvalue()
    write_tar(os.path.join(directory, imagenet.TRAIN_TAR), outer)
    write_tar(os.path.join(directory, imagenet.VAL_TAR), {k: v for k, (_, v) in VAL.items()})


def _devkit(directory):
    # devkit IDs are not in sorted-synset order: 1 -> shark, 2 -> tench, 3 -> goldfish
    synsets = np.zeros((3, 1), dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O")])
    synsets[:, 0] = [(1, SHARK), (2, TENCH), (3, GOLDFISH)]
    meta = io.BytesIO()
    scipy.io.savemat(meta, {"synsets": synsets})
    write_files(directory, {
        "ILSVRC2012_devkit_t12/data/meta.mat": meta.getvalue(),
        "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt": "1\n2\n3\n",
    })  # fmt: skip


def _check(data_dir, files_by_name, resize=None):
    names = imagenet.synsets()
    for split, expected in (("train", 4), ("validation", 3)):
        source = sources.open_split("imagenet2012", split, data_dir=data_dir)
        assert len(source) == expected and source.class_names == names
        for i in range(len(source)):
            record = source[i]
            wnid, original = files_by_name[record["id"]]
            assert names[record["label"]] == wnid
            width, height = Image_size(original)
            if resize and min(width, height) > resize:
                scale = resize / min(width, height)
                width, height = round(width * scale), round(height * scale)
            assert record["image"].shape == (height, width, 3)


def Image_size(data):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as pil:
        return pil.size


def _by_name():
    out = {n: (w, d) for w, files in TRAIN.items() for n, d in files.items()}
    return {**out, **VAL}


@pytest.mark.parametrize("form", ["csv", "devkit", "lines"])
def test_imagenet_tars_with_each_validation_label_format(tmp_path, form):
    _tars(str(tmp_path))
    if form == "csv":
        rows = "".join(f"{k[:-5]},{w} 1 2 3 4 {w} 5 6 7 8\n" for k, (w, _) in VAL.items())
        write_files(str(tmp_path), {"LOC_val_solution.csv": "ImageId,PredictionString\n" + rows})
    elif form == "devkit":
        _devkit(str(tmp_path))
    else:
        write_files(
            str(tmp_path), {"validation_labels.txt": "".join(f"{w}\n" for w, _ in VAL.values())}
        )
    summary = prepare_dataset(
        "imagenet2012", manual_dir=str(tmp_path), data_dir=str(tmp_path / "d")
    )
    assert summary.counts == {"train": 4, "validation": 3} and summary.skipped == {}
    assert summary.notes["re-encoded JPEG CMYK as RGB JPEG"] == 1
    assert summary.notes["re-encoded PNG RGB as RGB JPEG"] == 1
    assert summary.notes["grayscale JPEG (stored, converted to RGB when read)"] == 1
    assert summary.notes["synsets without training images"] == 998
    _check(str(tmp_path / "d"), _by_name())


def test_resize_is_recorded_and_not_mixed(tmp_path):
    write_files(str(tmp_path / "x"), {
        **{f"train/{w}/{n}": d for w, files in TRAIN.items() for n, d in files.items()},
        **{f"val/{w}/{n}": d for n, (w, d) in VAL.items()},  # valprep.sh's class directories
    })  # fmt: skip
    data_dir = str(tmp_path / "d")
    summary = prepare_dataset(
        "imagenet2012", manual_dir=str(tmp_path / "x"), data_dir=data_dir, resize=32
    )
    assert summary.options["resize"] == 32
    _check(data_dir, _by_name(), resize=32)
    with pytest.raises(PrepareMismatchError, match="'resize': 32"):
        prepare_dataset("imagenet2012", manual_dir=str(tmp_path / "x"), data_dir=data_dir)
    with pytest.raises(ValueError, match="--resize applies to imagenet2012 only"):
        prepare_dataset("voc2007", manual_dir=str(tmp_path / "x"), data_dir=data_dir, resize=32)


def test_missing_archives_and_labels_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="ILSVRC2012_img_train.tar not found"):
        prepare_dataset("imagenet2012", manual_dir=str(tmp_path), data_dir=str(tmp_path / "d"))
    _tars(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no validation labels in .*LOC_val_solution.csv"):
        prepare_dataset("imagenet2012", manual_dir=str(tmp_path), data_dir=str(tmp_path / "d"))
    write_files(str(tmp_path), {"ILSVRC2012_validation_ground_truth.txt": "1\n2\n3\n"})
    with pytest.raises(FileNotFoundError, match="need the devkit's meta.mat"):
        imagenet_labels.validation_labels(str(tmp_path), sorted(VAL))
