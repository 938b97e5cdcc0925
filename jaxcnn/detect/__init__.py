"""Object detection as R-CNN ran it for the paper (docs/methods.md §Detection).

Boxes everywhere are ``[x1, y1, x2, y2]`` in 1-based inclusive pixels (the VOC devkit's).
Public contract: `nms`, `detection_ap`, `load_rcnn_proposals`. The whole experiment (window
fine-tuning, pool5 caching, hard-negative mining, test, result files): `run_detection` with a
`DataSpec`, `DetectorSpec`, `FinetuneSpec` and the `Networks`' source run, step and regimes.
"""

from jaxcnn.detect.ap import detection_ap, pr_curve
from jaxcnn.detect.data import DataSpec
from jaxcnn.detect.mining import MiningConfig, train_detectors
from jaxcnn.detect.proposals import load_rcnn_proposals, recall_at
from jaxcnn.detect.run import DetectorSpec, FinetuneSpec, Networks, run_detection
from jaxcnn.detect.search import SearchConfig, selective_search
from jaxcnn.detect.suppress import nms, nms_mask

__all__ = [
    "DataSpec",
    "DetectorSpec",
    "FinetuneSpec",
    "MiningConfig",
    "Networks",
    "SearchConfig",
    "detection_ap",
    "load_rcnn_proposals",
    "nms",
    "nms_mask",
    "pr_curve",
    "recall_at",
    "run_detection",
    "selective_search",
    "train_detectors",
]
