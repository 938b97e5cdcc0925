"""The study as a registry of analyses.

Each paper section is one module in `jaxcnn.study.analyses` that declares an `Analysis`: its name
(the name of its cached stage), the stages it needs, its run function (returning plain JSON
numbers and writing its figures into its stage folder), its report function (sections and
findings from those numbers), its share of the study's time (for the progress line's ETA) and
the settings its results depend on, and whether the config asks for it (`enabled`: the slow
detection analysis runs only with ``--detection``). `run_study` runs the enabled ones in the
order of `ANALYSES`; adding a section is one new module plus one line there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from jaxcnn.features import FeatureCache
from jaxcnn.storage.stages import StageResult
from jaxcnn.study.config import StudyConfig

# What an analysis may need: the pre-training, every fine-tuning, the PASCAL stand-in's
# fine-tunings (every regime and Table 4's), or its ft run. The fine-tunings run in that order
# (`study.run`), so an analysis that needs only the PASCAL stand-in's starts before the others.
NEEDS = ("pretrain", "finetunes", "finetunes-det", "finetune-det-ft")


@dataclasses.dataclass
class Context:
    """What the analyses share: the config, the feature cache and the finished training stages.

    `runs` maps (target, regime) and ("det", "ft", step) to fine-tuning stages; `stages` holds
    the pre-training's and, as they finish, the analyses' stages by name."""

    cfg: StudyConfig
    cache: FeatureCache
    stages: dict[str, StageResult]
    runs: dict[tuple, StageResult]

    def upstream(self, needs: tuple[str, ...], after: tuple[str, ...] = ()) -> tuple:
        """The stages of `needs` (`NEEDS`) and of the analyses `after`."""
        out: list[StageResult] = [self.stages[name] for name in after]
        for need in needs:
            if need == "pretrain":
                out.append(self.stages["pretrain"])
            elif need == "finetunes":
                out.extend(self.runs.values())
            elif need == "finetunes-det":
                out.extend(run for key, run in self.runs.items() if key[0] == "det")
            elif need == "finetune-det-ft":
                out.append(self.runs[("det", "ft")])
            else:
                raise ValueError(f"unknown need {need!r}; choose from {NEEDS}")
        return tuple(out)


def probe_config(cfg: StudyConfig) -> dict:
    """The settings a probe analysis's numbers depend on beyond its upstream stages."""
    return {
        "protocol": cfg.protocol,
        "train": cfg.probe_train_images,
        "test": cfg.probe_test_images,
        "splits": cfg.probe_splits,
        "crop": cfg.crop,
        "resize": cfg.resize,
    }


@dataclasses.dataclass(frozen=True)
class Analysis:
    name: str
    needs: tuple[str, ...]
    run: Callable[[Context, Path], dict]
    report: Callable[[dict], tuple]  # {"result", "out_dir"} -> (sections, findings)
    weight: float  # minutes it adds to a clean run of reproduce_toy.flags (study.run.WEIGHTS)
    config: Callable[[StudyConfig], dict] = probe_config
    enabled: Callable[[StudyConfig], bool] = lambda cfg: True  # optional analyses say when
    # Of the analyses whose needs are met, the highest priority starts first (then registry
    # order): the longest one starts early, so that the two workers end together.
    priority: int = 0
    # Analyses whose results this one reads (`Context.stages[name]`): it starts after them, and
    # their stages are upstream of its own.
    after: tuple[str, ...] = ()

    def __post_init__(self):
        unknown = set(self.needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"{self.name}: unknown needs {sorted(unknown)}; choose from {NEEDS}")
