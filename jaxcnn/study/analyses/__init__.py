"""The study's analyses, one module per paper section, in report order (see
`jaxcnn.study.registry`)."""

from jaxcnn.study.analyses import ablation, depth, detection, finetuning, selectivity

ANALYSES = (
    depth.ANALYSIS,
    ablation.ANALYSIS,
    finetuning.ANALYSIS,
    selectivity.ANALYSIS,
    detection.ANALYSIS,
)

__all__ = ["ANALYSES"]
