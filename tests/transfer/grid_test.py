"""Tests for jaxcnn.transfer.grid: two processes claiming the same grid at once run every job
exactly once; a worker killed mid-job leaves no stale claim (the next worker resumes the job);
dependencies run first."""

import collections
import importlib.util
import os
import signal
import subprocess
import sys
import time

import pytest

from jaxcnn.transfer import grid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A worker: jobs j0..j9 (j5 needs j0; j9 needs j5 and j8) whose function appends
# "<name> <pid>" to a shared log. Modes: "pair" makes a process's first job wait until another
# process has logged a job (so both really work at once); "hang" hangs in j3 until killed.
WORKER = """
import os, sys, time
from pathlib import Path
from jaxcnn.transfer import grid

DEPS = {"j5": ("j0",), "j9": ("j5", "j8")}


def jobs(log, mode="plain"):
    def fn(name, out_dir, deps):
        with open(log, "a") as f:
            f.write(f"{name} {os.getpid()}\\n")
        missing = [d for d in DEPS.get(name, ()) if d not in deps]
        assert not missing, missing
        if mode == "hang" and name == "j3":
            Path(log).with_name("hanging").write_text("")
            time.sleep(600)
        if mode == "pair":
            for _ in range(600):
                pids = {line.split()[1] for line in open(log)}
                if len(pids) > 1:
                    break
                time.sleep(0.1)
        return {"by": os.getpid()}

    return [
        grid.Job(f"j{i}", {"i": i}, lambda out, deps, i=i: fn(f"j{i}", out, deps),
                 DEPS.get(f"j{i}", ()))
        for i in range(10)
    ]


if __name__ == "__main__":
    root, log, mode = sys.argv[1:4]
    grid.work(jobs(log, mode), root, poll_s=0.05)
"""


@pytest.fixture()
def worker(tmp_path):
    path = tmp_path / "worker.py"
    path.write_text(WORKER)
    spec = importlib.util.spec_from_file_location("grid_worker", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module


def _start(path, root, log, mode):
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.Popen([sys.executable, str(path), str(root), str(log), mode], env=env)


def _runs(log):
    return [line.split() for line in open(log).read().splitlines()]


def test_two_processes_run_every_job_exactly_once(tmp_path, worker):
    path, module = worker
    root, log = tmp_path / "root", tmp_path / "log.txt"
    procs = [_start(path, root, log, "pair") for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    runs = _runs(log)
    counts = collections.Counter(name for name, _ in runs)
    assert counts == {f"j{i}": 1 for i in range(10)}  # none twice, none lost
    assert len({pid for _, pid in runs}) == 2  # both processes worked
    order = [name for name, _ in runs]
    assert order.index("j0") < order.index("j5") < order.index("j9")
    assert order.index("j8") < order.index("j9")
    dirs = grid.job_dirs(module.jobs(str(log)), root)
    by = {name: grid.finished(dirs[name]).result["by"] for name in dirs}
    assert {str(pid) for pid in by.values()} == {pid for _, pid in runs}
    assert grid.progress(module.jobs(str(log)), root) == (10, 10)


def test_killed_worker_leaves_no_stale_claim(tmp_path, worker):
    path, module = worker
    root, log = tmp_path / "root", tmp_path / "log.txt"
    proc = _start(path, root, log, "hang")
    for _ in range(3000):  # until the worker is inside j3 (holding its claim)
        if (tmp_path / "hanging").exists() or proc.poll() is not None:
            break
        time.sleep(0.1)
    assert (tmp_path / "hanging").exists()
    dirs = grid.job_dirs(module.jobs(str(log)), root)
    with grid.claim(dirs["j3"]) as mine:
        assert not mine  # held by the live worker
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    ran = grid.work(module.jobs(str(log)), root, poll_s=0.05)
    assert "j3" in ran and not {"j0", "j1", "j2"} & set(ran)
    counts = collections.Counter(name for name, _ in _runs(log))
    assert counts == {**{f"j{i}": 1 for i in range(10)}, "j3": 2}  # j3: killed, then resumed
    assert grid.finished(dirs["j3"]).result["by"] == os.getpid()
    assert grid.work(module.jobs(str(log)), root) == []  # all finished: nothing runs again


def test_job_list_errors(tmp_path):
    def job(name, deps=()):
        return grid.Job(name, {}, lambda out, deps: {}, deps)

    with pytest.raises(ValueError, match="appears twice"):
        grid.job_dirs([job("a"), job("a")], tmp_path)
    with pytest.raises(ValueError, match="not listed before it"):
        grid.job_dirs([job("b", ("a",)), job("a")], tmp_path)


def test_failing_job_releases_its_claim(tmp_path):
    def boom(out, deps):
        raise RuntimeError("boom")

    jobs = [grid.Job("a", {}, boom)]
    with pytest.raises(RuntimeError, match="boom"):
        grid.work(jobs, tmp_path)
    with grid.claim(grid.job_dirs(jobs, tmp_path)["a"]) as mine:
        assert mine
    assert grid.work([grid.Job("a", {}, lambda out, deps: {"ok": 1})], tmp_path) == ["a"]
