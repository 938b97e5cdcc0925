"""prepare: real datasets from their archives (both VOC years at once), toyworld helpers."""

import os

import pytest

from jaxcnn.data import prepare, sources
from tests.data.archives import voc_test
from tests.data.archives.originals import write_tar


def test_prepare_real_voc2007_and_2012_for_the_pooled_name(tmp_path):
    voc_test._voc2007_tars(str(tmp_path))
    sets = {"train": ["000001"], "val": ["000002", "000003"]}
    files = voc_test._files("2012", sets["train"] + sets["val"], sets)
    write_tar(str(tmp_path / "VOCtrainval_11-May-2012.tar"), files)
    summaries = prepare.prepare_real(
        "voc2007+2012", manual_dir=str(tmp_path), data_dir=str(tmp_path / "d")
    )
    assert [s.dataset for s in summaries] == ["voc2007", "voc2012"]
    pooled = sources.open_split("voc2007+2012", "trainval", data_dir=str(tmp_path / "d"))
    assert len(pooled) == 3 + 3
    with pytest.raises(ValueError, match="prepare_toyworld"):
        prepare.prepare_real("toyworld/source", manual_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare.prepare_real("coco", manual_dir=str(tmp_path))


def test_training_splits_and_sizes(tiny_dir):
    assert prepare.training_splits("toyworld/scenes_tiny") == [("toyworld/scenes_tiny", "trainval")]
    assert prepare.training_splits("sun397") == [("sun397", "train")]
    assert prepare.training_splits("imagenet2012") == [("imagenet2012", "train")]
    size = prepare.directory_size(os.path.join(tiny_dir, "toyworld", "source_tiny"))
    assert 100_000 < size < 12_000_000  # records + the decoded copy of each classification split
