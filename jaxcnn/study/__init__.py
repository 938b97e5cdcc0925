"""The paper's study on top of every other package: its config, the stage cache, the data and
training stages, one module per analysis in a registry, findings and the report (rendered by
`jaxcnn.documents`)."""

from jaxcnn.study.analyses import ANALYSES
from jaxcnn.study.config import ABLATIONS, LAYERS, REGIMES, StudyConfig
from jaxcnn.study.registry import Analysis, Context
from jaxcnn.study.run import run_study

__all__ = [
    "ABLATIONS",
    "ANALYSES",
    "Analysis",
    "Context",
    "LAYERS",
    "REGIMES",
    "StudyConfig",
    "run_study",
]
