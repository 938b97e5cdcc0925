"""The toyworld class tables and the samplers that draw one shard of each part.

The class tables are fixed (drawn once from the constant `WORLD_SEED`), so class ids mean the
same thing in every prepared copy; the preparation seed only changes which images are drawn.

- source (ImageNet stand-in): NUM_SOURCE_CLASSES classes, each a (shape, colour, texture)
  combination; one object per image, radius 11-25 px at 72 px, anywhere with mild truncation.
- scenes (PASCAL stand-in): 20 further combinations, disjoint from the source classes but
  built from the same primitives; 1-4 objects per image, radius 6-17 px, with boxes.
- places (SUN stand-in): NUM_PLACES_CLASSES categories = (pair of object kinds) x (layout);
  an object kind is a (shape, colour) pair drawn with any texture, the layouts are
  row, column, 2x2 grid, top/bottom and ring.

All geometry is expressed in units of the image size, so `image_size` may be changed.
This module imports only numpy, PIL and `boxes` (for the box convention): it runs in the
preparation worker processes.
"""

from __future__ import annotations

import io
import itertools
from typing import NamedTuple

import numpy as np
from PIL import Image

from jaxcnn.data import boxes
from jaxcnn.data import toyworld_draw as draw

WORLD_SEED = 2014
PARTS = ("source", "scenes", "places")
SHARD_SIZE = 500
NUM_SOURCE_CLASSES = 100
NUM_SCENE_CLASSES = 20
LAYOUTS = ("row", "column", "grid", "top_bottom", "ring")
NUM_PLACE_KINDS = 10
NUM_PLACE_PAIRS = 8
NUM_PLACES_CLASSES = NUM_PLACE_PAIRS * len(LAYOUTS)


def _build_tables():
    rng = np.random.default_rng(WORLD_SEED)
    combos = list(itertools.product(range(8), range(8), range(4)))  # shape, colour, texture
    order = rng.permutation(len(combos))
    source = np.array([combos[i] for i in order[:NUM_SOURCE_CLASSES]])
    scenes = np.array([combos[i] for i in order[NUM_SOURCE_CLASSES:][:NUM_SCENE_CLASSES]])
    kind_pairs = list(itertools.product(range(8), range(8)))
    kinds = np.array([kind_pairs[i] for i in rng.permutation(64)[:NUM_PLACE_KINDS]])
    pairs = list(itertools.combinations(range(NUM_PLACE_KINDS), 2))
    chosen = np.array([pairs[i] for i in rng.permutation(len(pairs))[:NUM_PLACE_PAIRS]])
    places = np.array([(a, b, lay) for (a, b) in chosen for lay in range(len(LAYOUTS))])
    return source, scenes, kinds, places


# [classes, 3] (shape, colour, texture); [kinds, 2] (shape, colour); [classes, 3] (a, b, layout)
SOURCE_CLASSES, SCENE_CLASSES, PLACE_KINDS, PLACES_CLASSES = _build_tables()


def combo_name(shape: int, colour: int, texture: int) -> str:
    return f"{draw.COLOUR_NAMES[colour]}-{draw.TEXTURES[texture]}-{draw.SHAPES[shape]}"


def _kind_name(kind: int) -> str:
    shape, colour = PLACE_KINDS[kind]
    return f"{draw.COLOUR_NAMES[colour]}-{draw.SHAPES[shape]}"


SOURCE_NAMES = tuple(combo_name(*c) for c in SOURCE_CLASSES)
SCENE_NAMES = tuple(combo_name(*c) for c in SCENE_CLASSES)
PLACES_NAMES = tuple(
    f"{_kind_name(a)}+{_kind_name(b)}@{LAYOUTS[lay]}" for a, b, lay in PLACES_CLASSES
)


def encode_jpeg(image_SxSx3: np.ndarray, quality: int) -> bytes:
    """Baseline JPEG bytes (libjpeg via PIL; deterministic for a given PIL build)."""
    buf = io.BytesIO()
    Image.fromarray(image_SxSx3).save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def _object_params(rng, combos_Nx3, radius_N, cy_N, cx_N):
    n = combos_Nx3.shape[0]
    return dict(
        shape_N=combos_Nx3[:, 0],
        rgb_Nx3=draw.jittered_colours(rng, combos_Nx3[:, 1]),
        texture_N=combos_Nx3[:, 2],
        cy_N=cy_N.astype(np.float32),
        cx_N=cx_N.astype(np.float32),
        radius_N=radius_N.astype(np.float32),
        theta_N=rng.uniform(0, 2 * np.pi, n).astype(np.float32),
        period_N=rng.uniform(4.0, 6.5, n).astype(np.float32),
        phase_N=rng.uniform(0, 2 * np.pi, n).astype(np.float32),
    )


