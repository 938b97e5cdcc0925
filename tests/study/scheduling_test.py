"""The study's analyses on worker threads (`jaxcnn.study.run._Analyses`): priority, then
registry order, needs respected, one analysis beside the training and two after it, errors
re-raised, a failed training starts nothing more."""

import threading
import time
from types import SimpleNamespace

import pytest

from jaxcnn.study import run


class _Recorder:
    """run_one double: records start order and the most analyses running at once."""

    def __init__(self, seconds=0.05, fail=()):
        self.lock = threading.Lock()
        self.started, self.running, self.most = [], 0, 0
        self.seconds, self.fail = seconds, set(fail)

    def __call__(self, analysis):
        with self.lock:
            self.started.append(analysis.name)
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        if analysis.name in self.fail:
            raise RuntimeError(f"{analysis.name} failed")
        return f"result of {analysis.name}"


def _analyses(*specs, priority=None):
    priority = priority or {}
    return [
        SimpleNamespace(name=name, needs=needs, priority=priority.get(name, 0), after=())
        for name, needs in specs
    ]


def _wait_until(condition, timeout=5.0):
    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        time.sleep(0.005)


def test_one_beside_training_then_two_in_registry_order():
    rec = _Recorder()
    todo = _analyses(
        ("a", ("pretrain",)),
        ("b", ("pretrain", "finetunes")),
        ("c", ("pretrain", "finetunes")),
        ("d", ()),
        ("e", ("pretrain",)),
    )
    side = run._Analyses(todo, rec)
    _wait_until(lambda: len(rec.started) >= 3)
    time.sleep(0.2)  # "training": b and c wait for it
    # the ready ones (a first), one at a time
    assert rec.started[0] == "a" and sorted(rec.started) == ["a", "d", "e"] and rec.most == 1
    side.training_done()
    results = side.join()
    assert results == {n: f"result of {n}" for n in "abcde"}
    assert sorted(rec.started[3:]) == ["b", "c"] and rec.most == 2


def test_an_analysis_error_is_raised_by_join():
    rec = _Recorder(fail={"a"})
    side = run._Analyses(_analyses(("a", ("pretrain",)), ("b", ("pretrain",))), rec)
    side.training_done()
    with pytest.raises(RuntimeError, match="a failed"):
        side.join()


def test_a_failed_training_starts_nothing_more():
    rec = _Recorder(seconds=0.2)
    todo = _analyses(("a", ("pretrain",)), ("b", ("pretrain",)), ("c", ("finetunes",)))
    side = run._Analyses(todo, rec)
    _wait_until(lambda: len(rec.started) >= 1)
    side.stop()
    side.join()
    assert rec.started == ["a"]


def test_a_need_provided_during_training_starts_its_analysis_before_training_ends():
    rec = _Recorder()
    todo = _analyses(("a", ("pretrain", "finetunes")), ("b", ("pretrain", "finetune-det-ft")))
    side = run._Analyses(todo, rec)
    time.sleep(0.1)
    assert rec.started == []
    side.provide("finetune-det-ft")
    _wait_until(lambda: rec.started == ["b"])
    assert rec.started == ["b"]  # "a" still waits for the training
    side.training_done()
    assert side.join() == {"a": "result of a", "b": "result of b"}


def test_a_freed_slot_goes_to_the_first_ready_analysis_in_registry_order():
    rec = _Recorder(seconds=0.1)
    todo = _analyses(
        ("a", ("pretrain",)),
        ("b", ("pretrain",)),
        ("c", ("pretrain", "finetune-det-ft")),
    )
    side = run._Analyses(todo, rec)
    _wait_until(lambda: rec.started == ["a"])
    side.provide("finetune-det-ft")  # c is ready while a runs; b comes first when a is done
    _wait_until(lambda: len(rec.started) == 2)
    side.training_done()
    side.join()
    assert rec.started == ["a", "b", "c"]


def test_the_highest_priority_ready_analysis_starts_first():
    """Priority before registry order among the ready analyses; one that is not ready waits
    whatever its priority."""
    rec = _Recorder()
    todo = _analyses(
        ("a", ("pretrain",)),
        ("b", ("pretrain",)),
        ("late", ("finetunes",)),
        ("long", ("pretrain",)),
        priority={"late": 2, "long": 1},
    )
    side = run._Analyses(todo, rec)
    _wait_until(lambda: len(rec.started) >= 3)
    time.sleep(0.1)  # "training": late waits for it
    assert rec.started == ["long", "a", "b"]
    side.training_done()
    side.join()
    assert rec.started == ["long", "a", "b", "late"]


def test_an_analysis_after_another_starts_when_that_one_is_done():
    """`after`: an analysis that reads another's results waits for it even when a slot is free
    and its needs are met; one registered first but not ready does not hold up the others."""
    rec = _Recorder(seconds=0.2)
    todo = _analyses(("reads", ("pretrain",)), ("first", ("pretrain",)), ("other", ("pretrain",)))
    todo[0].after = ("first",)
    side = run._Analyses(todo, rec)
    side.training_done()  # two slots
    _wait_until(lambda: len(rec.started) == 2)
    time.sleep(0.05)
    assert rec.started == ["first", "other"]  # "reads" waits although it comes first
    side.join()
    assert rec.started == ["first", "other", "reads"]
