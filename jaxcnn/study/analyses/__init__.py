"""The study's analyses, one module per paper section, in report order (see
`jaxcnn.study.registry`)."""

from jaxcnn.study.analyses import (
    ablation,
    depth,
    detection,
    finetuning,
    selectivity,
    transferability,
)

ANALYSES = (
    depth.ANALYSIS,
    ablation.ANALYSIS,
    finetuning.REGIMES_ANALYSIS,
    finetuning.LAYERS_ANALYSIS,
    finetuning.ANALYSIS,
    selectivity.ANALYSIS,
    transferability.ANALYSIS,
    detection.ANALYSIS,
)

__all__ = ["ANALYSES"]
