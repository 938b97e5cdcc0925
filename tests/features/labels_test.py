"""Label conversions of feature sets against hand-worked codings (docs/methods.md §3.2)."""

import numpy as np

from jaxcnn.features import boxes_as_multilabel, to_devkit_labels


def test_pipeline_labels_to_devkit_coding():
    # pipeline: 1 present, 0 absent, -1 difficult-only -> devkit: 1, -1, 0.
    pipeline = np.array([[1, 0, -1], [0, 0, 0], [-1, 1, 1]], np.int8)
    want = np.array([[1, -1, 0], [-1, -1, -1], [0, 1, 1]], np.int8)
    got = to_devkit_labels(pipeline)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int8


def test_boxes_as_one_vs_rest_columns():
    labels = np.array([2, 0, 2, 1])
    difficult = np.array([False, True, False, False])
    want = np.array(
        [
            [-1, -1, 1],
            [0, -1, -1],  # a difficult box: 0 in its own class only
            [-1, -1, 1],
            [-1, 1, -1],
        ],
        np.int8,
    )
    np.testing.assert_array_equal(boxes_as_multilabel(labels, difficult, 3), want)
    assert boxes_as_multilabel(labels[:0], difficult[:0], 3).shape == (0, 3)
