"""End-to-end smoke test of jaxcnn.transfer.experiment on the tiny toyworld: the grid's jobs,
the transplant from the right base network, the gathered rows, the report, and a second call
that finds everything cached."""

import dataclasses

import numpy as np
import pytest

from jaxcnn.storage import checkpoints
from jaxcnn.train import data as train_data
from jaxcnn.train.config import TrainConfig
from jaxcnn.transfer import experiment, grid, report

TINY = {"width": 0.125, "fc_width": 32, "input_size": 32}


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    from absl import flags

    from jaxcnn.data import prepare

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    data_dir = tmp_path_factory.mktemp("tfds")
    prepare.prepare_toyworld(size="tiny", data_dir=str(data_dir), num_workers=1)
    data = train_data.DataConfig("toyworld/source_tiny", data_dir=str(data_dir), crop=32, resize=36)
    train = TrainConfig(
        num_classes=0,
        num_steps=4,
        batch_size=8,
        model_overrides=TINY,
        eval_every=2,
        checkpoint_every=4,
        log_every=2,
        num_local_devices=1,
    )
    return experiment.TransferConfig(
        data, train, treatments=("BnB", "AnB", "AnB+"), depths=(2,), random_control=True, best_k=1
    )


def test_grid_jobs_and_dependencies(cfg):
    jobs = experiment.build_jobs(cfg, 100)
    names = [j.name for j in jobs]
    assert names[:2] == ["base-seed0-A", "base-seed0-B"]
    deps = {j.name: j.deps for j in jobs}
    assert deps["BnB-n2-seed0-toB"] == ("base-seed0-B",)
    assert deps["AnB+-n2-seed0-toB"] == ("base-seed0-A",)
    assert deps["random-n2-seed0-toB"] == ()
    both = experiment.build_jobs(
        experiment.TransferConfig(cfg.data, cfg.train, depths=(2,), both_directions=True), 100
    )
    deps = {j.name: j.deps for j in both}
    assert deps["BnB-n2-seed0-toA"] == ("base-seed0-A",)
    assert deps["AnB-n2-seed0-toA"] == ("base-seed0-B",)
    # paired design: the treatments at one (split, target, n) share their seed
    seeds = {j.config["train"]["seed"] for j in jobs if j.config["n"] == 2}
    assert len(seeds) == 1


def test_run_gather_report_and_resume(cfg, tmp_path):
    stage = experiment.experiment_stage(cfg, tmp_path)  # the study's entry point
    result, root = stage.result, stage.out_dir
    rows = {(r["treatment"], r["n"]): r for r in result["rows"]}
    assert set(rows) == {(t, 2) for t in ("BnB", "AnB", "AnB+", "random")} | {("baseB", 0)}
    assert all(r["evals"] == 2 and r["val_count"] == 50 for r in rows.values())
    assert all(0.0 <= r["best"] <= 1.0 and r["best"] >= r["final"] for r in rows.values())
    for name in ("report.md", "report.html", "transfer.png", "results.json"):
        assert (root / "report" / name).exists()
    assert report.load(root / "report")["rows"] == result["rows"]
    # frozen copied layers end equal to the source base network's (AnB: A's, BnB: B's)
    jobs_dir = tmp_path / "transfer-jobs"
    dirs = grid.job_dirs(experiment.build_jobs(cfg, 100), jobs_dir)
    params = {k: checkpoints.restore_params(d / "run") for k, d in dirs.items()}
    for name, base in (("AnB-n2-seed0-toB", "base-seed0-A"), ("BnB-n2-seed0-toB", "base-seed0-B")):
        for layer in ("conv1", "conv2"):
            np.testing.assert_array_equal(
                params[name][layer]["kernel"], params[base][layer]["kernel"]
            )
        assert not np.array_equal(params[name]["conv3"]["kernel"], params[base]["conv3"]["kernel"])
    assert not np.array_equal(
        params["AnB+-n2-seed0-toB"]["conv1"]["kernel"], params["base-seed0-A"]["conv1"]["kernel"]
    )
    again = experiment.run_experiment(cfg, root, jobs_dir=jobs_dir, poll_s=0.01)
    assert again["rows"] == result["rows"]
    assert grid.work(experiment.build_jobs(cfg, 100), jobs_dir) == []
    assert experiment.experiment_stage(cfg, tmp_path).cached
    # another metric: a new stage folder, the same networks (nothing trains again)
    trained = []
    best2 = experiment.experiment_stage(
        dataclasses.replace(cfg, best_k=2), tmp_path, log=trained.append
    )
    assert not best2.cached and best2.out_dir != root and trained == []
    pairs = zip(best2.result["rows"], result["rows"], strict=True)
    assert all(two["best"] <= one["best"] for two, one in pairs)  # mean of 2 best <= the best
    assert [r["final"] for r in best2.result["rows"]] == [r["final"] for r in result["rows"]]


def test_config_errors(cfg):
    with pytest.raises(ValueError, match="unknown treatment"):
        experiment.TransferConfig(cfg.data, cfg.train, treatments=("XnB",))
    with pytest.raises(ValueError, match="depths"):
        experiment.TransferConfig(cfg.data, cfg.train, depths=(0,))
    with pytest.raises(ValueError, match="two files"):
        experiment.TransferConfig(cfg.data, cfg.train, class_files=("a",))
    assert experiment.best_k_mean([0.1, 0.5, 0.3], 2) == pytest.approx(0.4)
    assert experiment.best_k_mean([0.1], 10) == pytest.approx(0.1)


def test_the_script_runs_a_grid_end_to_end(cfg, tmp_path):
    """experiments/transfer.py itself (its flags build every config), on the tiny toyworld."""
    import os
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "transfer.py")
    args = [
        f"--dataset={cfg.data.dataset}", f"--data_dir={cfg.data.data_dir}", "--crop=32",
        "--resize=36", "--width=0.125", "--fc_width=32", "--num_steps=2", "--batch_size=8",
        "--eval_every=2", "--checkpoint_every=2", "--log_every=1", "--num_local_devices=1",
        "--treatments=BnB", "--depths=1", "--best_k=1", f"--run_dir={tmp_path / 'run'}",
    ]  # fmt: skip
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert list((tmp_path / "run").rglob("report.md"))
