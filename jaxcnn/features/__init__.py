"""Features of a checkpoint: extraction to disk (resumable), feature sets (which images or boxes
a probe sees), the feature cache shared by analyses, the ablations (docs/methods.md §5) and the
label conventions (docs/methods.md §3)."""

from jaxcnn.features.ablations import (
    ABLATIONS,
    TABLE7_ABLATIONS,
    ablated,
    ablation_grid,
    apply_ablation,
    binarize,
    max_loc_bin,
    sp_max,
    sp_max_bin,
    sp_shuffle,
)
from jaxcnn.features.cache import FeatureCache, run_dir_of
from jaxcnn.features.extraction import extract_features, load_features, make_forward
from jaxcnn.features.labels import boxes_as_multilabel, to_devkit_labels
from jaxcnn.features.sets import (
    VIEWS,
    FeatureSet,
    SetPair,
    check_input,
    class_names,
    extract,
    open_view,
)

__all__ = [
    "ABLATIONS",
    "FeatureCache",
    "FeatureSet",
    "SetPair",
    "TABLE7_ABLATIONS",
    "VIEWS",
    "ablated",
    "ablation_grid",
    "apply_ablation",
    "binarize",
    "boxes_as_multilabel",
    "check_input",
    "class_names",
    "extract",
    "extract_features",
    "load_features",
    "make_forward",
    "max_loc_bin",
    "open_view",
    "run_dir_of",
    "sp_max",
    "sp_max_bin",
    "sp_shuffle",
    "to_devkit_labels",
]
