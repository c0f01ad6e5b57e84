"""Test-time colour normalisation (a Segmenter's ``color_target``): the NumPy function against
a reference, the training-set statistics, and the setting in every runtime (Keras, SavedModel,
LiteRT, instance mode) and command line (--no-color-norm)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf import Segmenter
from deconvnet_tf.io import check_color_target, normalize_colors
from tests.conftest import requires_tf

TARGET = {"mean": [120.0, 110.0, 100.0], "std": [60.0, 55.0, 50.0]}
NAMES = ["background", "disc", "ring"]


def _reference(image, target):
    """The dev-split experiment's formula: per channel (x - m) / max(s, 1) * std + mean."""
    x = np.asarray(image, np.float64)
    m = x.reshape(-1, 3).mean(0)
    s = np.maximum(x.reshape(-1, 3).std(0), 1.0)
    y = (x - m) / s * np.asarray(target["std"]) + np.asarray(target["mean"])
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def _dark(seed=0, shape=(40, 56, 3)):
    """A dusk-like frame: dark, low contrast, a blue cast."""
    rng = np.random.default_rng(seed)
    image = rng.normal((40, 45, 60), (15, 14, 18), shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64", "int16", "int64"])
def test_normalize_colors_matches_the_reference_for_every_pixel_dtype(dtype):
    image = _dark(1).astype(dtype)
    got = normalize_colors(image, TARGET)
    assert got.dtype == np.uint8 and got.shape == image.shape
    diff = np.abs(got.astype(int) - _reference(image, TARGET).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01  # float rounding at .5 only
    flat = got.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(flat.mean(0), TARGET["mean"], atol=1.0)
    np.testing.assert_allclose(flat.std(0), TARGET["std"], rtol=0.03)


def test_normalize_colors_edge_cases():
    image = _dark(2)
    assert normalize_colors(image, None) is image  # off: the image itself
    flat = np.full((3, 4, 3), 7, np.uint8)  # no spread: the target mean
    np.testing.assert_array_equal(normalize_colors(flat, TARGET)[0, 0], [120, 110, 100])
    one = np.array([[[0, 128, 255]]], np.uint8)  # one pixel: each channel its target mean
    np.testing.assert_array_equal(normalize_colors(one, TARGET), [[[120, 110, 100]]])
    wide = normalize_colors(image, {"mean": [128] * 3, "std": [255] * 3})  # clipped, rounded
    assert wide.min() == 0 and wide.max() == 255
    with pytest.raises(ValueError, match="NaN or infinite"):
        normalize_colors(np.full((2, 2, 3), np.nan, np.float32), TARGET)
    with pytest.raises(ValueError, match=r"expected an RGB image \(H, W, 3\)"):
        normalize_colors(np.zeros((4, 4), np.uint8), TARGET)


@pytest.mark.parametrize("bad", [
    5, "train", [1, 2, 3], {"mean": [1, 2, 3]}, {"mean": [1, 2, 3], "std": [1, 2, 3], "x": 1},
    {"mean": [1, 2], "std": [1, 2, 3]}, {"mean": [1, 2, 3], "std": [0, 1, 1]},
    {"mean": [-1, 2, 3], "std": [1, 1, 1]}, {"mean": [1, 2, 300], "std": [1, 1, 1]},
    {"mean": [1, 2, float("nan")], "std": [1, 1, 1]}, {"mean": [1, 2, 3], "std": "abc"},
    {"mean": [True, 2, 3], "std": [1, 1, 1]}, {"mean": ["1", 2, 3], "std": [1, 1, 1]},
])
def test_check_color_target_names_the_argument_and_what_it_expects(bad):
    with pytest.raises(ValueError, match=r"^where: expected None or \{\"mean\""):
        check_color_target(bad, "where")


def test_a_float_0_to_1_image_is_warned_of_once_with_a_color_target():
    import warnings

    from deconvnet_tf.inference.predict import Predictor, predict_image

    fake = Predictor(lambda b: np.zeros(b.shape[:3] + (2,)), outputs="logits",
                     color_target={"mean": [100] * 3, "std": [50] * 3})
    image = np.random.default_rng(0).random((6, 5, 3)).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert predict_image(fake, image).shape == (6, 5, 2)
    assert len([w for w in caught if "float values in 0..1" in str(w.message)]) == 1


def test_check_color_target_returns_plain_floats():
    got = check_color_target({"mean": np.array([1, 2, 3]), "std": (4.5, np.float32(5), 6)})
    assert got == {"mean": [1.0, 2.0, 3.0], "std": [4.5, 5.0, 6.0]}
    assert json.loads(json.dumps(got)) == got and check_color_target(None) is None


def test_color_statistics_are_the_pixel_statistics_of_the_split(tmp_path):
    from deconvnet_tf.data.sources import open_source
    from deconvnet_tf.data.stats import color_statistics
    from deconvnet_tf.data.synthetic import write_synthetic_dataset

    data = write_synthetic_dataset(tmp_path / "d", num_train=3, num_val=1, height=20, width=30)
    source = open_source(data)
    pixels = np.concatenate([im.reshape(-1, 3).astype(np.float64)
                             for im, _ in source.numpy_examples("train")])
    got = color_statistics(source, "train")
    np.testing.assert_allclose(got["mean"], pixels.mean(0), atol=1e-3)
    np.testing.assert_allclose(got["std"], pixels.std(0), atol=1e-3)
    assert check_color_target(got) == got
    one = color_statistics(source, "train", limit=1)
    assert one != got
    with pytest.raises(ValueError, match="has no images"):
        color_statistics(source, "train", limit=0)


@pytest.fixture(scope="module")
def network():
    keras.utils.set_random_seed(5)
    return deconvnet_tf.build_model("deconvnet_tiny", num_classes=3)


@pytest.mark.jax
def test_segmenter_color_target_normalises_every_prediction_and_round_trips(network, tmp_path):
    plain = Segmenter(network, image_size=(48, 64), class_names=NAMES)
    normed = plain.with_options(color_target=TARGET)
    assert plain.color_target is None and normed.color_target == TARGET
    image = _dark(3, (61, 83, 3))
    expected = plain.predict_proba(normalize_colors(image, TARGET))
    np.testing.assert_allclose(normed.predict_proba(image), expected, atol=1e-6)
    assert not np.allclose(plain.predict_proba(image), expected, atol=1e-3)  # it shows
    np.testing.assert_array_equal(normed.predict(image), expected.argmax(-1))
    assert normed.predictor(color_target=None).color_target is None
    assert normed.image_converter["color_target"] == TARGET
    path = tmp_path / "normed.keras"
    normed.save(path)
    assert Segmenter.from_preset(path).color_target == TARGET
    from deconvnet_tf.inference.segmenter import load_segmenter

    assert load_segmenter(path, color_target=None).color_target is None
    with pytest.raises(ValueError, match="Segmenter: color_target: expected None or"):
        Segmenter(network, color_target=108.0)


@pytest.mark.jax
def test_evaluation_applies_the_models_color_target_unless_told_not_to(network):
    from deconvnet_tf.evaluation.evaluate import predict_native

    seg = Segmenter(network, image_size=None, class_names=NAMES, color_target=TARGET)
    image = _dark(4)
    plain = Segmenter(network, image_size=None, class_names=NAMES)
    np.testing.assert_allclose(predict_native(seg, image),
                               predict_native(plain, normalize_colors(image, TARGET)), atol=1e-5)
    np.testing.assert_allclose(predict_native(seg, image, color_norm=False),
                               predict_native(plain, image), atol=1e-5)


def test_instance_mode_crops_the_normalised_image(network):
    from deconvnet_tf.inference.instance import predict_instances

    seg = Segmenter(network, image_size=None, class_names=NAMES, color_target=TARGET)
    plain = Segmenter(network, image_size=None, class_names=NAMES)
    image = _dark(5, (48, 64, 3))
    boxes = [[0, 0, 30, 40], [10, 20, 48, 64]]
    got = predict_instances(seg, image, boxes=boxes, input_size=(32, 32))
    expected = predict_instances(plain, normalize_colors(image, TARGET), boxes=boxes,
                                 input_size=(32, 32))
    np.testing.assert_allclose(got, expected, atol=1e-5)


@requires_tf
def test_color_target_travels_to_the_savedmodel_and_litert_runtimes(network, tmp_path):
    """Exports record the setting; their runtimes normalise as the Keras Segmenter does (same
    probabilities within 1e-4); color_target=None / --no-color-norm turns it off."""
    from deconvnet_tf.cli import lite_predict
    from deconvnet_tf.export import export_saved_model, export_tflite, load_saved_model
    from deconvnet_tf.inference.predict import load_predictor, predict_image
    from deconvnet_tf.lite import LiteSegmenter, read_metadata

    seg = Segmenter(network, image_size=None, class_names=NAMES, color_target=TARGET)
    plain = seg.with_options(color_target=None)
    saved = export_saved_model(seg, tmp_path / "sm")
    lite_path = tmp_path / "normed.tflite"
    export_tflite(seg, lite_path)
    assert read_metadata(lite_path).color_target == TARGET == read_metadata(saved).color_target
    lite, lite_plain = LiteSegmenter(lite_path), LiteSegmenter(lite_path, color_target=None)
    sm, sm_predictor = load_saved_model(saved), load_predictor(saved)
    assert sm.color_target == TARGET == sm_predictor.color_target
    assert lite_plain.color_target is None
    image = _dark(6, (37, 53, 3))
    expected = seg.predict_proba(image)
    assert np.abs(lite.predict(image)[1] - expected).max() <= 1e-4
    assert np.abs(predict_image(sm_predictor, image) - expected).max() <= 1e-4
    assert np.abs(lite_plain.predict(image)[1] - plain.predict_proba(image)).max() <= 1e-4
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "dusk.png")
    for flags, want in (((), expected), (("--no-color-norm",), plain.predict_proba(image))):
        out = tmp_path / f"lite{len(flags)}"
        assert lite_predict.main(["--model", str(lite_path), "--input", str(tmp_path / "dusk.png"),
                                  "--output", str(out), "--save-probs", *flags]) == 0
        got = np.load(out / "dusk_probs.npy").astype(np.float32)
        assert np.abs(got - want).max() <= 2e-3, flags
    meta = read_metadata(lite_path)  # a damaged sidecar: a clear error naming the model
    meta.extra["color_target"] = {"mean": [1, 2, 3]}
    with pytest.raises(ValueError, match=r"the metadata of .*normed.tflite.* \(extra.color_t"):
        LiteSegmenter(lite_path, metadata=meta)
    from deconvnet_tf.lite import write_metadata

    write_metadata(saved, meta)
    with pytest.raises(ValueError, match=r"the metadata of .*sm.* \(extra.color_target\): exp"):
        load_saved_model(saved)


@requires_tf
def test_predict_and_evaluate_clis_skip_it_with_no_color_norm(tmp_path, capsys):
    from PIL import Image

    from deconvnet_tf.cli import evaluate as evaluate_cli
    from deconvnet_tf.cli import predict as predict_cli
    from deconvnet_tf.data.synthetic import CLASS_NAMES, write_synthetic_dataset

    keras.utils.set_random_seed(6)
    network = deconvnet_tf.build_model("deconvnet_tiny", num_classes=len(CLASS_NAMES))
    seg = Segmenter(network, image_size=None, class_names=CLASS_NAMES, color_target=TARGET)
    plain = seg.with_options(color_target=None)
    seg.save(tmp_path / "seg.keras")
    image = _dark(7, (40, 48, 3))
    Image.fromarray(image).save(tmp_path / "dusk.png")
    for flags, model in (((), seg), (("--no-color-norm",), plain)):
        out = tmp_path / f"pred{len(flags)}"
        assert predict_cli.main(["--model", str(tmp_path / "seg.keras"), "--input",
                                 str(tmp_path / "dusk.png"), "--output", str(out),
                                 "--save-probs", "--quiet", *flags]) == 0
        got = np.load(out / "dusk_probs.npy").astype(np.float32)
        assert np.abs(got - model.predict_proba(image)).max() <= 2e-3, flags
        announced = "colour normalisation on (the model's color_target" in capsys.readouterr().err
        assert announced == (not flags)
    seg.with_options(test_time_flip=True).save(tmp_path / "flip.keras")
    for flags in ((), ("--no-flip",)):
        assert predict_cli.main(["--model", str(tmp_path / "flip.keras"), "--input",
                                 str(tmp_path / "dusk.png"), "--output",
                                 str(tmp_path / f"flip{len(flags)}"), "--quiet", *flags]) == 0
        announced = "test-time flip on (the model's default)" in capsys.readouterr().err
        assert announced == (not flags)
    data = write_synthetic_dataset(tmp_path / "d", num_train=1, num_val=2, height=24, width=32)
    reports = {}
    for flags in ((), ("--no-color-norm",)):
        out = tmp_path / f"eval{len(flags)}"
        assert evaluate_cli.main(["--model", str(tmp_path / "seg.keras"), "--data", str(data),
                                  "--output", str(out), *flags]) == 0
        reports[flags] = json.loads((out / "metrics.json").read_text())["confusion"]
    from deconvnet_tf.evaluation.evaluate import evaluate

    for flags, model in (((), seg), (("--no-color-norm",), plain)):
        expected = evaluate(model, data, "val", progress=False)
        np.testing.assert_array_equal(reports[flags], expected.confusion, err_msg=str(flags))
