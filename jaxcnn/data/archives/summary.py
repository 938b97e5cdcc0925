"""What a preparation reports and records: `Progress`, `Summary`, `jaxcnn-prepare.json`.

`jaxcnn-prepare.json`, next to the dataset's `dataset_info.json`, records the options the
dataset was prepared with (e.g. ImageNet's `resize`), the inputs read and the summary;
`read_metadata` returns it (None for a dataset TFDS prepared itself).
"""

from __future__ import annotations

import dataclasses
import json
import os

METADATA = "jaxcnn-prepare.json"
MAX_NAMED = 20  # skipped examples named per reason in the summary


@dataclasses.dataclass(frozen=True)
class Progress:
    done: int
    total: int
    per_second: float  # images processed by this run per second
    eta_seconds: float


@dataclasses.dataclass(frozen=True)
class Summary:
    dataset: str
    directory: str
    counts: dict  # split -> examples written
    skipped: dict  # reason -> {'count', 'examples' (the first MAX_NAMED keys)}
    notes: dict  # reason -> count
    bytes_on_disk: int
    seconds: float
    shards: int
    resumed_shards: int
    options: dict
    already_prepared: bool = False

    def lines(self) -> list[str]:
        out = [f"{self.dataset}: {self.directory}"]
        if self.already_prepared:
            out[0] += " (already prepared; summary of the run that prepared it)"
        out.append("  examples: " + ", ".join(f"{s} {n}" for s, n in self.counts.items()))
        for reason, s in sorted(self.skipped.items()):
            out.append(f"  skipped ({reason}): {s['count']}, e.g. {', '.join(s['examples'][:5])}")
        if not self.skipped:
            out.append("  skipped: none")
        out += [f"  note: {reason}: {n}" for reason, n in sorted(self.notes.items())]
        out.append(
            f"  {self.bytes_on_disk / 2**20:.1f} MiB on disk, {self.seconds:.1f} s, "
            f"{self.shards} shards ({self.resumed_shards} from an earlier run); "
            f"options {json.dumps(self.options, sort_keys=True)}"
        )
        return out


def write_json(path: str, value) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def prepared_summary(directory: str, dataset: str, options: dict) -> Summary:
    """The summary of a finished preparation (from its record), or a bare one for a
    directory TFDS prepared."""
    path = os.path.join(directory, METADATA)
    if not os.path.exists(path):
        return Summary(dataset, directory, {}, {}, {}, 0, 0.0, 0, 0, options, True)
    fields = read_json(path)["summary"]
    return dataclasses.replace(Summary(**fields), already_prepared=True)


def read_metadata(directory: str) -> dict | None:
    """What `jaxcnn-prepare.json` records (options, inputs, summary), None if TFDS made it."""
    path = os.path.join(os.fspath(directory), METADATA)
    return read_json(path) if os.path.exists(path) else None
