"""Training metrics: the JSONL log of a run, the progress line, and the curves plot.

Records are flat JSON objects, one per line of ``<run_dir>/metrics.jsonl``:

- ``{"split": "train", "step", "loss", "top1", "lr", "img_per_s", "tflops", "eta_s",
  "grad_norm", "update_norm", "param_norm"}``: means over the steps since the previous record
  (``top1`` is the training-batch accuracy with dropout on; ``tflops`` the achieved rate from the
  model's FLOP count, `jaxcnn.train.train_flops_per_image`);
- ``{"split": "val", "step", "top1", "top5", "loss", "count"}``: a full validation pass.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable

from jaxcnn import storage

log = logging.getLogger(__name__)
FILENAME = "metrics.jsonl"


def read_records(run_dir: str) -> list[dict]:
    """All complete records of a run (a last line cut by a killed process is skipped)."""
    path = os.path.join(run_dir, FILENAME)
    if not os.path.exists(path):
        return []
    records = []
    with open(path) as f:
        for i, line in enumerate(f):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s:%d: skipping an incomplete record", path, i + 1)
    return records


class MetricsLog:
    """Appends records to ``metrics.jsonl`` (only where `enabled`, i.e. on process 0) and hands
    each to `on_record`."""

    def __init__(
        self, run_dir: str, *, enabled: bool = True, on_record: Callable[[dict], None] | None = None
    ):
        self.path = os.path.join(run_dir, FILENAME)
        self.enabled = enabled
        self.on_record = on_record

    def truncate_after(self, step: int) -> None:
        """Drop records past `step` (written after the checkpoint a resumed run restarts from),
        rewriting the file atomically."""
        if not self.enabled or not os.path.exists(self.path):
            return
        keep = [r for r in read_records(os.path.dirname(self.path)) if r["step"] <= step]
        storage.write_text(self.path, "".join(json.dumps(r) + "\n" for r in keep))

    def append(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
        if self.on_record is not None:
            self.on_record(record)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def format_progress(record: dict, num_steps: int) -> str:
    """One human-readable line for a train or val record."""
    if record["split"] == "val":
        return (
            f"step {record['step']}/{num_steps}  validation: top-1 {record['top1']:.4f}  "
            f"top-5 {record['top5']:.4f}  loss {record['loss']:.4f}  "
            f"({record['count']} images)"
        )
    return (
        f"step {record['step']}/{num_steps}  loss {record['loss']:.4f}  "
        f"top-1 {record['top1']:.3f}  lr {record['lr']:.2e}  "
        f"{record['img_per_s']:.0f} img/s  {record['tflops']:.3f} TFLOP/s  "
        f"ETA {_duration(record['eta_s'])}"
    )


def plot_curves(records: list[dict], path: str, *, title: str = "") -> None:
    """Training loss, training and validation top-1 (and validation top-5) against step, written
    atomically to `path` (PNG)."""
    from matplotlib.figure import Figure  # not pyplot: plots may be drawn on several threads

    train = [r for r in records if r["split"] == "train"]
    val = [r for r in records if r["split"] == "val"]
    fig = Figure(figsize=(10, 3.8))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train")
    ax_loss.plot([r["step"] for r in val], [r["loss"] for r in val], "o-", label="val")
    ax_loss.set(xlabel="iteration", ylabel="cross-entropy loss", title="loss")
    ax_acc.plot([r["step"] for r in train], [r["top1"] for r in train], label="train top-1")
    ax_acc.plot([r["step"] for r in val], [r["top1"] for r in val], "o-", label="val top-1")
    ax_acc.plot([r["step"] for r in val], [r["top5"] for r in val], "s--", label="val top-5")
    ax_acc.set(xlabel="iteration", ylabel="accuracy", ylim=(0, 1), title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    storage.save_figure(fig, path, dpi=100)
