"""Training windows for detection fine-tuning (R-CNN's window data layer).

Every box of every training image (ground truth and proposals, `jaxcnn.detect.roidb`) is a
window labelled ``c + 1`` (foreground of class c: highest IoU >= 0.5 with a ground-truth box of
class c) or 0 (background). A batch of 128 holds 32 foreground and 96 background windows, each
drawn uniformly at random, with replacement, from all windows of its kind in the whole training
set (Caffe's ``WindowDataLayer``: ``rand() % fg_windows.size()``); each window is warped with
context padding (`jaxcnn.detect.boxes.warp_pixel_box`, 16 px at 227, scaled) and mirrored with
probability 1/2.

`WindowIterator` meets `jaxcnn.train.loop`'s data contract: batch ``n`` is drawn from
``np.random.default_rng([seed, n])``, so the state is just ``{"batch": n}`` and a resumed run
sees the same windows.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import numpy as np

from jaxcnn.detect import boxes as box_ops
from jaxcnn.detect import roidb


@dataclasses.dataclass(frozen=True)
class WindowSet:
    """All windows of a split: image index, pixel box and label (0 = background)."""

    image: np.ndarray  # int64 [W]
    boxes: np.ndarray  # int64 [W, 4]
    labels: np.ndarray  # int64 [W]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def foreground(self) -> np.ndarray:
        return np.nonzero(self.labels > 0)[0]

    @property
    def background(self) -> np.ndarray:
        return np.nonzero(self.labels == 0)[0]


def window_set(entries: Sequence[roidb.Entry], *, fg_threshold: float = 0.5) -> WindowSet:
    """The windows of a split's entries (image i = entries[i])."""
    image = [np.full(len(e.boxes), i, np.int64) for i, e in enumerate(entries)]
    labels = [roidb.window_labels(e, fg_threshold=fg_threshold) for e in entries]
    return WindowSet(
        image=np.concatenate(image) if image else np.zeros(0, np.int64),
        boxes=np.concatenate([e.boxes for e in entries]) if entries else np.zeros((0, 4), int),
        labels=np.concatenate(labels) if labels else np.zeros(0, np.int64),
    )


def sample_batch(
    foreground_F: np.ndarray,
    background_B: np.ndarray,
    *,
    seed: int,
    batch: int,
    num_fg: int = 32,
    num_bg: int = 96,
) -> tuple[np.ndarray, np.ndarray]:
    """``(window indices [num_fg + num_bg], mirror flags)`` of batch number `batch`: foreground
    first, each drawn uniformly with replacement from its pool (module docstring)."""
    if len(foreground_F) == 0 or len(background_B) == 0:
        raise ValueError(
            f"need foreground and background windows, have {len(foreground_F)} and "
            f"{len(background_B)}"
        )
    rng = np.random.default_rng([seed, batch])
    fg = foreground_F[rng.integers(0, len(foreground_F), num_fg)]
    bg = background_B[rng.integers(0, len(background_B), num_bg)]
    return np.concatenate([fg, bg]), rng.random(num_fg + num_bg) < 0.5


@dataclasses.dataclass
class WarpSpec:
    """How windows become network inputs: output size, context padding, the O x O mean."""

    out_size: int
    pad: float
    mean_OxOx3: np.ndarray


def warp_windows(
    image_of: Callable[[int], np.ndarray],
    windows: WindowSet,
    idx_B: np.ndarray,
    spec: WarpSpec,
    mirror_B: np.ndarray | None = None,
) -> np.ndarray:
    """float32 [B, O, O, 3]: the windows `idx_B` warped (and mirrored where `mirror_B`).
    `image_of` may be a `CachedWindows` of the same `spec`, which warps each window once."""
    out = np.empty((len(idx_B), spec.out_size, spec.out_size, 3), np.float32)
    cached = isinstance(image_of, CachedWindows) and image_of.serves(spec)
    for j, w in enumerate(idx_B):
        i, box = int(windows.image[w]), windows.boxes[w]
        crop = image_of.warp(i, box) if cached else _warp(image_of(i), box, spec)
        out[j] = crop[:, ::-1] if mirror_B is not None and mirror_B[j] else crop
    return out


def _warp(image, box, spec: WarpSpec) -> np.ndarray:
    return box_ops.warp_pixel_box(image, box, spec.mean_OxOx3, out_size=spec.out_size, pad=spec.pad)


