"""window_finetune: the new layer's 10/20 learning-rate multipliers, and a few steps of window
fine-tuning from a 'pre-trained' run in each regime."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import model
from jaxcnn.detect import window_finetune, windows
from jaxcnn.model import alexnet
from jaxcnn.storage import checkpoints

TINY = dict(width=0.125, fc_width=32, input_size=32)


def test_head_gets_ten_and_twenty_times_the_rate():
    cfg = window_finetune.WindowTrainConfig(
        num_classes=4, num_steps=1, batch_size=8, base_lr=0.001, weight_decay=0.0, momentum=0.9
    )
    params = {n: {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros(2)} for n in ("fc7", "fc8")}
    tx = cfg.optimizer(params, ("fc7", "fc8"))
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    # Caffe: w <- w - lr * lr_mult * g (first step, no momentum history, no decay).
    assert float(updates["fc7"]["kernel"][0, 0]) == pytest.approx(-0.001)
    assert float(updates["fc7"]["bias"][0]) == pytest.approx(-0.002)
    assert float(updates["fc8"]["kernel"][0, 0]) == pytest.approx(-0.01)
    assert float(updates["fc8"]["bias"][0]) == pytest.approx(-0.02)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("pretrained")
    module = alexnet.from_preset("small", 7, **TINY)
    params = model.init_params(module, jax.random.key(3))
    meta = {"model": {"preset": "small", "num_classes": 7, "overrides": TINY}}
    checkpoints.save_params(run, params, meta=meta)
    return str(run)


def _windows():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 40, 3)).astype(np.uint8) for _ in range(2)]
    x1 = rng.integers(1, 20, 12)
    boxes = np.stack([x1, x1, x1 + 15, x1 + 18], 1)
    labels = np.array([1, 2, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0])
    ws = windows.WindowSet(np.repeat([0, 1], 6), boxes, labels)
    spec = windows.WarpSpec(32, 32 * 16 / 227, np.zeros((32, 32, 3), np.float32))
    return images, ws, spec


@pytest.mark.parametrize("regime", ["ft", "fc-ft", "scratch"])
def test_a_few_steps_of_window_fine_tuning(tmp_path, source_run, regime):
    images, ws, spec = _windows()
    cfg = window_finetune.WindowTrainConfig(
        num_classes=4,
        num_steps=3,
        batch_size=8,
        model_overrides=TINY,
        regime=regime,
        init_from=source_run if regime != "scratch" else "",
        base_lr=0.001,
        log_every=1,
        checkpoint_every=3,
        num_local_devices=1,
    )
    data = windows.WindowIterator(images.__getitem__, ws, spec, seed=0, num_fg=2, num_bg=6)
    evals = windows.eval_batches(images.__getitem__, ws, spec, batch_size=8, count=8)
    summary = window_finetune.finetune_windows(cfg, str(tmp_path), train_data=data, eval_data=evals)
    assert summary["step"] == 3 and summary["val"]["count"] == 8
    params = checkpoints.restore_params(str(tmp_path))
    assert params["fc8"]["kernel"].shape == (32, 4)  # classes + background
    src = checkpoints.restore_params(source_run)
    same_conv1 = np.array_equal(params["conv1"]["kernel"], src["conv1"]["kernel"])
    assert same_conv1 == (regime == "fc-ft")  # frozen only in fc-ft; ft moves it a little
    assert data.get_state() == {"batch": 3}
