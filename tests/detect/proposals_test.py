"""load_rcnn_proposals on a file written in R-CNN's layout with scipy.io.savemat; recall."""

import numpy as np
import pytest
import scipy.io

from jaxcnn.detect import proposals


def _cell(items):
    out = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        out[0, i] = item
    return out


def test_reads_rcnn_layout(tmp_path):
    # R-CNN's files: 'images' a cell of ids, 'boxes' a cell of K x 4 [y1 x1 y2 x2] (1-based).
    yxyx = [
        np.array([[2.0, 1.0, 10.0, 20.0], [5.0, 6.0, 7.0, 8.0]]),
        np.zeros((0, 4)),
        np.array([[1.0, 1.0, 375.0, 500.0]]),
    ]
    path = tmp_path / "voc_2007_test.mat"
    scipy.io.savemat(path, {"images": _cell(["000001", "000002", "000004"]), "boxes": _cell(yxyx)})
    ids, boxes = proposals.load_rcnn_proposals(path)
    assert ids == ["000001", "000002", "000004"]
    np.testing.assert_array_equal(boxes[0], [[1, 2, 20, 10], [6, 5, 8, 7]])
    assert boxes[1].shape == (0, 4)
    np.testing.assert_array_equal(boxes[2], [[1, 1, 500, 375]])
    assert all(b.dtype == np.int64 for b in boxes)


def test_column_cell_arrays_and_errors(tmp_path):
    path = tmp_path / "col.mat"
    images = _cell(["a"]).T  # N x 1 cells load too
    scipy.io.savemat(path, {"images": images, "boxes": _cell([np.array([[1.0, 2, 3, 4]])]).T})
    ids, boxes = proposals.load_rcnn_proposals(path)
    assert ids == ["a"] and boxes[0].tolist() == [[2, 1, 4, 3]]
    bad = tmp_path / "bad.mat"
    scipy.io.savemat(bad, {"images": _cell(["a"])})
    with pytest.raises(ValueError, match="boxes"):
        proposals.load_rcnn_proposals(bad)
    short = tmp_path / "short.mat"
    scipy.io.savemat(short, {"images": _cell(["a", "b"]), "boxes": _cell([np.ones((1, 4))])})
    with pytest.raises(ValueError, match="2 image ids but 1"):
        proposals.load_rcnn_proposals(short)


def test_recall_by_hand():
    gt = [np.array([[1, 1, 10, 10], [20, 20, 29, 29]]), np.array([[5, 5, 8, 8]])]
    props = [np.array([[1, 1, 10, 11], [40, 40, 50, 50]]), np.zeros((0, 4))]
    # image 0: first gt covered (IoU 100/110), second not; image 1: no proposals.
    recall, per_image = proposals.recall_at(props, gt, iou=0.5)
    assert recall == pytest.approx(1 / 3) and per_image == 1.0


def test_matlab_v73_file_is_named_with_how_to_resave(tmp_path):
    # A v7.3 (HDF5) .mat file: the 128-byte MAT header with version 0x0200, which scipy refuses
    # with NotImplementedError; the reader says what the file is and how to re-save it.
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116, b" ") + bytes(8)
    path = tmp_path / "voc_2007_test.mat"
    path.write_bytes(header + b"\x00\x02IM" + bytes(512))
    with pytest.raises(ValueError, match=r"voc_2007_test\.mat: MATLAB v7\.3 file; re-save"):
        proposals.load_rcnn_proposals(str(path))
