"""How transferable are features: Yosinski et al.'s AnB / BnB / AnB+ / BnB+ experiment.

`run_experiment(TransferConfig(...), root)` trains the base networks of each A/B class split and
the transfer networks of every treatment and depth as claimable, resumable jobs, then writes the
table, figure and findings (`jaxcnn.transfer.report`). docs/methods.md §Transferability.
"""

from jaxcnn.transfer.experiment import (
    TransferConfig,
    build_jobs,
    experiment_stage,
    gather,
    run_experiment,
)
from jaxcnn.transfer.findings import decide
from jaxcnn.transfer.grid import Job, claim, work
from jaxcnn.transfer.report import sections, write
from jaxcnn.transfer.splits import ClassSplit, random_split, split_from_files
from jaxcnn.transfer.treatments import TREATMENTS, initial_state, start_params

__all__ = [
    "TREATMENTS",
    "ClassSplit",
    "Job",
    "TransferConfig",
    "build_jobs",
    "claim",
    "decide",
    "experiment_stage",
    "gather",
    "initial_state",
    "random_split",
    "run_experiment",
    "sections",
    "split_from_files",
    "start_params",
    "work",
    "write",
]
