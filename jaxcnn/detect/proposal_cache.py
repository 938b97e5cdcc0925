"""Selective-search proposals of a whole split: multi-process, cached per image, resumable.

Layout of ``out_dir``::

    manifest.json   {"version", "config" (SearchConfig), "source", "num_images", "complete"}
    boxes/<i>.npy   int64 [K, 4] boxes of image i ([x1, y1, x2, y2], 1-based inclusive)

Each image's file is written to a temporary name and renamed, so a file that exists is whole;
an interrupted run resumes by computing only the missing images. A directory made with another
configuration, source or image count is refused. Worker processes are spawned (not forked:
the parent may hold JAX's threads) and each opens its own copy of the picklable source.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from jaxcnn.detect import search as ss

MANIFEST = "manifest.json"
VERSION = 1


def _path(out_dir: str, i: int) -> str:
    return os.path.join(out_dir, "boxes", f"{i:07d}.npy")


def _write_manifest(out_dir: str, manifest: dict) -> None:
    tmp = os.path.join(out_dir, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, MANIFEST))


def _work(source, indices: Sequence[int], cfg: ss.SearchConfig, out_dir: str) -> int:
    import cv2

    cv2.setNumThreads(1)  # one core per worker process
    for i in indices:
        boxes = ss.selective_search(source[int(i)]["image"], cfg)
        tmp = _path(out_dir, int(i)) + ".tmp.npy"
        np.save(tmp, boxes)
        os.replace(tmp, _path(out_dir, int(i)))
    return len(indices)


def _check_manifest(out_dir: str, manifest: dict) -> None:
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.exists(path):
        return
    with open(path) as f:
        old = json.load(f)
    keys = ("version", "config", "source", "num_images")
    diff = [k for k in keys if old.get(k) != manifest[k]]
    if diff:
        raise ValueError(
            f"{out_dir} holds proposals made with other settings ({', '.join(diff)}: "
            f"{[old.get(k) for k in diff]} vs {[manifest[k] for k in diff]}); use a new directory"
        )


def compute_proposals(
    source,
    out_dir: str,
    cfg: ss.SearchConfig,
    *,
    workers: int = 2,
    chunk: int = 16,
    progress: Callable[[str], None] | None = None,
) -> list[np.ndarray]:
    """Proposals of every image of `source` (module docstring); returns them in image order."""
    n = len(source)
    config = json.loads(json.dumps(cfg.to_dict()))  # tuples as JSON lists, as when read back
    manifest = {
        "version": VERSION,
        "config": config,
        "source": repr(source),
        "num_images": n,
        "complete": False,
    }
    os.makedirs(os.path.join(out_dir, "boxes"), exist_ok=True)
    _check_manifest(out_dir, manifest)
    todo = [i for i in range(n) if not os.path.exists(_path(out_dir, i))]
    if todo:
        _write_manifest(out_dir, manifest)
        _run(source, todo, cfg, out_dir, workers=workers, chunk=chunk, total=n, progress=progress)
    manifest["complete"] = True
    _write_manifest(out_dir, manifest)
    return load_proposals(out_dir)


def _run(source, todo, cfg, out_dir, *, workers, chunk, total, progress):
    parts = [todo[lo : lo + chunk] for lo in range(0, len(todo), chunk)]
    start, done = time.perf_counter(), total - len(todo)
    if workers <= 1:
        results = (_work(source, p, cfg, out_dir) for p in parts)
        _report(results, start, done, total, progress)
        return
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = [pool.submit(_work, source, p, cfg, out_dir) for p in parts]
        results = (f.result() for f in concurrent.futures.as_completed(futures))
        _report(results, start, done, total, progress)


def _report(results, start, done, total, progress):
    first = done
    for count in results:
        done += count
        if progress is not None:
            rate = (done - first) / max(time.perf_counter() - start, 1e-9)
            eta = (total - done) / rate if rate > 0 else float("nan")
            progress(f"proposals {done}/{total} images, {rate:.1f} img/s, ETA {eta:.0f} s")


def load_proposals(out_dir: str) -> list[np.ndarray]:
    """The boxes of a complete proposal directory, in image order."""
    with open(os.path.join(out_dir, MANIFEST)) as f:
        manifest = json.load(f)
    if not manifest.get("complete"):
        raise ValueError(f"{out_dir}: proposals are not complete; run compute_proposals again")
    return [np.load(_path(out_dir, i)) for i in range(manifest["num_images"])]
