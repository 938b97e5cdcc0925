"""Cached pipeline stages: each stage's outputs live in a folder keyed by its config.

A stage is a function `fn(out_dir) -> result` (a JSON-serialisable dict) with a config (a
JSON-serialisable dict) and the stages it depends on. Its folder is `<root>/<name>-<key>`, `key` a
hash of the name, the config and the upstream stages' identities, so that changing one flag
re-runs only the stages that depend on it. An upstream stage's identity is its key plus, for a
training stage, the state digests of its checkpoints (`result["checkpoints"]`), so a retrained
run never feeds stale results downstream. A stage counts as finished when its `stage.json`
exists and, if the stage has a `valid` check, that check passes on the recorded result (a training
stage checks that its checkpoints still carry the digests it recorded); that file is written
atomically after `fn` returns, so an interrupted stage runs again (and `fn` itself may resume from
what it left in `out_dir`, e.g. a training run's checkpoints).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from jaxcnn.storage import atomic

MARKER = "stage.json"
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StageResult:
    name: str
    key: str
    out_dir: Path
    result: dict
    seconds: float  # wall time of the run that produced it
    cached: bool  # True when this call found it finished


def stage_key(name: str, config: dict, upstream: tuple[str, ...] = ()) -> str:
    """Short hash of a stage's name, config and upstream identities (order-insensitive)."""
    blob = json.dumps(
        {"name": name, "config": config, "upstream": sorted(upstream)}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def identity(stage: StageResult) -> str:
    """What a downstream key records of `stage`: its key, and its checkpoints' digests if any."""
    digests = stage.result.get("checkpoints")
    if not digests:
        return stage.key
    blob = json.dumps(digests, sort_keys=True).encode()
    return f"{stage.key}-{hashlib.sha256(blob).hexdigest()[:12]}"


def run_stage(
    root: Path,
    name: str,
    config: dict,
    fn: Callable[[Path], dict],
    *,
    upstream: tuple[StageResult, ...] = (),
    valid: Callable[[dict], bool] | None = None,
) -> StageResult:
    """Run `fn` in the stage's folder unless a finished result for the same key exists (and
    `valid(result)` holds for it, when given)."""
    ids = tuple(identity(u) for u in upstream)
    key = stage_key(name, config, ids)
    out_dir = Path(root) / f"{name}-{key}"
    marker = out_dir / MARKER
    if marker.exists():
        record = json.loads(marker.read_text())
        if valid is None or valid(record["result"]):
            return StageResult(name, key, out_dir, record["result"], record["seconds"], True)
        log.warning(
            "stage %s: its outputs changed since it finished (%s); running it again", name, out_dir
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = fn(out_dir)
    seconds = time.perf_counter() - start
    atomic.write_json(
        marker,
        {
            "name": name,
            "key": key,
            "config": config,
            "upstream": list(ids),
            "result": result,
            "seconds": seconds,
        },
        indent=1,
        sort_keys=True,
        default=str,
    )
    return StageResult(name, key, out_dir, result, seconds, False)
