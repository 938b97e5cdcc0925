"""Object detection as R-CNN ran it for the paper (docs/methods.md §Detection).

Boxes everywhere are ``[x1, y1, x2, y2]`` in 1-based inclusive pixels (the VOC devkit's).
Public contract: `nms`, `detection_ap`, `load_rcnn_proposals`.
"""

from jaxcnn.detect.ap import detection_ap, pr_curve
from jaxcnn.detect.proposals import load_rcnn_proposals, recall_at
from jaxcnn.detect.suppress import nms, nms_mask

__all__ = [
    "detection_ap",
    "load_rcnn_proposals",
    "nms",
    "nms_mask",
    "pr_curve",
    "recall_at",
]
