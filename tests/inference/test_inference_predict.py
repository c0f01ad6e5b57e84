"""Whole-image prediction: Keras models at any size (padding, fixed input sizes), probabilities,
batching, model loading and file listing."""

from __future__ import annotations

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.inference.predict import (
    Predictor,
    as_predictor,
    list_images,
    load_predictor,
    predict_image,
    predict_images,
    read_image,
    softmax,
)
from deconvnet_tf.render import save_png


@pytest.fixture(scope="module")
def tiny():
    return deconvnet_tf.build_model("deconvnet_tiny", num_classes=4)


def test_predict_image_is_the_softmax_of_the_model_at_native_size(tiny, rng):
    image = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    probs = predict_image(tiny, image)
    logits = np.asarray(tiny.predict_on_batch(image[None].astype(np.float32)))[0]
    assert probs.shape == (37, 45, 4) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, softmax(logits), atol=1e-6)


def test_small_images_are_padded_with_the_mean_colour_and_cropped_back(tiny, rng):
    assert tiny.min_input_size == 17
    image = rng.integers(0, 256, (9, 30, 3), dtype=np.uint8)
    probs = predict_image(tiny, image)
    padded = np.broadcast_to(np.array(tiny.mean[::-1], np.float32), (17, 30, 3)).copy()
    padded[:9] = image
    logits = np.asarray(tiny.predict_on_batch(padded[None]))[0, :9]
    np.testing.assert_allclose(probs, softmax(logits), atol=1e-6)


def test_fixed_size_models_get_resized_inputs_and_scores_back():
    seen = []

    def fn(batch):
        seen.append(batch.shape)
        out = np.zeros(batch.shape[:3] + (2,), np.float32)
        out[:, :, :, 1] = np.linspace(0, 1, batch.shape[2])[None, None, :]  # left-right ramp
        out[:, :, :, 0] = 1 - out[:, :, :, 1]
        return out

    predictor = Predictor(fn, outputs="probabilities", input_size=(16, 16))
    probs = predict_image(predictor, np.zeros((30, 64, 3), np.uint8))
    assert seen == [(1, 16, 16, 3)] and probs.shape == (30, 64, 2)
    assert probs[0, 0, 1] < 0.1 and probs[0, -1, 1] > 0.9
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-6)


def test_max_pixels_scales_large_images_down_and_the_scores_back(rng):
    seen = []

    def fn(batch):
        seen.append(batch.shape)
        out = np.zeros(batch.shape[:3] + (2,), np.float32)
        out[..., 1] = batch[..., 0] / 255.0
        return out

    predictor = Predictor(fn, outputs="probabilities", min_input_size=4, max_pixels=600)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    probs = predict_image(predictor, image)
    assert seen == [(1, 20, 30, 3)] and probs.shape == (40, 60, 2)
    import cv2

    small = cv2.resize(image.astype(np.float32), (30, 20), interpolation=cv2.INTER_AREA)
    ramp = np.stack([np.zeros((20, 30)), small[..., 0] / 255.0], -1).astype(np.float32)
    expected = cv2.resize(ramp, (60, 40)) / np.maximum(cv2.resize(ramp, (60, 40)).sum(-1,
                                                                                 keepdims=True),
                                                       1e-12)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    # Batches stay within the budget: 3 images of 20x20 = 400 pixels each, budget 600.
    seen.clear()
    predict_images(predictor, [image[:20, :20]] * 3, batch_size=8)
    assert seen == [(1, 20, 20, 3)] * 3
    with pytest.raises(ValueError, match="max_pixels must be >= 1"):
        Predictor(fn, max_pixels=0)


def test_softmax_models_are_not_softmaxed_twice(rng):
    model = deconvnet_tf.build_model("fcn8s_tiny", num_classes=3, output_activation="softmax")
    image = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    assert as_predictor(model).outputs == "probabilities"
    np.testing.assert_allclose(predict_image(model, image),
                               np.asarray(model.predict_on_batch(image[None].astype("float32")))[0],
                               atol=1e-6)


def test_predict_images_batches_equal_sizes_and_keeps_the_order(rng):
    calls = []

    def fn(batch):
        calls.append(batch.shape)
        return np.repeat(batch.mean(-1, keepdims=True), 2, -1) * [1.0, 0.0]

    predictor = Predictor(fn, outputs="logits")
    images = [rng.integers(0, 256, shape, dtype=np.uint8)
              for shape in [(8, 8, 3), (10, 6, 3), (8, 8, 3), (8, 8, 3)]]
    out = predict_images(predictor, images, batch_size=2)
    assert [o.shape[:2] for o in out] == [(8, 8), (10, 6), (8, 8), (8, 8)]
    assert sorted(calls) == sorted([(2, 8, 8, 3), (1, 8, 8, 3), (1, 10, 6, 3)])
    for image, probs in zip(images, out):
        logits = np.stack([image.mean(-1), np.zeros(image.shape[:2])], -1)
        np.testing.assert_allclose(probs, softmax(logits), atol=1e-5)


