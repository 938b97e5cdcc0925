"""windows: the 32/96 sampler (uniform over the whole training set), iterator state, warping."""

import numpy as np
import pytest

from jaxcnn.detect import windows


def _set():
    # 3 images; labels: image 0 has 2 fg, image 1 none, image 2 one fg; 7 background.
    labels = np.array([1, 2, 0, 0, 0, 0, 0, 3, 0, 0])
    image = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    x1 = np.arange(10) + 1
    boxes = np.stack([x1, x1, x1 + 5, x1 + 5], 1)
    return windows.WindowSet(image=image, boxes=boxes, labels=labels)


def test_sample_batch_mix_and_uniformity():
    ws = _set()
    counts = np.zeros(len(ws))
    for b in range(600):
        idx, mirror = windows.sample_batch(ws.foreground, ws.background, seed=3, batch=b)
        assert idx.shape == (128,) and mirror.shape == (128,)
        assert np.all(ws.labels[idx[:32]] > 0) and np.all(ws.labels[idx[32:]] == 0)
        np.add.at(counts, idx, 1)
    # Uniform over each pool across images: 600 * 32 / 3 foreground and 600 * 96 / 7 each.
    fg, bg = ws.foreground, ws.background
    np.testing.assert_allclose(counts[fg] / (600 * 32 / 3), 1, atol=0.05)
    np.testing.assert_allclose(counts[bg] / (600 * 96 / 7), 1, atol=0.05)
    a = windows.sample_batch(fg, bg, seed=3, batch=5)
    b = windows.sample_batch(fg, bg, seed=3, batch=5)
    c = windows.sample_batch(fg, bg, seed=3, batch=6)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    with pytest.raises(ValueError, match="foreground and background"):
        windows.sample_batch(fg[:0], bg, seed=0, batch=0)


def test_window_set_from_entries():
    from jaxcnn.detect import roidb

    gt = roidb.GroundTruth(
        "a", 30, 30, np.array([[1, 1, 10, 10]]), np.array([1]), np.array([False])
    )
    e = roidb.make_entry(gt, np.array([[1, 1, 10, 11], [20, 20, 25, 25]]), num_classes=2)
    ws = windows.window_set([e, e])
    np.testing.assert_array_equal(ws.labels, [2, 2, 0] * 2)
    np.testing.assert_array_equal(ws.image, [0, 0, 0, 1, 1, 1])


def test_iterator_resumes_and_mirrors():
    ws = _set()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (24, 24, 3)).astype(np.uint8) for _ in range(3)]
    spec = windows.WarpSpec(out_size=8, pad=1.0, mean_OxOx3=np.zeros((8, 8, 3), np.float32))
    it = windows.WindowIterator(images.__getitem__, ws, spec, seed=1, num_fg=2, num_bg=6)
    first, second = next(it), next(it)
    assert first["image"].shape == (8, 8, 8, 3) and first["label"].dtype == np.int32
    it2 = windows.WindowIterator(images.__getitem__, ws, spec, seed=1, num_fg=2, num_bg=6)
    it2.set_state({"batch": 1})
    again = next(it2)
    np.testing.assert_array_equal(again["image"], second["image"])
    np.testing.assert_array_equal(again["label"], second["label"])
    assert it.get_state() == {"batch": 2}
    idx = np.array([0, 7])
    plain = windows.warp_windows(images.__getitem__, ws, idx, spec)
    flipped = windows.warp_windows(images.__getitem__, ws, idx, spec, np.array([True, False]))
    np.testing.assert_array_equal(flipped[0], plain[0][:, ::-1])
    np.testing.assert_array_equal(flipped[1], plain[1])


def test_eval_batches_are_padded_and_masked():
    ws = _set()
    images = [np.zeros((24, 24, 3), np.uint8)] * 3
    spec = windows.WarpSpec(out_size=8, pad=0.0, mean_OxOx3=np.zeros((8, 8, 3), np.float32))
    batches = list(windows.eval_batches(images.__getitem__, ws, spec, batch_size=3, count=8)())
    mask = np.concatenate([b["mask"] for b in batches])
    labels = np.concatenate([b["label"] for b in batches])[mask]
    assert mask.sum() == 8 and len(batches) == 3
    assert (labels > 0).sum() == 2  # a quarter foreground


class _Source(list):
    """A source double: item i is {"image": ...}; counts the images read."""

    reads = 0

    def __getitem__(self, i):
        self.reads += 1
        return super().__getitem__(i)


def test_cached_windows_equal_fresh_warps_and_warp_each_window_once(monkeypatch):
    """`CachedWindows` gives the windows of a fresh warp bit for bit (mirrored too), warps each
    window once while under its budget, keeps them read-only, and warps anew for another spec
    or beyond the budget."""
    ws = _set()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (24, 24, 3)).astype(np.uint8) for _ in range(3)]
    mean = rng.normal(size=(8, 8, 3)).astype(np.float32)
    spec = windows.WarpSpec(out_size=8, pad=1.0, mean_OxOx3=mean)
    cache = windows.CachedWindows(_Source({"image": im} for im in images), spec)
    calls = []
    real = windows.box_ops.warp_pixel_box
    monkeypatch.setattr(
        windows.box_ops, "warp_pixel_box", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    idx, mirror = np.array([0, 3, 7, 0, 9]), np.array([False, True, False, True, False])
    fresh = windows.warp_windows(images.__getitem__, ws, idx, spec, mirror)
    assert len(calls) == 5
    first = windows.warp_windows(cache, ws, idx, spec, mirror)
    assert len(calls) == 9  # window 0 is warped once, then mirrored from the kept copy
    again = windows.warp_windows(cache, ws, idx, spec, mirror)
    assert len(calls) == 9
    np.testing.assert_array_equal(first, fresh)
    np.testing.assert_array_equal(again, fresh)
    assert len(cache.kept) == 4 and cache.nbytes == 4 * 8 * 8 * 3 * 4
    assert not cache.warp(0, ws.boxes[0]).flags.writeable
    copy = windows.WarpSpec(out_size=8, pad=1.0, mean_OxOx3=mean.copy())
    assert cache.serves(copy)
    windows.warp_windows(cache, ws, idx[:1], copy)
    assert len(calls) == 9  # an equal spec is served from the kept windows
    other = windows.WarpSpec(out_size=8, pad=0.0, mean_OxOx3=mean)
    assert not cache.serves(other)
    np.testing.assert_array_equal(
        windows.warp_windows(cache, ws, idx[:2], other),
        windows.warp_windows(images.__getitem__, ws, idx[:2], other),
    )
    small = windows.CachedWindows(_Source({"image": im} for im in images), spec, budget_bytes=1000)
    windows.warp_windows(small, ws, np.arange(4), spec)
    assert len(small.kept) == 1 and small.nbytes == 768  # the next would pass 1,000 bytes
    np.testing.assert_array_equal(
        windows.warp_windows(small, ws, np.arange(4), spec),
        windows.warp_windows(images.__getitem__, ws, np.arange(4), spec),
    )
