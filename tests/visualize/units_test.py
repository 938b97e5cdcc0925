"""Dataset passes (top-k with projections, evolution) on a tiny network, and the figures."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.visualize import fields, plots, projection, topk, units
from tests.visualize.conftest import blocky_images, forward


def _image_set(images, batch_size=3):
    n = len(images)

    def batches():  # index order, the last batch padded with a garbage row
        for start in range(0, n, batch_size):
            idx = np.arange(start, start + batch_size)
            real = idx < n
            garbage = np.where(real, 0.0, 9.0)[:, None, None, None]
            yield {
                "image": images[np.where(real, idx, 0)] + garbage,
                "mask": real,
                "index": np.where(real, idx, -1),
            }

    return units.ImageSet(
        batches=batches,
        inputs=lambda idx: images[np.asarray(idx)],
        display_mean=np.full(images.shape[1:], 127.5, np.float32),
        label=lambda i: int(i) % 3,
        class_names=("a", "b", "c"),
    )


@pytest.fixture(scope="module")
def data(tiny):
    module, params, _ = tiny
    return module, params, blocky_images(8, 19, 7) * 2


def test_top_per_layer_equals_one_shot(data):
    """The streamed top-k equals the one-shot top-k of the same activations, and its values
    those of one forward pass over all images up to float rounding (XLA:CPU's results depend
    on the batch size on some CPUs: 4e-7 relative, seen on an AMD EPYC)."""
    module, params, images = data
    image_set = _image_set(images)
    tops = units.top_per_layer(module, params, image_set, layers=("conv2", "fc6"), k=4)
    _, taps = forward(module, params, jnp.asarray(images))
    for layer in ("conv2", "fc6"):
        streamed = np.concatenate(
            [
                np.asarray(forward(module, params, jnp.asarray(b["image"]))[1][layer])[b["mask"]]
                for b in image_set.batches()
            ]
        )
        want = topk.top_activations(streamed, k=4)
        for g, w in zip(tops[layer], want, strict=True):
            np.testing.assert_array_equal(g, w)
        one_shot = topk.top_activations(taps[layer], k=4)
        np.testing.assert_allclose(tops[layer].values, one_shot.values, rtol=1e-5, atol=1e-6)


def test_unit_patches_are_projections_and_crops_at_the_top_positions(data):
    module, params, images = data
    imgs = _image_set(images)
    top = units.top_per_layer(module, params, imgs, layers=("conv2",), k=3)["conv2"]
    res = units.unit_patches(module, params, imgs, top, layer="conv2", channels=[2, 0])
    field = fields.receptive_field(module.config, "conv2")
    assert res["patches"].shape == (2, 3, field.size, field.size, 3)
    for u, c in enumerate([2, 0]):
        idx, yx = np.asarray(top.image_index[c]), np.asarray(top.yx[c])
        proj = projection.project_positions(module, params, images[idx], layer="conv2",
                                            channel_N=np.full(3, c), yx_Nx2=yx)  # fmt: skip
        np.testing.assert_allclose(res["projections"][u],
                                   fields.crop_fields(np.asarray(proj), field, yx), rtol=1e-5,
                                   atol=1e-6)  # fmt: skip
        shown = fields.crop_fields(imgs.display(images[idx]), field, yx, fill=0.5)
        live = np.asarray(top.values[c]) > 0
        np.testing.assert_allclose(res["patches"][u][live], shown[live])
        assert (res["patches"][u][~live] == 0.5).all()


def test_evolution_and_figures_write_pngs(data, tmp_path):
    module, params, images = data
    imgs = _image_set(images)
    snaps = {10: params, 20: {k: {n: v * 1.1 for n, v in d.items()} for k, d in params.items()}}
    evo = units.feature_evolution(module, snaps, imgs, layer="conv5", channels=[0, 1])
    assert sorted(evo) == [10, 20] and evo[20]["projections"].shape[:2] == (2, 1)
    top = units.top_per_layer(module, params, imgs, layers=("conv5",), k=4)["conv5"]
    res = units.unit_patches(module, params, imgs, top, layer="conv5", channels=[0, 1, 3])
    rng = np.random.default_rng(0)
    maps = {"prob": rng.uniform(size=(4, 4)), "top_class": rng.integers(0, 3, (4, 4)),
            "activity": rng.normal(size=(4, 4))}  # fmt: skip
    row = {"image": imgs.display(images[:1])[0], "maps": maps, "size": 6, "stride": 4,
           "label_name": "b", "class_names": ("a", "b", "c"), "feature_map": 0,
           "projection": rng.normal(size=(19, 19, 3))}  # fmt: skip
    for path in (
        plots.plot_top_patches(res, tmp_path / "top.png", title="t"),
        plots.plot_evolution(evo, tmp_path / "evo.png", layer="conv5"),
        plots.plot_occlusion([row, row], tmp_path / "occ.png", title="o"),
    ):
        data = open(path, "rb").read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_display_helpers_by_hand():
    p = np.zeros((2, 2, 3))
    p[0, 0] = [1.0, -1.0, 0.0]
    np.testing.assert_allclose(plots.show_projection(p)[0, 0], [1.0, 0.0, 0.5])  # 99th pct = 1
    np.testing.assert_allclose(plots.show_projection(np.zeros((2, 2, 3))), 0.5)
    np.testing.assert_allclose(plots.show_footprint(np.zeros((4, 4, 3)), np.ones((4, 4, 3))), 0.5)
    tiles = plots.tile(np.zeros((3, 2, 2, 3)), ncols=2, pad=1)
    assert tiles.shape == (7, 7, 3) and tiles[0].min() == 1.0 and tiles[1, 1].max() == 0.0
    with pytest.raises(ValueError, match="style"):
        plots.unit_block(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 3)), styles=("heat",))


def test_random_units_prefer_units_live_in_all_k():
    values = np.array([[3.0, 2.0], [1.0, 0.0], [0.0, 0.0], [5.0, 1.0]])
    top = topk.TopActivations(values, np.zeros((4, 2), int), np.zeros((4, 2, 2), int))
    assert list(units.random_units(top, 2)) == [0, 3]
    assert sorted(units.random_units(top, 3)) == [0, 1, 3]  # too few: any live unit
