"""Odd inputs to the public Python API (Segmenter, build_model, load_model / from_preset, render,
the LiteRT runtime): each is either answered like the ordinary input it stands for or refused
with a ValueError / TypeError that names the argument, never a deep framework error."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf import render
from deconvnet_tf.inference.segmenter import Segmenter

SAVED = Path(__file__).resolve().parents[2] / "saved_models"


@pytest.fixture(scope="module")
def seg():
    network = deconvnet_tf.build_model("deconvnet_tiny", num_classes=2, unpooling="switch")
    return Segmenter(network, image_size=None, class_names=["bg", "fg"])


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, (21, 26, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------ Segmenter
@pytest.mark.jax
def test_predict_errors_name_the_image_of_a_list_or_batch(seg, image):
    with pytest.raises(ValueError, match=r"images\[1\]: empty image of shape \(0, 4, 3\)"):
        seg.predict([image, np.zeros((0, 4, 3), np.uint8)])
    with pytest.raises(ValueError, match=r"images\[0\]: expected an RGB image \(H, W, 3\)"):
        seg.predict(image.tolist())  # a nested list is a list of images (rows here)
    bad = np.stack([image, image]).astype(np.float32)
    bad[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"images\[1\]: 1 NaN or infinite value"):
        seg.predict(bad)
    with pytest.raises(ValueError, match=r"^image: expected pixel values .* got dtype bool"):
        seg.predict(image > 128)


@pytest.mark.jax
@pytest.mark.parametrize("value, named", [(None, "NoneType"), (5, "int"), ({"a": 1}, "dict"),
                                          ((x for x in ()), "generator")])
def test_predict_refuses_non_images_naming_their_type(seg, value, named):
    with pytest.raises(ValueError, match=rf"predict: expected an \(H, W, 3\) image.*got {named}"):
        seg.predict(value)


@pytest.mark.jax
def test_predict_batch_size_and_keras_keywords(seg, image):
    expected = seg.predict(image)
    np.testing.assert_array_equal(seg.predict(image, batch_size=None), expected)  # Keras' default
    np.testing.assert_array_equal(seg.predict(image, verbose=0), expected)
    assert seg.predict_proba(image, batch_size=None).shape == (21, 26, 2)
    for bad in (1.5, "2", True):
        with pytest.raises(TypeError, match=r"batch_size must be an integer >= 1, got"):
            seg.predict(image, batch_size=bad)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        seg.predict(image, batch_size=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'batchsize'"):
        seg.predict(image, batchsize=4)  # a typo is not silently ignored
    with pytest.raises(TypeError, match="Segmenter.predict: steps is not supported"):
        seg.predict(image, steps=3)


@pytest.mark.jax
def test_predict_odd_but_valid_images_give_the_answer_of_the_plain_image(seg, image):
    expected = seg.predict(image)
    for same in (image.astype(np.float32), image.astype(np.uint16), np.asfortranarray(image)):
        np.testing.assert_array_equal(seg.predict(same), expected)
    mirrored = image[:, ::-1]  # negative strides
    np.testing.assert_array_equal(seg.predict(mirrored),
                                  seg.predict(np.ascontiguousarray(mirrored)))
    assert seg.predict(np.zeros((1, 1, 3), np.uint8)).shape == (1, 1)
    assert seg.predict(np.zeros((2, 300, 3), np.uint8)).shape == (2, 300)
    kept = image.copy()
    seg.predict([kept])
    np.testing.assert_array_equal(kept, image)  # nothing is modified in place


@pytest.mark.jax
def test_segmenter_settings_are_checked_with_clear_messages(seg):
    cases = [({"max_pixels": "x"}, "max_pixels must be an integer, got 'x'"),
             ({"max_pixels": 1.5}, "max_pixels must be an integer, got 1.5"),
             ({"void_label": "x"}, "void_label must be an integer, got 'x'"),
             ({"void_label": 2.7}, "void_label must be an integer, got 2.7"),
             ({"class_names": "ab"}, "class_names must be a list of names, got 'ab'"),
             ({"mean": "abc"}, r"mean must be 3 finite numbers \(BGR\), got 'abc'"),
             ({"mean": (np.nan, 0, 0)}, r"mean must be 3 finite numbers \(BGR\)"),
             ({"mean": (1, 2)}, r"mean must be 3 finite numbers \(BGR\), got \(1, 2\)")]
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            seg.with_options(**change)
    assert seg.with_options(void_label=255.0, max_pixels=np.int64(5000)).void_label == 255
    for option in ("flip", "uint8"):
        with pytest.raises(ValueError, match=f"predictor: {option} must be true or false"):
            seg.predictor(**{option: "no"})
    assert seg.predictor(flip=False).flip is False


@pytest.mark.jax
def test_model_handles_and_paths_are_checked(tmp_path):
    for bad in (None, 3, ["horse_compact"], b"horse_compact"):
        with pytest.raises(TypeError, match="model handle must be a path, a registered name"):
            Segmenter.from_preset(bad)
        if not isinstance(bad, bytes):
            with pytest.raises(TypeError, match="load_model: path must be a .keras file path"):
                deconvnet_tf.load_model(bad)
    with pytest.raises(ValueError, match="model handle must be a path, a name or a URL, got ''"):
        Segmenter.from_preset("")
    with pytest.raises(ValueError, match="load_model: path is empty"):
        deconvnet_tf.load_model("")


# ------------------------------------------------------------------------------ build_model
@pytest.mark.jax
@pytest.mark.parametrize("change, message", [
    ({"num_classes": 2.5}, "num_classes must be an integer, got 2.5"),
    ({"num_classes": "3"}, "num_classes must be an integer, got '3'"),
    ({"num_classes": None}, "num_classes must be an integer, got None"),
    ({"num_classes": True}, "num_classes must be an integer, got True"),
    ({"fc_filters": 8.5}, "fc_filters must be an integer, got 8.5"),
    ({"blocks": 0}, r"blocks must be a sequence of \(filters, convs\) integer pairs, got 0"),
    ({"blocks": [(8.5, 1)]}, "blocks must be a sequence of"),
    ({"encoder_width": "2"}, "encoder_width must be > 0, got '2'"),
    ({"input_shape": "64x64"}, r"input_shape must be \(height, width, 3\).*got '64x64'"),
    ({"input_shape": 64}, r"input_shape must be \(height, width, 3\).*got 64"),
])
def test_build_model_refuses_bad_numbers_naming_them(change, message):
    with pytest.raises(ValueError, match=message):
        deconvnet_tf.build_model("deconvnet_tiny", **{"num_classes": 3, **change})


@pytest.mark.jax
def test_build_model_takes_integral_numbers_of_any_type():
    model = deconvnet_tf.build_model("fcn8s_tiny", num_classes=np.int64(3), fc_filters=8.0)
    assert model.output_shape[-1] == 3 and model.architecture.num_classes == 3
    assert type(model.architecture.fc_filters) is int


# ------------------------------------------------------------------------------ render
@pytest.mark.jax
def test_render_refuses_what_it_would_draw_wrong():
    image = np.full((4, 5, 3), 200, np.uint8)
    label = np.ones((4, 5), np.uint8)
    with pytest.raises(ValueError, match=r"overlay: image: integer values 51400..51400"):
        render.overlay(image.astype(np.uint16) * 257, label)  # a uint8 cast would wrap it
    with pytest.raises(ValueError, match=r"overlay: image: expected an RGB image"):
        render.overlay(image[..., 0], label)
    with pytest.raises(ValueError, match=r"overlay: image: 1 NaN"):
        render.overlay(np.where(np.arange(60).reshape(4, 5, 3) == 0, np.nan, 1.0), label)
    for alpha in (2, -0.1, np.nan, "x"):
        with pytest.raises(ValueError, match="overlay: alpha must be a number in"):
            render.overlay(image, label, alpha=alpha)
    np.testing.assert_array_equal(render.overlay(image.astype(np.float32) + 0.4, label),
                                  render.overlay(image, label))  # floats are rounded
    with pytest.raises(ValueError, match="colorize: label must hold finite class ids"):
        render.colorize(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match=r"colorize: palette must be \(K, 3\)"):
        render.colorize(label, np.zeros((3, 4), np.uint8))
    for bad in (-1, "x", 2.5, True):
        with pytest.raises(ValueError, match="make_palette: num_classes must be an integer"):
            render.make_palette(bad)


@pytest.mark.jax
def test_side_by_side_and_save_png_check_their_images(tmp_path):
    image = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match="side_by_side: no images"):
        render.side_by_side()
    with pytest.raises(ValueError, match="side_by_side: gap must be an integer >= 0, got -1"):
        render.side_by_side(image, image, gap=-1)
    with pytest.raises(ValueError, match=r"side_by_side: image 1 must be \(H, W, 3\)"):
        render.side_by_side(image, np.zeros((4, 5, 4), np.uint8))
    with pytest.raises(ValueError, match=r"save_png\(.*\): expected a non-empty"):
        render.save_png(tmp_path / "empty.png", np.zeros((0, 0, 3), np.uint8))
    import cv2

    deep = np.full((2, 3, 3), 40000, np.uint16)
    deep[..., 0] = 1000
    render.save_png(tmp_path / "deep.png", deep)  # 16-bit RGB stays 16-bit
    back = cv2.imread(str(tmp_path / "deep.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back[..., ::-1], deep)


# ------------------------------------------------------------------------------ LiteRT
@pytest.fixture(scope="module")
def lite():
    pytest.importorskip("ai_edge_litert")
    from deconvnet_tf.lite import LiteSegmenter

    return LiteSegmenter(SAVED / "horse_compact.tflite", threads=1)


@pytest.mark.jax
def test_lite_options_are_checked():
    pytest.importorskip("ai_edge_litert")
    from deconvnet_tf.lite import LiteSegmenter

    path = SAVED / "horse_compact.tflite"
    for option, value in (("threads", "x"), ("threads", 0), ("max_pixels", "x"),
                          ("flip", "no")):
        with pytest.raises(ValueError, match=f"{option} must be"):
            LiteSegmenter(path, **{option: value})
    with pytest.raises(TypeError, match="model_path must be a path, got NoneType"):
        LiteSegmenter(None)
    with pytest.raises(ValueError, match="model_path is empty"):
        LiteSegmenter("")


@pytest.mark.jax
def test_lite_run_checks_and_rounds_its_batch(lite, image):
    with pytest.raises(ValueError, match="takes images of at least 17x17, got 1x1"):
        lite.run(np.zeros((1, 1, 1, 3), np.uint8))
    with pytest.raises(ValueError, match="takes images of at least 17x17, got 0x5"):
        lite.run(np.zeros((1, 0, 5, 3), np.uint8))
    nan = image[None].astype(np.float32)
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"run: 1 NaN or infinite value"):
        lite.run(nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value encountered in cast"
        np.testing.assert_array_equal(lite.run(image[None] - 0.4)["probabilities"],
                                      lite.run(image[None])["probabilities"])  # rounded
    assert lite.predict(np.zeros((1, 1, 3), np.uint8))[0].shape == (1, 1)  # predict pads