def sample_source(rng: np.random.Generator, labels_N: np.ndarray, size: int) -> np.ndarray:
    """[N, S, S, 3] uint8 object-centric images of the given source class ids."""
    n = labels_N.shape[0]
    images = draw.backgrounds(rng, n, size)
    draw.add_clutter(rng, images, fragments=4, lines=2)
    radius = rng.uniform(0.15, 0.35, n) * size
    lo, hi = 0.7 * radius, size - 0.7 * radius  # centres keep >= ~70 % of the radius inside
    cy, cx = rng.uniform(lo, hi), rng.uniform(lo, hi)
    params = _object_params(rng, SOURCE_CLASSES[labels_N], radius, cy, cx)
    draw.draw_objects(images, active_N=np.ones(n, bool), **params)
    return draw.to_uint8(images)


def _unit_areas() -> np.ndarray:
    """Area of each shape at radius 1 (numerically, radius 40 px on a 100 px grid)."""
    areas = []
    for shape in range(len(draw.SHAPES)):
        canvas = np.zeros((1, 100, 100, 3), np.float32)
        cover = draw.draw_objects(
            canvas, active_N=np.ones(1, bool), shape_N=np.array([shape]),
            rgb_Nx3=np.zeros((1, 3), np.float32), texture_N=np.zeros(1, int),
            cy_N=np.array([50.0]), cx_N=np.array([50.0]), radius_N=np.array([40.0]),
            theta_N=np.zeros(1), period_N=np.ones(1), phase_N=np.zeros(1),
        )  # fmt: skip
        areas.append(cover.sum() / 40.0**2)
    return np.array(areas, np.float32)


UNIT_AREAS = _unit_areas()


def _place_without_overlap(rng, radii, size):
    """Centres for objects of the given radii, centre distance >= 0.8 (r_i + r_j); an object
    that finds no free spot in 30 tries is left out (returns a shorter list)."""
    placed = []
    for r in radii:
        for _ in range(30):
            c = rng.uniform(0.3 * r, size - 0.3 * r, 2)
            if all(np.hypot(*(c - pc)) >= 0.8 * (r + pr) for pc, pr in placed):
                placed.append((c, r))
                break
    return placed


def sample_scenes(rng: np.random.Generator, n: int, size: int):
    """n multi-object scenes. Returns (images [N,S,S,3] uint8, objects: list of N dicts with
    'bbox' [K,4] (ymin, xmin, ymax, xmax in VOC's convention, `boxes.voc_to_normalised`),
    'label', 'is_difficult', 'is_truncated').

    The box is the tight box of the pixels the object covers by >= 1/2 (occlusion by later
    objects ignored, clipped to the image); truncated = the box touches the image border;
    difficult = less than 45 % of the object's area visible (border + occlusion) or
    the box's shorter side below 10 % of the image.
    """
    images = draw.backgrounds(rng, n, size)
    draw.add_clutter(rng, images, fragments=4, lines=2)
    layouts = []
    for _ in range(n):
        count = rng.integers(1, 5)
        placed = _place_without_overlap(rng, rng.uniform(0.085, 0.24, count) * size, size)
        layouts.append((rng.integers(0, NUM_SCENE_CLASSES, len(placed)), placed))
    covers = []
    for slot in range(4):
        active = np.array([slot < len(lab) for lab, _ in layouts])
        labels = np.array(
            [lab[slot] if a else 0 for (lab, _), a in zip(layouts, active, strict=True)]
        )
        centres = np.array(
            [pl[slot][0] if a else (0.0, 0.0) for (_, pl), a in zip(layouts, active, strict=True)]
        )
        radius = np.array(
            [pl[slot][1] if a else 1.0 for (_, pl), a in zip(layouts, active, strict=True)]
        )
        params = _object_params(rng, SCENE_CLASSES[labels], radius, centres[:, 0], centres[:, 1])
        covers.append(draw.draw_objects(images, active_N=active, **params))
    objects = [_scene_objects(i, layouts[i], covers, size) for i in range(n)]
    return draw.to_uint8(images), objects


def _scene_objects(i, layout, covers, size):
    labels, placed = layout
    k = len(labels)
    bbox, difficult, truncated = np.zeros((k, 4), np.float32), np.zeros(k, bool), np.zeros(k, bool)
    for j in range(k):
        cover = covers[j][i]
        visible = cover.copy()
        for later in range(j + 1, k):
            visible *= 1.0 - covers[later][i]
        (_, r), shape = placed[j], SCENE_CLASSES[labels[j]][0]
        rows, cols = (
            np.nonzero(cover.max(axis=1) >= 0.5)[0],
            np.nonzero(cover.max(axis=0) >= 0.5)[0],
        )
        # pixels rows[0]..rows[-1] (0-based) are VOC's rows[0] + 1 .. rows[-1] + 1 (1-based)
        bbox[j] = boxes.voc_to_normalised(
            [cols[0] + 1, rows[0] + 1, cols[-1] + 1, rows[-1] + 1], height=size, width=size
        )
        fraction = visible.sum() / (UNIT_AREAS[shape] * r * r)
        short_side = min(rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0])
        difficult[j] = fraction < 0.45 or short_side < 0.1 * size
        truncated[j] = bool(
            rows[0] == 0 or cols[0] == 0 or rows[-1] == size - 1 or cols[-1] == size - 1
        )
    return dict(bbox=bbox, label=labels, is_difficult=difficult, is_truncated=truncated)


