"""Top-k scan over arrays, folders and tf.data; top channels; Figure-2 grids."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deconvnet_tf.render import save_png
from deconvnet_tf.visualize import (
    ImageSource,
    Projector,
    VisualizationError,
    projection_to_image,
    top_k,
    top_k_grid,
    visualize,
)
from tests.conftest import BACKEND


def _tiny_cnn(seed: int = 0):
    """Conv-ReLU-pool-conv-ReLU on RGB 0..255 images (a user's own CNN)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="scale")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(5, 3, padding="same", name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    return keras.Model(inputs, x)


@pytest.fixture
def images(rng):
    return rng.integers(0, 256, (7, 20, 20, 3)).astype("uint8")


@pytest.mark.jax
def test_top_k_picks_each_images_strongest_unit_and_crops_its_field(images):
    model = _tiny_cnn()
    rows = top_k(model, "relu2", images, channel=3, k=4, batch_size=4)
    assert len(rows) == 1 and rows[0].channel == 3 and rows[0].num_images == 7
    items = rows[0].items
    projector = Projector(model, "relu2")
    act = projector.activations(images)[..., 3]
    best = act.reshape(7, -1).max(axis=1)
    order = np.argsort(-best, kind="stable")[:4]
    assert [it.image_index for it in items] == list(order)       # one per image, strongest first
    full = projector.project(images[order], 3, select=[it.position for it in items])
    for it, proj in zip(items, full):
        assert it.value == pytest.approx(best[it.image_index], rel=1e-5)
        assert act[(it.image_index, *it.position)] == pytest.approx(it.value, rel=1e-5)
        assert it.source == f"#{it.image_index}"
        np.testing.assert_array_equal(it.patch, images[it.image_index][it.box.slices()])
        np.testing.assert_allclose(it.projection, proj[it.box.slices()], rtol=1e-5, atol=1e-6)
        assert np.abs(proj).sum() == pytest.approx(np.abs(it.projection).sum(), rel=1e-5)


def test_top_channels_are_those_with_the_strongest_mean(images):
    model = _tiny_cnn()
    rows = top_k(model, "relu2", images, top_channels=2, k=3, mode="guided")
    act = Projector(model, "relu2").activations(images)
    means = act.mean(axis=(0, 1, 2))
    assert [r.channel for r in rows] == list(np.argsort(-means)[:2])
    for r in rows:
        assert r.mean_activation == pytest.approx(means[r.channel], rel=1e-4)
        assert len(r.items) == 3
        values = [it.value for it in r.items]
        assert values == sorted(values, reverse=True)


def test_few_images_give_several_distinct_positions(images):
    model = _tiny_cnn()
    rows = top_k(model, "relu2", images[:1], channel=0, k=5)
    items = rows[0].items
    assert len(items) == 5 and {it.image_index for it in items} == {0}
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            assert max(abs(p - q) for p, q in zip(a.position, b.position)) >= 2


def test_folder_source_with_mixed_sizes_and_a_fixed_size_model(tmp_path, rng):
    for i, (h, w) in enumerate([(20, 20), (24, 16), (20, 20)]):
        save_png(tmp_path / f"img{i}.png", rng.integers(0, 256, (h, w, 3)).astype("uint8"))
    (tmp_path / "notes.txt").write_text("not an image")
    model = _tiny_cnn()
    rows = top_k(model, "conv1", tmp_path, channel=1, k=3, batch_size=4)
    assert sorted(it.source for it in rows[0].items) == ["img0.png", "img1.png", "img2.png"]
    # A model with a fixed input size gets resized images.
    inputs = keras.Input((16, 16, 3))
    fixed = keras.Model(inputs, keras.layers.Conv2D(2, 3, activation="relu", name="c")(inputs))
    rows = top_k(fixed, "c", tmp_path, channel=0, k=3)
    assert all(it.patch.shape[2] == 3 and it.box.bottom <= 16 for it in rows[0].items)
    (tmp_path / "empty").mkdir()
    with pytest.raises(VisualizationError, match="no images"):
        ImageSource(tmp_path / "empty")
    with pytest.raises(VisualizationError, match="no such file or folder"):
        ImageSource(tmp_path / "missing")


def test_tf_data_source(images):
    if BACKEND != "tensorflow":
        pytest.skip("tf.data input is a TensorFlow-backend feature")
    import tensorflow as tf

    model = _tiny_cnn()
    labels = np.zeros(images.shape[:3], "uint8")
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2)
    from_ds = top_k(model, "relu2", ds, channel=2, k=3)
    from_array = top_k(model, "relu2", images, channel=2, k=3)
    assert [it.image_index for it in from_ds[0].items] == [it.image_index for it in from_array[0].items]
    for a, b in zip(from_ds[0].items, from_array[0].items):
        np.testing.assert_allclose(a.projection, b.projection, rtol=1e-5, atol=1e-6)


def test_argument_errors(images):
    model = _tiny_cnn()
    with pytest.raises(VisualizationError, match="exactly one of channel or top_channels"):
        top_k(model, "relu2", images)
    with pytest.raises(VisualizationError, match="channel 5 is out of range"):
        top_k(model, "relu2", images, channel=5)
    with pytest.raises(VisualizationError, match="top_channels must be in 1..5"):
        top_k(model, "relu2", images, top_channels=6)
    with pytest.raises(VisualizationError, match="positive integer"):
        top_k(model, "relu2", images, channel=0, k=0)


