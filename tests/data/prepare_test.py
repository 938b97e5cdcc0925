"""prepare: manual-download and TensorFlow messages, toyworld preparation helpers."""

import importlib.util
import os

import pytest

from jaxcnn.data import prepare


def test_missing_manual_dir_names_files_and_place(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar"
    ):
        prepare.check_manual_dir("imagenet2012", None)
    (tmp_path / "ILSVRC2012_img_train.tar").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as info:
        prepare.check_manual_dir("imagenet2012", tmp_path)
    message = str(info.value)
    assert "missing ILSVRC2012_img_val.tar" in message
    assert os.path.join(str(tmp_path.resolve()), "ILSVRC2012_img_val.tar") in message
    prepare.check_manual_dir("voc2007", None)  # downloadable: nothing to check


def test_prepare_tfds_explains_tensorflow_requirement(tmp_path):
    # jaxcnn never imports TensorFlow; TFDS's own generation code needs it.
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed here: preparation would start downloading")
    with pytest.raises(RuntimeError, match="needs TensorFlow during generation"):
        prepare.prepare_tfds("voc2007", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="prepare_toyworld"):
        prepare.prepare_tfds("toyworld/source")


def test_training_splits_and_sizes(tiny_dir):
    assert prepare.training_splits("toyworld/scenes_tiny") == [("toyworld/scenes_tiny", "trainval")]
    assert prepare.training_splits("sun397") == [("sun397", "train")]
    assert prepare.training_splits("imagenet2012") == [("imagenet2012", "train")]
    size = prepare.directory_size(os.path.join(tiny_dir, "toyworld", "source_tiny"))
    assert 100_000 < size < 5_000_000
