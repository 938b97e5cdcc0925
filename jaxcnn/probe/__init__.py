"""Linear probes (docs/methods.md §4): the batched SVM solver, cost paths with cross-validation,
the protocols (VOC07 VISSL, R-CNN, SUN one-vs-rest), the layer x ablation sweep and its tables."""

from jaxcnn.probe.cost_path import CostPathFitter, fold_indices, holdout_indices
from jaxcnn.probe.protocols import (
    PROTOCOLS,
    RCNN,
    SUN_OVR,
    VOC07_C20,
    VOC07_VISSL,
    MulticlassResult,
    ProbeProtocol,
    ProbeResult,
    multiclass_probe,
    multilabel_probe,
    scale_features,
)
from jaxcnn.probe.svm import SolverOptions, fit_linear_svm, solve_gram, solve_primal
from jaxcnn.probe.sweep import TASKS, ProbeSpec, cv_cost, probe, probe_layers, probe_score
from jaxcnn.probe.tables import write_tables

__all__ = [
    "PROTOCOLS",
    "RCNN",
    "SUN_OVR",
    "TASKS",
    "VOC07_C20",
    "VOC07_VISSL",
    "CostPathFitter",
    "MulticlassResult",
    "ProbeProtocol",
    "ProbeResult",
    "ProbeSpec",
    "SolverOptions",
    "cv_cost",
    "fit_linear_svm",
    "fold_indices",
    "holdout_indices",
    "multiclass_probe",
    "multilabel_probe",
    "probe",
    "probe_layers",
    "probe_score",
    "scale_features",
    "solve_gram",
    "solve_primal",
    "write_tables",
]