def test_projection_to_image_and_grid_layout():
    p = np.array([[[-2.0, 0.0, 1.0]]])
    np.testing.assert_array_equal(projection_to_image(p), [[[0, 128, 191]]])
    np.testing.assert_array_equal(projection_to_image(p, contrast="per_sign"), [[[0, 128, 255]]])
    np.testing.assert_array_equal(projection_to_image(np.zeros((2, 2, 3))), np.full((2, 2, 3), 128))

    class Item:
        def __init__(self, h, w):
            self.projection = np.ones((h, w, 3), np.float32)
            self.patch = np.zeros((h, w, 3), np.uint8)

    class Row:
        def __init__(self, channel, n):
            self.layer, self.channel, self.mean_activation = "conv", channel, 0.5
            self.items = [Item(10, 8)] * n

    one = top_k_grid([Row(0, 9)], tile=20, labels=False, gap=2)
    # 3x3 pairs: width 3 * (2 * 20 + 2) + 2 * 6 + 2 * 4 border; height 3 * (20 + 6) + 8
    assert one.shape == (3 * 26 + 8, 3 * 42 + 12 + 8, 3)
    two = top_k_grid([Row(0, 4), Row(1, 4)], tile=20, labels=True, gap=2)
    assert two.shape == (2 * (14 + 26) + 8, 4 * 42 + 3 * 6 + 8, 3)
    with pytest.raises(ValueError, match="nothing to draw"):
        top_k_grid([])


def test_each_projection_is_contrast_normalised_to_the_full_range_with_zero_at_grey(rng):
    for scale in (1e-6, 1.0, 3e4):  # each projection on its own, whatever its magnitude
        p = rng.normal(0, scale, (7, 5, 3)).astype(np.float32)
        p[0, 0] = 0.0
        p[1, 1] = [scale * 1e-9, -scale * 1e-9, 0.0]
        for contrast in ("symmetric", "per_sign"):
            img = projection_to_image(p, contrast=contrast)
            assert img.dtype == np.uint8 and img.shape == p.shape
            np.testing.assert_array_equal(img[0, 0], 128)  # zero is mid-grey
            assert img[1, 1, 0] >= 128 and img[1, 1, 1] <= 128
            assert np.all(p[img > 128] > 0) and np.all(p[img < 128] < 0)  # signs kept
        sym = projection_to_image(p)
        big = np.unravel_index(np.abs(p).argmax(), p.shape)
        assert sym[big] == (255 if p[big] > 0 else 0)  # the largest magnitude reaches an end
        order = np.argsort(p, axis=None)
        assert np.all(np.diff(sym.ravel()[order].astype(int)) >= 0)  # monotone
        both = projection_to_image(p, contrast="per_sign")
        assert both.min() == 0 and both.max() == 255
    np.testing.assert_array_equal(projection_to_image(np.full((2, 2), np.nan)), 128)
    with pytest.raises(ValueError, match="contrast must be one of"):
        projection_to_image(p, contrast="minmax")


def test_visualize_writes_the_png(tmp_path, images):
    import cv2

    result = visualize(_tiny_cnn(), "relu2", images, tmp_path / "out" / "grid.png", channel=1, k=4)
    written = cv2.imread(str(result.path))
    assert written is not None and written.shape == result.grid.shape
    assert result.num_images == 7 and len(result.channels[0].items) == 4


@pytest.mark.jax
def test_the_models_colour_normalisation_comes_first(rng):
    """A model with a ``color_target`` (a Segmenter's) is scanned on the normalised images,
    as it predicts; ``color_target=None`` scans the images as they are; another target
    replaces the model's own."""
    from deconvnet_tf.io import normalize_colors

    dim = (rng.integers(0, 90, (5, 20, 20, 3))).astype("uint8")  # dusk-like: dark, low contrast
    target = {"mean": [120.0, 110.0, 100.0], "std": [60.0, 55.0, 50.0]}
    model = _tiny_cnn()
    model.color_target = target
    normalised = np.stack([normalize_colors(image, target) for image in dim])
    got = top_k(model, "relu2", dim, channel=1, k=3)[0].items
    want = top_k(model, "relu2", normalised, channel=1, k=3, color_target=None)[0].items
    plain = top_k(model, "relu2", dim, channel=1, k=3, color_target=None)[0].items
    assert [(it.image_index, it.position) for it in got] == [
        (it.image_index, it.position) for it in want]
    for a, b in zip(got, want):
        assert a.value == pytest.approx(b.value, rel=1e-5)
        np.testing.assert_array_equal(a.patch, b.patch)  # the patches show what the net saw
        np.testing.assert_array_equal(a.patch, normalised[a.image_index][a.box.slices()])
    assert [it.value for it in plain] != pytest.approx([it.value for it in got], rel=1e-3)
    other = {"mean": [60.0, 60.0, 60.0], "std": [20.0, 20.0, 20.0]}
    again = top_k(model, "relu2", dim, channel=1, k=3, color_target=other)[0].items
    np.testing.assert_array_equal(again[0].patch, normalize_colors(
        dim[again[0].image_index], other)[again[0].box.slices()])
    with pytest.raises(VisualizationError, match="color_target"):
        top_k(model, "relu2", dim, channel=1, k=3, color_target={"mean": [1, 2, 3]})