def test_bad_inputs_give_clear_errors(tmp_path, tiny):
    with pytest.raises(ValueError, match=r"RGB image \(H, W, 3\)"):
        predict_image(tiny, np.zeros((10, 10)))
    with pytest.raises(ValueError, match="do not match the input"):
        predict_image(Predictor(lambda b: np.zeros((1, 3, 3, 2))), np.zeros((5, 5, 3)))
    with pytest.raises(ValueError, match="outputs must be"):
        Predictor(lambda b: b, outputs="scores")
    with pytest.raises(TypeError, match="Predictor"):
        as_predictor(42)
    with pytest.raises(FileNotFoundError, match="Model not found"):
        load_predictor(tmp_path / "missing.keras")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="not a SavedModel"):
        load_predictor(tmp_path / "folder")
    (tmp_path / "bad.keras").write_text("nope")
    with pytest.raises(ValueError, match="not a .keras model"):
        load_predictor(tmp_path / "bad.keras")
    import zipfile

    with zipfile.ZipFile(tmp_path / "zip.keras", "w") as archive:  # a zip, but not a model
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="Cannot load the model '.*zip.keras'"):
        load_predictor(tmp_path / "zip.keras")
    (tmp_path / "m.tflite").write_bytes(b"TFL3")
    with pytest.raises(ValueError, match="LiteRT model; run it with deconvnet-lite-predict"):
        load_predictor(tmp_path / "m.tflite")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "saved_model.pb").write_bytes(b"\x00garbage")
    with pytest.raises((ValueError, ImportError), match="junk"):
        load_predictor(tmp_path / "junk")


def test_load_predictor_reads_keras_files(tmp_path, tiny, rng):
    path = tmp_path / "m.keras"
    tiny.save(path)
    image = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    np.testing.assert_allclose(predict_image(load_predictor(path), image),
                               predict_image(tiny, image), atol=1e-6)


def test_list_and_read_images(tmp_path):
    for name in ("b.png", "a.jpg"):
        save_png(tmp_path / "imgs" / name, np.full((4, 5, 3), 200, np.uint8))
    (tmp_path / "imgs" / "notes.txt").write_text("x")
    paths = list_images(tmp_path / "imgs")
    assert [p.name for p in paths] == ["a.jpg", "b.png"]
    mixed = list_images([paths[1], tmp_path / "imgs"])
    assert [p.name for p in mixed] == ["b.png", "a.jpg", "b.png"]
    assert read_image(paths[1]).shape == (4, 5, 3)
    with pytest.raises(FileNotFoundError, match="Input not found: .*nothing' does not exist"):
        list_images(tmp_path / "nothing")
    with pytest.raises(ValueError, match="not an image file"):
        list_images(tmp_path / "imgs" / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images"):
        list_images(tmp_path / "empty")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="Cannot read image"):
        read_image(tmp_path / "broken.png")


def test_load_predictor_reads_saved_model_exports(tmp_path, tiny, rng):
    from tests.conftest import BACKEND

    if BACKEND != "tensorflow":
        pytest.skip("SavedModel export needs the TensorFlow backend")
    from deconvnet_tf.export import saved_model  # part of the package: a broken one fails here
    saved_model.export_saved_model(tiny, tmp_path / "sm")
    predictor = load_predictor(tmp_path / "sm")
    assert predictor.outputs == "probabilities" and predictor.input_dtype == "uint8"
    assert predictor.min_input_size == tiny.min_input_size
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_allclose(predict_image(predictor, image), predict_image(tiny, image),
                               atol=1e-5)
    small = image[:9]  # padded up to 17 rows with the mean colour, rounded for uint8 input
    padded = np.broadcast_to(np.round(np.array(tiny.mean[::-1])), (17, 30, 3)).copy()
    padded[:9] = small
    expected = softmax(np.asarray(tiny.predict_on_batch(padded[None].astype("float32")))[0, :9])
    np.testing.assert_allclose(predict_image(predictor, small), expected, atol=1e-5)
    # The same pixel budget rule as the Keras path and the LiteRT runtime.
    import dataclasses

    import cv2

    bounded = dataclasses.replace(predictor, max_pixels=600)
    large = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    shrunk = cv2.resize(large, (30, 20), interpolation=cv2.INTER_AREA)
    expected = cv2.resize(predict_image(tiny, shrunk), (60, 40))
    np.testing.assert_allclose(predict_image(bounded, large), expected, atol=1e-4)


def test_flip_averages_the_probabilities_of_the_mirrored_image(tiny, rng):
    """flip: the mean of the class probabilities of the image and of its mirror (mirrored back),
    as the SavedModel and LiteRT runtimes compute it; a logits model gives their log."""
    calls = []

    def ramp(batch):  # probabilities that depend on the column and on the input
        calls.append(batch.copy())
        out = np.zeros(batch.shape[:3] + (2,), np.float32)
        out[..., 0] = np.arange(batch.shape[2], dtype=np.float32)[None, None, :] / 10
        out[..., 1] = batch[..., 0] / 255
        return out

    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    scores = Predictor(ramp, outputs="probabilities", flip=True).scores(image[None])
    np.testing.assert_array_equal(calls[1], calls[0][:, :, ::-1])  # the mirror went in
    np.testing.assert_allclose(scores[0, ..., 0], 0.3)  # (x + (6 - x)) / 2 / 10
    np.testing.assert_allclose(scores[0, ..., 1], image[..., 0] / 255, rtol=1e-6)  # equivariant
    # A real network (logits): flip == mean of the softmax on the image and on its mirror.
    image = rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)
    logits = np.asarray(tiny.predict_on_batch(image[None].astype(np.float32)))
    mirrored = np.asarray(tiny.predict_on_batch(image[None, :, ::-1].astype(np.float32)))
    import dataclasses

    flipped = dataclasses.replace(as_predictor(tiny), flip=True)
    expected = (softmax(logits) + softmax(mirrored)[:, :, ::-1]) / 2
    got = flipped.scores(image[None])
    np.testing.assert_allclose(softmax(got), expected, atol=1e-5)
    np.testing.assert_allclose(flipped.to_probabilities(got), expected, atol=1e-5)
