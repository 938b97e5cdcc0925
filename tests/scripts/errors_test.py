"""Failures at the scripts' top level: one line naming the cause, the file or flag and what to
do, a non-zero exit, no work done; the traceback only with --verbosity=1. Real scripts, real bad
flags (experiments/errors.py)."""

import errno
import os
import subprocess
import sys

import pytest

EXPERIMENTS = os.path.join(os.path.dirname(__file__), "..", "..", "experiments")
REPO = os.path.abspath(os.path.join(EXPERIMENTS, ".."))
sys.path.insert(0, EXPERIMENTS)

import errors  # noqa: E402


def test_one_line_messages():
    assert errors.one_line(ValueError("bad\n  --crop")) == "bad --crop"
    assert errors.one_line(KeyError("x")) == "KeyError: 'x'"  # not one of ours: typed
    assert errors.one_line(TypeError("boom")) == "TypeError: boom"
    # "not built yet" is a message for the user (a feature that raises it says what is missing)
    assert errors.one_line(NotImplementedError("no X yet")) == "no X yet"
    full = OSError(errno.ENOSPC, "No space left on device")
    assert "free space and rerun" in errors.one_line(full)


def test_guarded_main_exits_with_one_line(capsys):
    def main(argv):
        raise FileNotFoundError("no stored mean at /x; run prepare_data")

    with pytest.raises(SystemExit) as exit_:
        errors.guarded(main)(["prog"])
    assert exit_.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "error: no stored mean at /x; run prepare_data" in lines[0]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from absl import flags

    from jaxcnn.data import prepare

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    data_dir = tmp_path_factory.mktemp("tfds")
    prepare.prepare_toyworld(size="tiny", data_dir=str(data_dir), num_workers=1)
    return str(data_dir)


def _run(script, *args):
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, os.path.join(EXPERIMENTS, script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert out.returncode != 0, out.stdout[-2000:]
    return out


def _the_line(out, script):
    lines = [line for line in out.stderr.splitlines() if line.startswith(f"{script}: error: ")]
    assert len(lines) == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    return lines[0]


def test_training_flags_each_one_line_before_any_work(tmp_path, tiny_data):
    common = [f"--data_dir={tiny_data}", "--dataset=toyworld/source_tiny", "--num_steps=2"]
    cases = [
        (["--width=0.001"], "use --width > 0.0104"),
        (["--crop=0"], "--crop=0"),
        (["--crop=16", "--resize=20"], "use --crop >= 19"),
    ]
    for i, (args, expected) in enumerate(cases):
        run_dir = tmp_path / f"run{i}"
        out = _run("pretrain.py", f"--run_dir={run_dir}", *common, *args)
        assert expected in _the_line(out, "pretrain.py"), (args, out.stderr[-2000:])
        assert not run_dir.exists()  # nothing was started


def test_unprepared_datasets_named_with_the_command(tmp_path):
    out = _run("pretrain.py", f"--run_dir={tmp_path / 'run'}", f"--data_dir={tmp_path}")
    line = _the_line(out, "pretrain.py")
    assert "toyworld/source is not prepared under" in line and "prepare_data.py" in line
    real = [
        "--toyworld_size=",
        "--source=imagenet2012",
        "--det_target=voc2007",
        "--scene_target=sun397",
        f"--data_dir={tmp_path / 'tfds'}",
    ]
    out = _run("reproduce.py", f"--workdir={tmp_path / 'work'}", *real)
    line = _the_line(out, "reproduce.py")
    assert "imagenet2012 is not prepared under" in line, line
    assert "experiments/prepare_data.py --dataset=imagenet2012" in line
    assert "study in" not in out.stdout  # no stage ran


def test_verbosity_one_shows_the_traceback(tmp_path):
    out = _run("pretrain.py", f"--run_dir={tmp_path / 'r'}", f"--data_dir={tmp_path}", "-v=1")
    assert "Traceback" in out.stderr and "pretrain.py: error: " in out.stderr


def test_ablation_typo_stops_at_parse_time(tmp_path):
    out = _run("probe.py", f"--run_dir={tmp_path}", f"--out_dir={tmp_path}", "--ablations=binarise")
    assert "binarise" in out.stderr and "binarize" in out.stderr
    assert len([line for line in out.stderr.splitlines() if line.strip()]) <= 2, out.stderr
