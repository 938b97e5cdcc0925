"""toyworld_draw: shape coverage against the geometry, backgrounds, errors."""

import numpy as np
import pytest

from jaxcnn.data import toyworld_draw


def test_disc_coverage_matches_geometry():
    # A disc of radius 6 at (10, 10): pixels whose centre is > 0.5 px inside are fully
    # covered, > 0.5 px outside are empty (the anti-aliased ramp is one pixel wide).
    image = np.zeros((1, 20, 20, 3), np.float32)
    cover = toyworld_draw.draw_objects(
        image, active_N=np.ones(1, bool), shape_N=np.array([0]), rgb_Nx3=np.full((1, 3), 100.0),
        texture_N=np.zeros(1, int), cy_N=np.array([10.0]), cx_N=np.array([10.0]),
        radius_N=np.array([6.0]), theta_N=np.zeros(1), period_N=np.ones(1), phase_N=np.zeros(1),
    )[0]  # fmt: skip
    centres = np.arange(20) + 0.5
    dist = np.hypot(centres[:, None] - 10, centres[None, :] - 10)
    assert np.all(cover[dist < 5.5] == 1.0) and np.all(cover[dist > 6.5] == 0.0)
    np.testing.assert_allclose(image[0, ..., 0], 100.0 * cover, rtol=1e-6)
    assert abs(cover.sum() - np.pi * 36) < 1.0  # area within a pixel of pi r^2


def test_background_ranges():
    images = toyworld_draw.backgrounds(np.random.default_rng(0), 4, 16)
    assert images.shape == (4, 16, 16, 3) and images.dtype == np.float32
    assert images.min() > -80 and images.max() < 330  # base 50..200 + ramp + noise, pre-clip
    assert toyworld_draw.to_uint8(images).dtype == np.uint8


def test_every_shape_and_texture_draws_inside_its_radius():
    for shape in range(len(toyworld_draw.SHAPES)):
        for texture in range(len(toyworld_draw.TEXTURES)):
            image = np.zeros((1, 30, 30, 3), np.float32)
            cover = toyworld_draw.draw_objects(
                image, active_N=np.ones(1, bool), shape_N=np.array([shape]),
                rgb_Nx3=np.full((1, 3), 200.0), texture_N=np.array([texture]),
                cy_N=np.array([15.0]), cx_N=np.array([15.0]), radius_N=np.array([8.0]),
                theta_N=np.array([0.3]), period_N=np.array([5.0]), phase_N=np.zeros(1),
            )[0]  # fmt: skip
            centres = np.arange(30) + 0.5
            dist = np.hypot(centres[:, None] - 15, centres[None, :] - 15)
            # nothing beyond REACH radii + the half-pixel ramp; the window clips nothing
            assert cover[dist > toyworld_draw.REACH * 8 + 0.5].max() == 0.0
            assert cover.sum() > 0.3 * np.pi * 64  # every shape fills a good part of its disc
            # textures only darken: pixel <= colour * coverage, and >= 45 % of it
            assert np.all(image[0, ..., 0] <= 200.0 * cover + 1e-4)
            assert np.all(image[0, ..., 0] >= 0.45 * 200.0 * cover - 1e-4)


def test_unknown_shape_and_texture_raise():
    with pytest.raises(ValueError, match="unknown shape"):
        toyworld_draw._shape_coverage("blob", np.zeros(1), np.zeros(1), np.ones(1))
    with pytest.raises(ValueError, match="unknown texture"):
        toyworld_draw._texture(7, np.zeros(1), np.zeros(1), 1.0, np.ones(1), np.zeros(1))


def test_window_does_not_clip_large_shapes():
    # A big square rotated 45 degrees (corners at 1.1 radii): its coverage equals the analytic
    # area 2 * (0.78 r)^2 * 2 within the anti-aliasing error.
    image = np.zeros((1, 72, 72, 3), np.float32)
    cover = toyworld_draw.draw_objects(
        image, active_N=np.ones(1, bool), shape_N=np.array([1]), rgb_Nx3=np.ones((1, 3)),
        texture_N=np.zeros(1, int), cy_N=np.array([36.0]), cx_N=np.array([36.0]),
        radius_N=np.array([25.0]), theta_N=np.array([np.pi / 4]), period_N=np.ones(1),
        phase_N=np.zeros(1),
    )[0]  # fmt: skip
    side = 2 * 0.78 * 25
    assert abs(cover.sum() - side**2) < 0.02 * side**2
    # the corners, 27.6 px from the centre, are drawn (a window of 2 r + 3 would cut them)
    centres = np.arange(72) + 0.5
    dist = np.hypot(centres[:, None] - 36, centres[None, :] - 36)
    assert cover[dist > 26.6].sum() > 0.5
