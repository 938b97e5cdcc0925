"""Flags generated from the typed configs: defaults and nesting round-trip, choices and checks
fail at parse time naming the valid values, and a real script exits at once on a typo."""

import os
import subprocess
import sys
import time

import pytest
from absl import flags

EXPERIMENTS = os.path.join(os.path.dirname(__file__), "..", "..", "experiments")
sys.path.insert(0, EXPERIMENTS)
_ENV = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(EXPERIMENTS)))  # this checkout

import config_flags  # noqa: E402

from jaxcnn import features, model, probe, study, train  # noqa: E402
from jaxcnn.train import distributed  # noqa: E402


def _parsed(cls, *args, skip=()):
    fv = flags.FlagValues()
    config_flags.define(cls, skip=skip, flag_values=fv)
    fv(["prog", *args])
    return fv


def test_defaults_and_nested_fields_round_trip():
    fv = _parsed(study.StudyConfig)
    assert config_flags.build(study.StudyConfig, flag_values=fv) == study.StudyConfig()
    fv = _parsed(
        study.StudyConfig,
        "--width=0.5",
        "--snapshots=5,10",
        "--table4_snapshots=10",
        "--protocol=rcnn",
    )
    cfg = config_flags.build(study.StudyConfig, flag_values=fv)
    assert cfg.network == model.NetworkSpec(width=0.5)
    assert cfg.snapshots == (5, 10) and cfg.protocol == "rcnn" and cfg.table4_snapshots == (10,)


@pytest.mark.parametrize(
    "cls, arg, names",
    [
        (study.StudyConfig, "--protocol=vocc07", "voc07_vissl"),
        (study.StudyConfig, "--toyworld_size=huge", "tiny"),
        (study.StudyConfig, "--preset=vgg", "caffenet"),
        (study.StudyConfig, "--init=xavier", "msra"),
        (study.StudyConfig, "--source=imagenet", "imagenet2012"),
        (study.StudyConfig, "--snapshots=5,ten", "ten"),
        (train.TrainConfig, "--compute_dtype=fp16", "bfloat16"),
        (train.DataConfig, "--mean_kind=pixel", "channel"),
        (train.DataConfig, "--dataset=voc2077", "voc2007"),
        (features.SetPair, "--view=boxes", "gt_boxes"),
        (probe.ProbeSpec, "--ablations=none,binarise", "binarize"),
        (probe.ProbeSpec, "--layers=conv6", "conv5"),
        (probe.ProbeSpec, "--task=regression", "multiclass"),
    ],
)
def test_bad_choices_fail_at_parse_time_naming_the_valid_ones(cls, arg, names):
    with pytest.raises(flags.Error, match=names):
        _parsed(cls, arg)


def test_skipped_fields_are_given_to_build():
    fv = _parsed(train.TrainConfig, skip=("num_classes", "regime"))
    assert "num_classes" not in fv and "regime" not in fv
    cfg = config_flags.build(train.TrainConfig, flag_values=fv, num_classes=7, regime="pretrain")
    assert cfg.num_classes == 7 and cfg.batch_size == 256
    assert config_flags.build(
        distributed.ProcessConfig, flag_values=_parsed(distributed.ProcessConfig)
    )


def test_bad_values_are_rejected_by_the_configs():
    with pytest.raises(ValueError, match="crop"):
        train.DataConfig(crop=0)
    with pytest.raises(ValueError, match="protocol"):
        study.StudyConfig(protocol="vocc07")
    with pytest.raises(ValueError, match="227"):
        model.NetworkSpec(preset="caffenet").overrides(64)


def test_a_script_exits_at_once_on_a_typo():
    start = time.perf_counter()
    out = subprocess.run(
        [
            sys.executable,
            os.path.join(EXPERIMENTS, "reproduce.py"),
            f"--flagfile={os.path.join(EXPERIMENTS, 'flags', 'reproduce_toy.flags')}",
            "--protocol=vocc07",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=_ENV,
    )
    assert out.returncode != 0
    assert "voc07_vissl" in out.stderr and "rcnn" in out.stderr, out.stderr[-2000:]
    assert "study in" not in out.stdout  # no stage started
    print(f"exited after {time.perf_counter() - start:.1f} s")


def _script_of(flagfile: str) -> str:
    for prefix, script in (
        ("pretrain_", "pretrain.py"),
        ("finetune_", "finetune.py"),
        ("reproduce_", "reproduce.py"),
        ("toyworld", "prepare_data.py"),
        ("detect_", "detect.py"),
        ("transfer_", "transfer.py"),
    ):
        if flagfile.startswith(prefix):
            return script
    raise AssertionError(f"no script known for {flagfile}")


def test_every_flagfile_parses_with_its_script():
    folder = os.path.join(EXPERIMENTS, "flags")
    for name in sorted(os.listdir(folder)):
        script = os.path.join(EXPERIMENTS, _script_of(name))
        out = subprocess.run(
            [
                sys.executable,
                script,
                f"--flagfile={os.path.join(folder, name)}",
                "--only_check_args",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=_ENV,
        )
        assert out.returncode == 0, (name, out.stderr[-2000:])
