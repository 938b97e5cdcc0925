"""Tests for jaxcnn.train.log: the JSONL log (append, truncate on resume, torn last line),
the progress line and the curves plot."""

import json

from jaxcnn.train import log as training_log


def _train(step, **kw):
    return {
        "split": "train",
        "step": step,
        "loss": 2.5,
        "top1": 0.25,
        "lr": 0.01,
        "img_per_s": 1234.4,
        "tflops": 0.0921,
        "eta_s": 133.0,
        **kw,
    }


def test_append_read_truncate(tmp_path):
    seen = []
    log = training_log.MetricsLog(str(tmp_path), on_record=seen.append)
    for step in (10, 20, 30):
        log.append(_train(step))
    log.append({"split": "val", "step": 30, "top1": 0.5, "top5": 0.9, "loss": 1.0, "count": 9})
    assert [r["step"] for r in training_log.read_records(str(tmp_path))] == [10, 20, 30, 30]
    assert len(seen) == 4
    log.truncate_after(20)
    assert [r["step"] for r in training_log.read_records(str(tmp_path))] == [10, 20]


def test_torn_last_line_is_skipped(tmp_path):
    (tmp_path / training_log.FILENAME).write_text(json.dumps(_train(1)) + '\n{"split": "tr')
    assert [r["step"] for r in training_log.read_records(str(tmp_path))] == [1]


def test_disabled_log_writes_nothing(tmp_path):
    seen = []
    training_log.MetricsLog(str(tmp_path), enabled=False, on_record=seen.append).append(_train(1))
    assert not (tmp_path / training_log.FILENAME).exists() and len(seen) == 1


def test_format_progress():
    line = training_log.format_progress(_train(200), 3000)
    assert line == (
        "step 200/3000  loss 2.5000  top-1 0.250  lr 1.00e-02  1234 img/s  0.092 TFLOP/s  ETA 2m13s"
    )
    val = {"split": "val", "step": 3000, "top1": 0.5, "top5": 0.875, "loss": 1.25, "count": 8}
    assert training_log.format_progress(val, 3000) == (
        "step 3000/3000  validation: top-1 0.5000  top-5 0.8750  loss 1.2500  (8 images)"
    )
    assert "ETA 1h01m" in training_log.format_progress(_train(1, eta_s=3700), 10)


def test_plot_curves(tmp_path):
    records = [_train(s, loss=3 - s / 100) for s in (50, 100, 150)]
    records.append(
        {"split": "val", "step": 150, "top1": 0.4, "top5": 0.7, "loss": 1.9, "count": 10}
    )
    path = tmp_path / "curves.png"
    training_log.plot_curves(records, str(path), title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
