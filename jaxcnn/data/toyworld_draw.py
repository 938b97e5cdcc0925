"""Vectorised numpy drawing primitives of toyworld (see `docs/toyworld.md`).

Everything here draws a batch of N images at once: per-image parameters are arrays of length N
and pixel grids are broadcast to [N, S, S]. Pixel (i, j) has its centre at (i + 0.5, j + 0.5) in
pixel units; images are float32 RGB in [0, 255] until `to_uint8`.

Primitives (shared by all three toyworld parts, so features learnt on one part transfer):

- SHAPES: 8 outlines, each a gauge function f(u, v) of the object's rotated, radius-normalised
  frame (f <= 1 inside), rendered with a one-pixel anti-aliased edge.
- COLOURS: 8 saturated colours, jittered per object.
- TEXTURES: 4 luminance patterns in the object's frame (solid, stripes, checker, dots).
- backgrounds: a muted colour, a linear gradient, smooth low-frequency noise and pixel noise.
- clutter: small translucent shape fragments and thin line segments in random colours.
"""

from __future__ import annotations

import itertools

import numpy as np

SHAPES = ("disc", "square", "triangle", "diamond", "cross", "ring", "star", "crescent")
COLOURS = {
    "red": (215, 40, 40),
    "green": (40, 170, 60),
    "blue": (45, 75, 215),
    "yellow": (230, 205, 40),
    "magenta": (195, 50, 195),
    "cyan": (40, 195, 205),
    "orange": (240, 125, 30),
    "white": (235, 235, 235),
}
COLOUR_NAMES = tuple(COLOURS)
COLOUR_RGB_Cx3 = np.array(list(COLOURS.values()), np.float32)
TEXTURES = ("solid", "stripes", "checker", "dots")

