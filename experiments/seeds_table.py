"""Side-by-side Markdown tables of several study runs (e.g. three seeds): pre-training top-1,
each finding's verdict and numbers, and the per-stage times, from each workdir's summary.json.

  python experiments/seeds_table.py --workdirs=runs/seed0,runs/seed1,runs/seed2 \
      --labels="seed 0,seed 1,seed 2"

A claim whose verdict differs between the runs is marked **unstable**.
"""

import json
from pathlib import Path

import errors
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("workdirs", None, "Study workdirs, each with a summary.json.", required=True)
flags.DEFINE_list("labels", None, "Column labels (default: the workdirs' names).")


def _load(workdir: str) -> dict:
    path = Path(workdir) / "summary.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: run experiments/reproduce.py --workdir={workdir} first"
        )
    return json.loads(path.read_text())


def _row(cells) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def tables(runs: list[dict], labels: list[str]) -> str:
    """The three Markdown tables (top-1, pre-training speed and total time, findings, stage
    times)."""
    # The wall time of the run; stages overlap (analyses run beside the fine-tunings and each
    # other), so their percentages of it add up to more than 100. Older summaries: the sum.
    totals = [r.get("wall_seconds") or sum(t["seconds"] for t in r["timings"]) for r in runs]
    out = [_row(("", *labels)), _row(("---",) * (len(labels) + 1))]
    out.append(_row(("pre-training top-1", *[f"{r['pretrain_val_top1']:.3f}" for r in runs])))
    speed = [r.get("pretrain_images_per_s") for r in runs]
    out.append(_row(("pre-training images/s", *[f"{v:.0f}" if v else "–" for v in speed])))
    out.append(_row(("total, wall (s)", *[f"{t:.0f} ({t / 60:.1f} min)" for t in totals])))
    out += ["", _row(("claim", *labels, "across runs")), _row(("---",) * (len(labels) + 2))]
    for i, f in enumerate(runs[0]["findings"]):
        cells = [r["findings"][i] for r in runs]
        verdicts = {c["verdict"] for c in cells}
        agree = f"all {verdicts.pop()}" if len(verdicts) == 1 else "**unstable**"
        out.append(
            _row((f["claim"], *[f"**{c['verdict']}**: {c['evidence']}" for c in cells], agree))
        )
    out += ["", _row(("stage", *labels)), _row(("---",) * (len(labels) + 1))]
    for i, t in enumerate(runs[0]["timings"]):
        cells = [
            f"{r['timings'][i]['seconds']:.0f} ({100 * r['timings'][i]['seconds'] / tot:.0f} %)"
            for r, tot in zip(runs, totals, strict=True)
        ]
        out.append(_row((t["stage"], *cells)))
    return "\n".join(out)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    labels = FLAGS.labels or [Path(w).name for w in FLAGS.workdirs]
    if len(labels) != len(FLAGS.workdirs):
        raise app.UsageError("--labels needs one label per workdir")
    runs = [_load(w) for w in FLAGS.workdirs]
    claims = [[f["claim"] for f in r["findings"]] for r in runs]
    if any(c != claims[0] for c in claims):
        raise ValueError("the runs report different findings: compare runs of one code version")
    print(tables(runs, labels))


if __name__ == "__main__":
    errors.run(main)
