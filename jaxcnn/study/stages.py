"""Cached pipeline stages: each stage's outputs live in a folder keyed by its config.

A stage is a function `fn(out_dir) -> result` (a JSON-serialisable dict) with a config (a
JSON-serialisable dict) and the keys of the stages it depends on. Its folder is
`<root>/<name>-<key>`, `key` a hash of the name, the config and the upstream keys, so that changing
one flag re-runs only the stages that depend on it. A stage counts as finished when its
`stage.json` exists; that file is written atomically after `fn` returns, so an interrupted stage
runs again (and `fn` itself may resume from what it left in `out_dir`, e.g. a training run's
checkpoints).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from jaxcnn import storage

MARKER = "stage.json"


@dataclasses.dataclass(frozen=True)
class StageResult:
    name: str
    key: str
    out_dir: Path
    result: dict
    seconds: float  # wall time of the run that produced it
    cached: bool  # True when this call found it finished


def stage_key(name: str, config: dict, upstream: tuple[str, ...] = ()) -> str:
    """Short hash of a stage's name, config and upstream keys (order-insensitive for config)."""
    blob = json.dumps(
        {"name": name, "config": config, "upstream": sorted(upstream)}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def run_stage(
    root: Path,
    name: str,
    config: dict,
    fn: Callable[[Path], dict],
    *,
    upstream: tuple[StageResult, ...] = (),
) -> StageResult:
    """Run `fn` in the stage's folder unless a finished result for the same key exists."""
    key = stage_key(name, config, tuple(u.key for u in upstream))
    out_dir = Path(root) / f"{name}-{key}"
    marker = out_dir / MARKER
    if marker.exists():
        record = json.loads(marker.read_text())
        return StageResult(name, key, out_dir, record["result"], record["seconds"], True)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = fn(out_dir)
    seconds = time.perf_counter() - start
    storage.write_json(
        marker,
        {
            "name": name,
            "key": key,
            "config": config,
            "upstream": [u.key for u in upstream],
            "result": result,
            "seconds": seconds,
        },
        indent=1,
        sort_keys=True,
        default=str,
    )
    return StageResult(name, key, out_dir, result, seconds, False)