def _layout_positions(rng, layout, count):
    """[count, 2] (y, x) positions in [0, 1] for one places image."""
    jitter = rng.uniform(-0.05, 0.05, (count, 2))
    if layout in ("row", "column"):
        along = (np.arange(count) + 0.5) / count
        across = np.full(count, rng.uniform(0.3, 0.7))
        pos = np.stack([across, along], 1) if layout == "row" else np.stack([along, across], 1)
    elif layout == "grid":
        pos = np.array([(0.28, 0.28), (0.28, 0.72), (0.72, 0.28), (0.72, 0.72)])[:count]
    elif layout == "top_bottom":
        half = count // 2
        ys = np.where(np.arange(count) < half, 0.25, 0.75)
        xs = np.concatenate(
            [(np.arange(half) + 0.5) / half, (np.arange(count - half) + 0.5) / (count - half)]
        )
        pos = np.stack([ys, xs], 1)
    else:  # ring
        angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(count) / count
        pos = 0.5 + 0.3 * np.stack([np.sin(angles), np.cos(angles)], 1)
    return pos + jitter


def sample_places(rng: np.random.Generator, labels_N: np.ndarray, size: int) -> np.ndarray:
    """[N, S, S, 3] uint8 scene-category images; 4 objects (kinds a and b of the category,
    two each; top/bottom puts a on top) in the category's layout, plus with probability 0.3
    one small distractor of a random kind anywhere."""
    n = labels_N.shape[0]
    images = draw.backgrounds(rng, n, size)
    draw.add_clutter(rng, images, fragments=3, lines=2)
    kinds, centres = np.zeros((n, 5), int), np.zeros((n, 5, 2))
    for i, label in enumerate(labels_N):
        a, b, layout = PLACES_CLASSES[label]
        order = (
            np.array([a, a, b, b])
            if LAYOUTS[layout] == "top_bottom"
            else rng.permutation([a, a, b, b])
        )
        kinds[i, :4], kinds[i, 4] = order, rng.integers(0, NUM_PLACE_KINDS)
        centres[i, :4] = _layout_positions(rng, LAYOUTS[layout], 4) * size
        centres[i, 4] = rng.uniform(0.1, 0.9, 2) * size
    for slot in range(5):
        active = np.ones(n, bool) if slot < 4 else rng.random(n) < 0.3
        shape_colour = PLACE_KINDS[kinds[:, slot]]
        combos = np.concatenate([shape_colour, rng.integers(0, 4, (n, 1))], axis=1)
        radius = (
            rng.uniform(0.07, 0.11, n) * size if slot < 4 else rng.uniform(0.05, 0.08, n) * size
        )
        params = _object_params(rng, combos, radius, centres[:, slot, 0], centres[:, slot, 1])
        draw.draw_objects(images, active_N=active, **params)
    return draw.to_uint8(images)


class ShardTask(NamedTuple):
    """One shard of one split: `chunk` is the labels (source, places) or the image count."""

    part: str
    seed: int
    split_id: int
    split: str
    shard: int
    chunk: np.ndarray | int
    image_size: int
    jpeg_quality: int
    config_name: str


def generate_shard(task: ShardTask) -> tuple[list[tuple[str, dict]], np.ndarray, np.ndarray]:
    """Draws one shard: ([(key, TFDS example with JPEG bytes)], float64 [S, S, 3] sum of the
    decoded JPEGs, for the split's mean, uint8 [n, S, S, 3] the decoded JPEGs themselves, as
    readers will see them). Runs in workers; the generator is seeded by (seed, part, split,
    shard) only."""
    rng = np.random.default_rng([task.seed, PARTS.index(task.part), task.split_id, task.shard])
    size = task.image_size
    if task.part == "scenes":
        images, objects = sample_scenes(rng, int(task.chunk), size)
    elif task.part == "source":
        images = sample_source(rng, task.chunk, size)
    else:
        images = sample_places(rng, task.chunk, size)
    out, decoded = [], np.zeros((len(images), size, size, 3), np.uint8)
    for i, image in enumerate(images):
        name = f"toyworld_{task.config_name}_{task.split}_{task.shard * SHARD_SIZE + i:06d}.jpg"
        jpeg = encode_jpeg(image, task.jpeg_quality)
        with Image.open(io.BytesIO(jpeg)) as seen:  # what readers will see
            decoded[i] = np.asarray(seen, dtype=np.uint8)
        if task.part == "scenes":
            objs = objects[i]
            example = {
                "image": jpeg,
                "image/filename": name,
                "objects": objs,
                "labels": sorted(set(objs["label"].tolist())),
                "labels_no_difficult": sorted(set(objs["label"][~objs["is_difficult"]].tolist())),
            }
        else:
            example = {"image": jpeg, "label": int(task.chunk[i]), "file_name": name}
        out.append((name, example))
    return out, decoded.sum(axis=0, dtype=np.float64), decoded
