"""Grid jobs that any process can claim: cached stages guarded by an OS-level lock.

A `Job` is a named cached stage (`jaxcnn.storage.stages`): its folder is ``<root>/<name>-<key>``,
the key a hash of its config and of its dependencies' keys, and it is finished when the folder
holds ``stage.json`` (written atomically after the job's function returns).

Any number of worker processes (one per local device, per cluster host, per SLURM array task)
call `work(jobs, root)` with the same job list and a shared `root`. Each repeatedly takes the
first unfinished job whose dependencies are finished and that no other process holds, holding an
exclusive POSIX lock (``fcntl.lockf``) on ``<folder>/claim.lock`` while it runs. The operating
system releases that lock when the process ends, however it ends (a crash or ``kill -9``
included; on NFS the lock manager does so when the client's lease lapses), so a dead worker never
leaves a stale claim: the next worker takes the job over and, for training jobs, resumes from
the checkpoints the dead one left. Under the lock the worker looks for ``stage.json`` once more
before running, so no job runs twice; workers stop only when every job is finished, so none is
lost. A job that raises releases its lock and the exception ends that worker.

POSIX locks belong to a process, not a thread: run one worker per process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from jaxcnn.storage import stages

LOCK = "claim.lock"


@dataclasses.dataclass(frozen=True)
class Job:
    """One cached job. ``fn(out_dir, deps)`` gets its folder and the `stages.StageResult` of
    each dependency by name, and returns a JSON-serialisable result."""

    name: str
    config: dict
    fn: Callable[[Path, dict], dict]
    deps: tuple[str, ...] = ()


def job_dirs(jobs: Sequence[Job], root: str | os.PathLike) -> dict[str, Path]:
    """The folder of every job. Dependencies must come earlier in `jobs` than their users."""
    dirs, keys = {}, {}
    for job in jobs:
        if job.name in keys:
            raise ValueError(f"job name {job.name!r} appears twice")
        missing = [d for d in job.deps if d not in keys]
        if missing:
            raise ValueError(f"job {job.name!r} depends on {missing}, not listed before it")
        keys[job.name] = stages.stage_key(job.name, job.config, tuple(keys[d] for d in job.deps))
        dirs[job.name] = Path(root) / f"{job.name}-{keys[job.name]}"
    return dirs


def finished(out_dir: Path) -> stages.StageResult | None:
    """The result of a finished job folder, or None."""
    marker = Path(out_dir) / stages.MARKER
    if not marker.exists():
        return None
    record = json.loads(marker.read_text())
    return stages.StageResult(
        record["name"], record["key"], Path(out_dir), record["result"], record["seconds"], True
    )


@contextlib.contextmanager
def claim(out_dir: Path):
    """Yields True while this process holds the job's lock, False if another process holds it."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(out_dir) / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            yield False
            return
        try:
            yield True
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def work(
    jobs: Sequence[Job],
    root: str | os.PathLike,
    *,
    poll_s: float = 5.0,
    max_jobs: int | None = None,
    log: Callable[[str], None] | None = None,
) -> list[str]:
    """Run unfinished jobs until every job is finished (or `max_jobs` ran here); returns the
    names this process ran. Waits `poll_s` between scans when every unfinished job is held by
    another process or waits for a dependency."""
    dirs = job_dirs(jobs, root)
    ran: list[str] = []
    while max_jobs is None or len(ran) < max_jobs:
        pending = [j for j in jobs if finished(dirs[j.name]) is None]
        if not pending:
            break
        if not any(_try_run(job, dirs, root, ran, log) for job in pending):
            time.sleep(poll_s)
    return ran


def _try_run(job: Job, dirs: dict, root, ran: list, log) -> bool:
    deps = {d: finished(dirs[d]) for d in job.deps}
    if any(r is None for r in deps.values()):
        return False
    with claim(dirs[job.name]) as mine:
        if not mine:
            return False
        result = stages.run_stage(
            root,
            job.name,
            job.config,
            lambda out_dir: job.fn(out_dir, deps),
            upstream=tuple(deps[d] for d in job.deps),
        )
    if not result.cached:
        ran.append(job.name)
        if log is not None:
            log(f"pid {os.getpid()}: {job.name} finished in {result.seconds:.0f} s")
    return True


def progress(jobs: Sequence[Job], root: str | os.PathLike) -> tuple[int, int]:
    """(finished, total) jobs."""
    dirs = job_dirs(jobs, root)
    return sum(finished(dirs[j.name]) is not None for j in jobs), len(jobs)