_TEXTURE_DARKEN = 0.55  # texture pixels are colour * (1 - 0.55)
REACH = 1.11  # shapes lie within 1.11 radii of their centre (the square's corner: 0.78 sqrt 2)


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns (y_1xSx1, x_1x1xS) pixel-centre coordinates for an S x S image."""
    centres_S = np.arange(size, dtype=np.float32) + 0.5
    return centres_S[None, :, None], centres_S[None, None, :]


def _local_frame(y_NxWx1, x_Nx1xW, cy_N, cx_N, radius_N, theta_N):
    """Object frame: (u, v) = R(-theta) (x - cx, y - cy) / radius, each [N, W, W]."""
    dy = y_NxWx1 - cy_N[:, None, None]
    dx = x_Nx1xW - cx_N[:, None, None]
    cos, sin = np.cos(theta_N)[:, None, None], np.sin(theta_N)[:, None, None]
    r = radius_N[:, None, None]
    return (dx * cos + dy * sin) / r, (-dx * sin + dy * cos) / r


def _soft(gauge, r):
    """Anti-aliased coverage of {gauge <= 1}: (1 - gauge) * radius is ~ the signed distance in
    pixels for gauges that are homogeneous of degree one, so the edge ramps over one pixel."""
    return np.clip((1.0 - gauge) * r + 0.5, 0.0, 1.0)


def _polygon_gauge(u, v, n_sides, phase):
    """Gauge of a regular polygon with inscribed radius cos(pi/n) (vertices at radius 1)."""
    angles = phase + 2 * np.pi * np.arange(n_sides) / n_sides
    proj = [u * np.cos(a) + v * np.sin(a) for a in angles]
    return np.max(np.stack(proj), axis=0) / np.cos(np.pi / n_sides)


def _shape_coverage(name, u, v, r):
    """Coverage in [0, 1] of one shape in its local frame; r is the radius [N, 1, 1]."""
    rho = np.sqrt(u * u + v * v)
    if name == "disc":
        return _soft(rho, r)
    if name == "square":
        return _soft(np.maximum(np.abs(u), np.abs(v)) / 0.78, r)
    if name == "triangle":
        return _soft(_polygon_gauge(u, v, 3, np.pi / 2) * 0.95, r)
    if name == "diamond":
        return _soft((np.abs(u) + np.abs(v)) / 1.05, r)
    if name == "cross":
        bar_a = np.maximum(np.abs(u) / 0.3, np.abs(v) / 0.95)
        bar_b = np.maximum(np.abs(u) / 0.95, np.abs(v) / 0.3)
        return _soft(np.minimum(bar_a, bar_b), r)
    if name == "ring":
        return np.minimum(_soft(rho, r), np.clip((rho - 0.55) * r + 0.5, 0.0, 1.0))
    if name == "star":
        phi = np.arctan2(v, u)
        reach = 0.45 + 0.55 * ((1.0 + np.cos(5 * phi + np.pi / 2)) / 2.0) ** 2
        return _soft(rho / reach, r)
    if name == "crescent":
        rho_cut = np.sqrt((u - 0.45) ** 2 + v * v)
        return np.minimum(_soft(rho, r), np.clip((rho_cut - 0.75) * r + 0.5, 0.0, 1.0))
    raise ValueError(f"unknown shape {name!r}; known: {SHAPES}")


def _texture(texture, u, v, r, period_N, phase_N):
    """Texture amount t in [0, 1] per pixel ([N, W, W]) for one texture id; 0 = plain colour.

    Periods are in pixels; u, v are radius-normalised so they are rescaled by r first.
    """
    pu, pv = u * r, v * r
    period = period_N[:, None, None]
    phase = phase_N[:, None, None]
    if texture == 0:
        return np.zeros_like(u)
    if texture == 1:
        return np.clip(2.0 * np.sin(2 * np.pi * pu / period + phase), -1.0, 1.0) * 0.5 + 0.5
    if texture == 2:
        wave = np.sin(np.pi * pu / (0.6 * period) + phase) * np.sin(np.pi * pv / (0.6 * period))
        return np.clip(3.0 * wave, -1.0, 1.0) * 0.5 + 0.5
    if texture == 3:
        du = np.mod(pu + phase, period) - period / 2
        dv = np.mod(pv, period) - period / 2
        return np.clip(0.26 * period - np.sqrt(du * du + dv * dv) + 0.5, 0.0, 1.0)
    raise ValueError(f"unknown texture id {texture}; known: {TEXTURES}")


def draw_objects(
    image_NxSxSx3: np.ndarray,
    *,
    active_N: np.ndarray,
    shape_N: np.ndarray,
    rgb_Nx3: np.ndarray,
    texture_N: np.ndarray,
    cy_N: np.ndarray,
    cx_N: np.ndarray,
    radius_N: np.ndarray,
    theta_N: np.ndarray,
    period_N: np.ndarray,
    phase_N: np.ndarray,
    alpha_N: np.ndarray | None = None,
) -> np.ndarray:
    """Composites one object per image (where active) over `image_NxSxSx3`, in place.

    Returns the object's coverage [N, S, S] in [0, 1] (0 for inactive images), which the
    caller uses for boxes and occlusion bookkeeping. Shape ids index SHAPES, texture ids
    TEXTURES. Pixel = (1 - a) * pixel + a * rgb * (1 - 0.55 * t), a = alpha * coverage.
    Each object is rendered in a square window around it (shapes reach at most REACH radii
    from the centre, plus the half-pixel edge ramp), clamped to lie inside the image.
    """
    n, size = image_NxSxSx3.shape[0], image_NxSxSx3.shape[1]
    coverage_NxSxS = np.zeros((n, size, size), np.float32)
    alpha_N = np.ones(n, np.float32) if alpha_N is None else alpha_N
    for shape_id, tex_id in itertools.product(range(len(SHAPES)), range(len(TEXTURES))):
        (idx,) = np.nonzero(active_N & (shape_N == shape_id) & (texture_N == tex_id))
        if idx.size == 0:
            continue
        width = min(size, int(np.ceil(2 * REACH * radius_N[idx].max() + 3)))
        y0 = np.clip(np.floor(cy_N[idx] - width / 2), 0, size - width).astype(int)
        x0 = np.clip(np.floor(cx_N[idx] - width / 2), 0, size - width).astype(int)
        rows_NxWx1 = (y0[:, None] + np.arange(width))[:, :, None]
        cols_Nx1xW = (x0[:, None] + np.arange(width))[:, None, :]
        u, v = _local_frame(
            rows_NxWx1 + 0.5, cols_Nx1xW + 0.5, cy_N[idx], cx_N[idx], radius_N[idx], theta_N[idx]
        )
        r = radius_N[idx][:, None, None]
        cover_NxWxW = _shape_coverage(SHAPES[shape_id], u, v, r).astype(np.float32)
        tex = _texture(tex_id, u, v, r, period_N[idx], phase_N[idx])
        colour = rgb_Nx3[idx][:, None, None, :] * (1.0 - _TEXTURE_DARKEN * tex[..., None])
        a = alpha_N[idx][:, None, None, None] * cover_NxWxW[..., None]
        # One window at a time, as slices: indexing all windows at once with index arrays was
        # a sixth of the drawing time; the values are the same.
        for k, i in enumerate(idx):
            at = (i, slice(y0[k], y0[k] + width), slice(x0[k], x0[k] + width))
            image_NxSxSx3[at] = (1.0 - a[k]) * image_NxSxSx3[at] + a[k] * colour[k]
            coverage_NxSxS[at] = cover_NxWxW[k]
    return coverage_NxSxS


def _upsample_matrix(low: int, size: int) -> np.ndarray:
    """[size, low] bilinear interpolation weights from a low x low grid to size x size."""
    pos = (np.arange(size) + 0.5) * (low - 1) / size
    lo = np.floor(pos).astype(int).clip(0, low - 2)
    frac = pos - lo
    mat = np.zeros((size, low), np.float32)
    mat[np.arange(size), lo] = 1.0 - frac
    mat[np.arange(size), lo + 1] = frac
    return mat


def backgrounds(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """[N, S, S, 3] float32 backgrounds: a muted colour, a linear gradient of +-40 across the
    image, smooth noise (std 14 on a 7x7 grid, bilinearly upsampled) and uniform pixel noise
    in [-7.5, 7.5]."""
    base_Nx3 = rng.uniform(50, 200, (n, 3)).astype(np.float32)
    base_Nx3 = 0.5 * base_Nx3 + 0.5 * base_Nx3.mean(axis=1, keepdims=True)  # desaturate
    y, x = pixel_grid(size)
    angle = rng.uniform(0, 2 * np.pi, n).astype(np.float32)[:, None, None]
    ramp = ((x - size / 2) * np.cos(angle) + (y - size / 2) * np.sin(angle)) / size
    amplitude = rng.uniform(-40, 40, n).astype(np.float32)[:, None, None]
    up_Sx7 = _upsample_matrix(7, size)
    smooth_Nx7x7x3 = rng.normal(0, 14, (n, 7, 7, 3)).astype(np.float32)
    half_Nx7x3xS = np.tensordot(smooth_Nx7x7x3, up_Sx7, axes=([2], [1]))
    image = np.tensordot(up_Sx7, half_Nx7x3xS, axes=([1], [1])).transpose(1, 0, 3, 2)
    image += (base_Nx3[:, None, None, :] - 7.5) + (amplitude * ramp)[..., None]
    noise = np.frombuffer(rng.bytes(image.size), np.uint8).reshape(image.shape) & 15
    image += noise  # uint8 noise in [0, 15]; the -7.5 above centres it
    return np.ascontiguousarray(image)


def _segment_coverage(size, y0, x0, y1, x1, width):
    """Anti-aliased coverage [N, S, S] of line segments of the given width (pixels)."""
    y, x = pixel_grid(size)
    dy, dx = (y1 - y0)[:, None, None], (x1 - x0)[:, None, None]
    py, px = y - y0[:, None, None], x - x0[:, None, None]
    length2 = np.maximum(dy * dy + dx * dx, 1e-6)  # guards zero-length segments
    t = np.clip((py * dy + px * dx) / length2, 0.0, 1.0)
    dist = np.sqrt((py - t * dy) ** 2 + (px - t * dx) ** 2)
    return np.clip(width[:, None, None] / 2 - dist + 0.5, 0.0, 1.0)


def add_clutter(
    rng: np.random.Generator, image_NxSxSx3: np.ndarray, *, fragments: int, lines: int
) -> None:
    """Adds `fragments` small translucent solid shapes and `lines` thin segments per image
    (each present with probability 0.75), in place. Fragments are small (radius 2-5 px) so
    they read as clutter, not as objects."""
    n, size = image_NxSxSx3.shape[:2]
    for _ in range(fragments):
        draw_objects(
            image_NxSxSx3,
            active_N=rng.random(n) < 0.75,
            shape_N=rng.integers(0, len(SHAPES), n),
            rgb_Nx3=rng.uniform(0, 255, (n, 3)).astype(np.float32),
            texture_N=np.zeros(n, int),
            cy_N=rng.uniform(0, size, n).astype(np.float32),
            cx_N=rng.uniform(0, size, n).astype(np.float32),
            radius_N=rng.uniform(2.0, 5.0, n).astype(np.float32),
            theta_N=rng.uniform(0, 2 * np.pi, n).astype(np.float32),
            period_N=np.full(n, 5.0, np.float32),
            phase_N=np.zeros(n, np.float32),
            alpha_N=rng.uniform(0.4, 0.8, n).astype(np.float32),
        )
    for _ in range(lines):
        ends = rng.uniform(0, size, (4, n)).astype(np.float32)
        cover = _segment_coverage(size, *ends, rng.uniform(0.8, 1.8, n).astype(np.float32))
        cover *= (rng.random(n) < 0.75)[:, None, None]
        rgb_Nx3 = rng.uniform(0, 255, (n, 3)).astype(np.float32)
        at = np.nonzero(cover)  # a line touches a few % of the pixels: update only those
        a = 0.7 * cover[at][:, None]
        image_NxSxSx3[at] += a * (rgb_Nx3[at[0]] - image_NxSxSx3[at])


def jittered_colours(rng: np.random.Generator, colour_N: np.ndarray) -> np.ndarray:
    """[N, 3] colours: the named colour scaled by a brightness in [0.8, 1.15] plus +-18 jitter."""
    n = colour_N.shape[0]
    rgb = COLOUR_RGB_Cx3[colour_N] * rng.uniform(0.8, 1.15, (n, 1)).astype(np.float32)
    return np.clip(rgb + rng.uniform(-18, 18, (n, 3)).astype(np.float32), 0, 255)


def to_uint8(image_NxSxSx3: np.ndarray) -> np.ndarray:
    """Rounds and clips float images to uint8."""
    return np.clip(np.rint(image_NxSxSx3), 0, 255).astype(np.uint8)
