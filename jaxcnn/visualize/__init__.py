"""See what the units see: deconvnet projections, top-k patches, occlusion sensitivity."""

from jaxcnn.visualize.fields import Field, crop_fields, receptive_field
from jaxcnn.visualize.occlusion import occlusion_maps, strongest_feature_map
from jaxcnn.visualize.projection import project, project_positions
from jaxcnn.visualize.rules import LRN_RULES, RULES, layer_ops, with_rule
from jaxcnn.visualize.topk import (
    TopActivations,
    merge_top,
    stream_top_activations,
    top_activations,
)

__all__ = [
    "LRN_RULES",
    "RULES",
    "Field",
    "TopActivations",
    "crop_fields",
    "layer_ops",
    "merge_top",
    "occlusion_maps",
    "project",
    "project_positions",
    "receptive_field",
    "stream_top_activations",
    "strongest_feature_map",
    "top_activations",
    "with_rule",
]