def cached_images(source, maxsize: int = 4096) -> Callable[[int], np.ndarray]:
    """``i -> uint8 image`` of a `Source`, decoded once per image while it stays cached."""

    @functools.lru_cache(maxsize=maxsize)
    def image_of(i: int) -> np.ndarray:
        return source[i]["image"]

    return image_of


class CachedWindows:
    """``i -> uint8 image`` of a `Source` (as `cached_images`) that also keeps each window it
    warps with `spec`, up to `budget_bytes` of windows (later ones are warped each time).

    A detection experiment warps the same windows again and again: for each network's window
    fine-tuning (random batches), its validation, and each network's pool5 of both splits. On the
    embedded default a window's warp takes ~0.5 ms of Python and numpy, and 20,000 windows of
    64 px take 1 GB. `warp_windows` uses the kept windows when given one of these; the values are
    those of warping anew (the same function on the same inputs)."""

    def __init__(self, source, spec: WarpSpec, *, budget_bytes: int = 1 << 30):
        self.image_of = cached_images(source)
        self.spec, self.budget_bytes = spec, budget_bytes
        self.kept: dict[tuple, np.ndarray] = {}
        self.nbytes = 0

    def __call__(self, i: int) -> np.ndarray:
        return self.image_of(i)

    def serves(self, spec: WarpSpec) -> bool:
        """Whether windows warped with `spec` are the ones kept here."""
        mine = self.spec
        return spec is mine or (
            (spec.out_size, spec.pad) == (mine.out_size, mine.pad)
            and np.array_equal(spec.mean_OxOx3, mine.mean_OxOx3)
        )

    def warp(self, i: int, box) -> np.ndarray:
        """float32 [O, O, 3]: window `box` of image i warped with `spec` (read-only when kept)."""
        key = (i, *np.asarray(box).tolist())
        crop = self.kept.get(key)
        if crop is None:
            crop = _warp(self.image_of(i), box, self.spec)
            if self.nbytes + crop.nbytes <= self.budget_bytes:
                crop.flags.writeable = False
                self.kept[key] = crop
                self.nbytes += crop.nbytes
        return crop


class WindowIterator:
    """Infinite 32/96 training batches ``{'image', 'label'}`` (module docstring)."""

    def __init__(
        self,
        image_of,
        windows: WindowSet,
        spec: WarpSpec,
        *,
        seed: int,
        num_fg: int = 32,
        num_bg: int = 96,
    ):
        self.image_of, self.windows, self.spec = image_of, windows, spec
        self.seed, self.num_fg, self.num_bg = seed, num_fg, num_bg
        self.fg, self.bg = windows.foreground, windows.background
        self.batch = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        idx, mirror = sample_batch(
            self.fg,
            self.bg,
            seed=self.seed,
            batch=self.batch,
            num_fg=self.num_fg,
            num_bg=self.num_bg,
        )
        self.batch += 1
        images = warp_windows(self.image_of, self.windows, idx, self.spec, mirror)
        return {"image": images, "label": self.windows.labels[idx].astype(np.int32)}

    def get_state(self) -> dict:
        return {"batch": self.batch}

    def set_state(self, state: dict) -> None:
        self.batch = int(state["batch"])


def eval_batches(
    image_of, windows: WindowSet, spec: WarpSpec, *, batch_size: int, count: int, seed: int = 0
):
    """A callable giving one ordered pass over `count` windows of an evaluation split, a fixed
    draw of a quarter foreground and three quarters background (the training mix), in batches
    with ``mask`` (the last one padded)."""
    rng = np.random.default_rng([seed, 1])
    fg, bg = windows.foreground, windows.background
    n_fg = min(len(fg), count // 4)
    n_bg = min(len(bg), count - n_fg)
    idx = np.concatenate([rng.choice(fg, n_fg, replace=False), rng.choice(bg, n_bg, replace=False)])

    def batches():
        for lo in range(0, len(idx), batch_size):
            part = idx[lo : lo + batch_size]
            images = warp_windows(image_of, windows, part, spec)
            short = batch_size - len(part)
            yield {
                "image": np.concatenate([images, np.zeros((short, *images.shape[1:]), np.float32)]),
                "label": np.concatenate([windows.labels[part], np.zeros(short, int)]).astype(
                    np.int32
                ),
                "mask": np.arange(batch_size) < len(part),
            }

    return batches
