"""Tests for jaxcnn.features.cache: the cache is keyed by the checkpoint's content, so a run
retrained in the same directory gets its features recomputed (made for real: two tiny training
runs with different seeds in one folder)."""

import shutil

import numpy as np
import pytest
from absl import flags

from jaxcnn import features, train
from jaxcnn.data import prepare
from jaxcnn.train import loop

TINY = {"width": 0.125, "fc_width": 32, "input_size": 32}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    if not flags.FLAGS.is_parsed():  # grain reads absl flags; under pytest nobody parses them
        flags.FLAGS.mark_as_parsed()
    data_dir = tmp_path_factory.mktemp("tfds")
    prepare.prepare_toyworld(size="tiny", seed=0, data_dir=str(data_dir), num_workers=1)
    return str(data_dir)


class Noise:
    """Random training batches (state: the batch index)."""

    def __init__(self, seed):
        self.seed, self.i = seed, 0

    def __next__(self):
        rng = np.random.default_rng([self.seed, self.i])
        self.i += 1
        return {
            "image": rng.normal(size=(4, 32, 32, 3)).astype(np.float32),
            "label": rng.integers(0, 5, 4).astype(np.int32),
        }

    def get_state(self):
        return {"i": self.i}

    def set_state(self, state):
        self.i = state["i"]


def _train(run_dir, seed):
    cfg = train.TrainConfig(
        num_classes=5,
        num_steps=2,
        batch_size=4,
        model_overrides=TINY,
        num_local_devices=1,
        checkpoint_every=2,
        log_every=1,
        seed=seed,
    )
    loop.train(cfg, str(run_dir), train_data=Noise(seed))


def test_retrained_run_in_the_same_dir_gets_new_features(tmp_path, tiny_dir):
    run_dir = tmp_path / "run"
    fs = features.FeatureSet(
        "toyworld/scenes_tiny", "test", data_dir=tiny_dir, crop=32, resize=36, max_examples=8
    )
    cache = features.FeatureCache(tmp_path / "out", batch_size=4)
    _train(run_dir, seed=0)
    step, first_dir = cache.folder(str(run_dir), None, fs)
    first = np.array(cache.get(str(run_dir), None, fs, taps=("fc7",))["taps"]["fc7"])
    assert step == 2 and (first_dir / "manifest.json").exists()
    shutil.rmtree(run_dir)
    _train(run_dir, seed=1)  # same directory, same step, different network
    _, second_dir = cache.folder(str(run_dir), 2, fs)
    assert second_dir != first_dir
    second = np.array(cache.get(str(run_dir), 2, fs, taps=("fc7",))["taps"]["fc7"])
    fresh = features.extract(
        str(run_dir), 2, fs, str(tmp_path / "fresh"), taps=("fc7",), batch_size=4
    )
    np.testing.assert_array_equal(second, fresh["taps"]["fc7"])
    assert not np.array_equal(first, second)
    # a second path to the same checkpoint shares the folder
    (tmp_path / "link").symlink_to(run_dir)
    assert cache.folder(str(tmp_path / "link"), 2, fs)[1] == second_dir


def test_a_finished_extraction_is_read_without_a_pass_over_the_images(
    tmp_path, tiny_dir, monkeypatch
):
    run_dir = tmp_path / "run"
    fs = features.FeatureSet(
        "toyworld/scenes_tiny", "test", data_dir=tiny_dir, crop=32, resize=36, max_examples=8
    )
    cache = features.FeatureCache(tmp_path / "out", batch_size=4)
    _train(run_dir, seed=0)
    first = cache.get(str(run_dir), None, fs, taps=("fc7",))
    fc7, labels = np.array(first["taps"]["fc7"]), np.array(first["labels"])

    def refuse(*args, **kwargs):
        raise AssertionError("a finished extraction ran again")

    monkeypatch.setattr(features.sets.extraction, "extract_features", refuse)
    monkeypatch.setattr(features.sets.pipeline, "eval_loader", refuse)
    again = cache.get(str(run_dir), None, fs, taps=("fc7",))
    np.testing.assert_array_equal(again["taps"]["fc7"], fc7)
    np.testing.assert_array_equal(again["labels"], labels)
    # other taps are a different extraction: refused as before, not silently mixed
    monkeypatch.undo()
    _, folder = cache.folder(str(run_dir), None, fs)
    with pytest.raises(ValueError, match="different extraction"):
        features.extract(str(run_dir), None, fs, str(folder), taps=("fc6",), batch_size=4)


@pytest.mark.parametrize("view", ["image", "gt_boxes"])
def test_a_second_checkpoint_reads_the_preprocessed_set_from_memory(
    tmp_path, tiny_dir, monkeypatch, view
):
    fs = features.FeatureSet(
        "toyworld/scenes_tiny", "test", view, "trainval", data_dir=tiny_dir, crop=32, resize=36,
        max_examples=7,
    )  # fmt: skip
    _train(tmp_path / "a", seed=0)
    _train(tmp_path / "b", seed=1)
    monkeypatch.setattr(features.sets, "_memo", features.sets.collections.OrderedDict())
    extract = lambda run, out: features.extract(  # noqa: E731
        str(tmp_path / run), None, fs, str(tmp_path / out), taps=("conv5", "fc7"), batch_size=4
    )
    extract("a", "a1")
    assert fs in features.sets._memo
    with monkeypatch.context() as m:

        def refuse(*args, **kwargs):
            raise AssertionError("the images were read again")

        m.setattr(features.sets.pipeline, "eval_loader", refuse)
        held = extract("b", "b_memory")
    features.sets._memo.clear()
    streamed = extract("b", "b_stream")
    for tap in ("conv5", "fc7"):
        np.testing.assert_array_equal(held["taps"][tap], streamed["taps"][tap])
    np.testing.assert_array_equal(held["labels"], streamed["labels"])
    if view == "gt_boxes":
        np.testing.assert_array_equal(held["difficult"], streamed["difficult"])
        assert streamed["num_examples"] > 7  # boxes of 7 images, last batch padded
