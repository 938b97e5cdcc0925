"""Flags generated from the typed configs: defaults and nesting round-trip (a nested field's
default instance and named flags too), choices and checks fail at parse time naming the valid
values, and the real scripts exit at once on a typo."""

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

from jaxcnn import detect, features, model, probe, study, train  # noqa: E402
from jaxcnn.train import distributed  # noqa: E402
from jaxcnn.visualize import figures  # noqa: E402


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
        (detect.DataSpec, "--dataset=toyworld/source", "voc2007"),
        (detect.DataSpec, "--train_split=trainvall", "trainval"),
        (detect.DataSpec, "--ss_colour_spaces=hsv,rgb", "lab"),
        (detect.DetectorSpec, "--layers=conv5,pool5", "fc6"),
        (detect.DetectorSpec, "--conv5_ablations=none,sp-maks", "sp-max-bin"),
        (detect.DetectorSpec, "--ablation_networks=fcft", "fc-ft"),
        (detect.DetectorSpec, "--ap_method=voc08", "voc12"),
        (detect.Networks, "--regimes=none,finetune", "scratch"),
        (figures.FigureSpec, "--view=boxes", "gt_boxes"),
        (figures.FigureSpec, "--source_split=valid", "validation"),
        (figures.FigureSpec, "--dataset=voc2077", "voc2007"),
    ],
)
def test_bad_choices_fail_at_parse_time_naming_the_valid_ones(cls, arg, names):
    with pytest.raises(flags.Error, match=names):
        _parsed(cls, arg, skip=("source_run",))  # Networks: a required flag of the script


def test_named_flags_and_nested_default_instances():
    fv = _parsed(detect.DataSpec)
    spec = config_flags.build(detect.DataSpec, flag_values=fv)
    assert spec == detect.DataSpec() and spec.search.max_boxes == 150  # not SearchConfig()'s 0
    fv = _parsed(detect.DataSpec, "--ss_width=500", "--ss_ks=50,100,150")
    search = config_flags.build(detect.DataSpec, flag_values=fv).search
    assert search == detect.SearchConfig(ks=(50, 100, 150), max_boxes=150)
    fv = _parsed(detect.FinetuneSpec, "--ft_batch=64", "--ft_fg=16", "--scratch_steps=9")
    assert config_flags.build(detect.FinetuneSpec, flag_values=fv) == detect.FinetuneSpec(
        batch_size=64, fg_per_batch=16, scratch_steps=9
    )
    fv = _parsed(detect.DetectorSpec, "--svm_C=0.01", "--ap_method=voc12")
    dspec = config_flags.build(detect.DetectorSpec, flag_values=fv)
    assert dspec.mining.C == 0.01 and dspec.method == "voc12" and "C" not in fv
    fv = _parsed(detect.Networks, skip=("source_run",))
    nets = config_flags.build(detect.Networks, flag_values=fv, source_run="runs/x")
    assert nets == detect.Networks("runs/x")
    assert (
        config_flags.build(figures.FigureSpec, flag_values=_parsed(figures.FigureSpec))
        == figures.FigureSpec()
    )


def test_splits_are_checked_against_the_dataset():
    with pytest.raises(ValueError, match="trainval"):
        detect.DataSpec(dataset="voc2012", test_split="test")
    with pytest.raises(ValueError, match="'train', 'val', 'test'"):
        figures.FigureSpec(dataset="toyworld/places", view="image", split="validation")
    with pytest.raises(ValueError, match="no boxes"):
        figures.FigureSpec(dataset="toyworld/source", split="train", mean_split="train")


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


def _run(script, *args):
    return subprocess.run(
        [sys.executable, os.path.join(EXPERIMENTS, script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=_ENV,
    )


def _flagfile(name):
    return f"--flagfile={os.path.join(EXPERIMENTS, 'flags', name)}"


@pytest.mark.parametrize(
    "script, args, names, started",
    [
        ("reproduce.py", (_flagfile("reproduce_toy.flags"), "--protocol=vocc07"),
         ("voc07_vissl", "rcnn"), "study in"),
        ("detect.py", (_flagfile("detect_toy.flags"), "--conv5_ablations=none,sp-maks"),
         ("sp-max", "binarize", "sp-shuffle"), "data DataSpec"),
        ("visualize.py", ("--pre_run_dir=runs/x", "--out_dir=runs/y", "--view=boxes"),
         ("gt_boxes", "image"), "devices:"),
    ],
)  # fmt: skip
def test_a_script_exits_at_once_on_a_typo(script, args, names, started):
    start = time.perf_counter()
    out = _run(script, *args)
    assert out.returncode != 0
    assert all(n in out.stderr for n in names), out.stderr[-2000:]
    assert started not in out.stdout  # no stage started
    print(f"{script} exited after {time.perf_counter() - start:.1f} s")


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
