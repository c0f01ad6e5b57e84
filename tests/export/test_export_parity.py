"""Keras vs SavedModel vs TFLite (LiteRT): op lists, parity, quantised agreement."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_labels_match, requires_tf
from tests.export.artifacts import CLASSES, HEIGHT, WIDTH, get_artifacts, held_out_scenes

pytestmark = requires_tf


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    return get_artifacts(tmp_path_factory)


def _keras(model, image):
    logits = np.asarray(model(image[None].astype("float32"), training=False))[0]
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True), np.argmax(logits, -1)


def _images(rng, height, width):
    """Random noise images plus generated scenes at (height, width)."""
    noise = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(2)]
    return noise + held_out_scenes(2, height, width)


@pytest.mark.parametrize("variant", ["none", "dynamic", "fp16", "int8"])
def test_tflite_has_builtin_ops_only(art, variant):
    from deconvnet_tf.export import (
        check_builtins_only,
        non_builtin_ops,
        read_metadata,
        tflite_op_names,
    )

    path = art.tflite[variant]
    ops = tflite_op_names(path)
    assert not any(op.startswith(("Flex", "CUSTOM")) or "Flex" in op for op in ops), ops
    assert non_builtin_ops(path) == set()
    assert check_builtins_only(path) == ops
    assert {"CONV_2D", "ARG_MAX", "SOFTMAX"} <= ops
    meta = read_metadata(path)
    assert meta.builtins_only and meta.ops == sorted(ops) and meta.quantize == variant
    assert meta.class_names == CLASSES  # found in meta.json next to the model
    if variant == "int8":  # full integer: every conv runs on int8 tensors
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=str(path))
        convs = [op for op in interp._get_ops_details() if op["op_name"] == "CONV_2D"]
        details = {t["index"]: t for t in interp.get_tensor_details()}
        assert convs and all(details[op["inputs"][0]]["dtype"] == np.int8 for op in convs)


@pytest.mark.parametrize("size", [(HEIGHT, WIDTH), (37, 53)])
def test_fp32_parity_keras_savedmodel_litert(art, rng, size):
    """fp32: max |prob diff| <= 1e-4 and identical label maps, at the training size and an
    odd size (dynamic-size exports)."""
    import tensorflow as tf

    from deconvnet_tf.lite import LiteSegmenter

    loaded = tf.saved_model.load(str(art.saved_model))
    serve = loaded.signatures["serving_default"]
    lite = LiteSegmenter(art.tflite["none"], threads=2)
    for image in _images(rng, *size):
        probs, labels = _keras(art.model, image)
        sm = serve(images=tf.constant(image[None]))
        lite_labels, lite_probs = lite.predict(image)
        assert np.abs(sm["probabilities"].numpy()[0] - probs).max() <= 1e-4
        assert np.abs(lite_probs - probs).max() <= 1e-4
        assert_labels_match(sm["labels"].numpy()[0], probs, 1e-4)
        assert_labels_match(lite_labels, probs, 1e-4)
        np.testing.assert_array_equal(probs.argmax(-1), labels)


def _agreement(segmenter, model, images):
    equal = total = 0
    for image in images:
        label, _ = segmenter.predict(image)
        equal += int(np.sum(label == _keras(model, image)[1]))
        total += label.size
    return equal / total


def test_quantized_agreement(art, rng):
    """Pixel agreement with Keras on held-out generated scenes of the trained model.

    Thresholds: fp16 weights change each weight by <= 2^-11 relative, so only near-tie pixels
    can flip: >= 99.5%. Dynamic-range int8 weights (per-channel, 1/254 of the range): >= 99%.
    Full-integer int8 also quantises every activation (per tensor, 256 levels) and the
    pooling switches: >= 98% (the issue's bar; measured 98.8-99.8%). Noise images (outside
    the calibration distribution) must not send a quantised model astray, but their logits are
    near-ties almost everywhere and full-integer int8 clips activations to the calibrated
    range, so the bars on noise are lower: fp16 99.5%, dynamic 98%, int8 90% (measured on two
    machines: 100.0% for every variant; on a fresh machine on 2026-12-02, whose seeded
    10-epoch training ended elsewhere, 99.98% / 99.47% / 96.9%).
    """
    from deconvnet_tf.lite import LiteSegmenter

    scenes = held_out_scenes(12)
    noise = [rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(4)]
    bars = {"fp16": 0.995, "dynamic": 0.99, "int8": 0.98}
    noise_bars = {"fp16": 0.995, "dynamic": 0.98, "int8": 0.90}
    measured = {}
    for variant, bar in bars.items():
        segmenter = LiteSegmenter(art.tflite[variant], threads=2)
        measured[variant] = (_agreement(segmenter, art.model, scenes),
                             _agreement(segmenter, art.model, noise))
        assert measured[variant][0] >= bar, (variant, "scenes", measured)
        assert measured[variant][1] >= noise_bars[variant], (variant, "noise", measured)


def test_int8_fixed_size_model_io(art):
    """int8 keeps a uint8 image input and float outputs; fixed 48x64 input resized at run
    time for other image sizes, outputs at the image size."""
    from deconvnet_tf.lite import LiteSegmenter

    seg = LiteSegmenter(art.tflite["int8"], threads=1)
    assert seg.fixed_size == (HEIGHT, WIDTH)
    assert seg._input["dtype"] == np.uint8
    image = held_out_scenes(1, 72, 96)[0]
    label, probs = seg.predict(image)
    assert label.shape == (72, 96) and probs.shape == (72, 96, len(CLASSES))
    assert probs.dtype == np.float32 and np.allclose(probs.sum(-1), 1, atol=0.05)
    with pytest.raises(ValueError, match="takes 48x64"):
        seg.run(image[None])


def test_export_all_summary_and_predictions(art):
    result = art.export_result
    assert set(result.tflite) == {"none", "dynamic", "fp16"}
    assert result.saved_model == art.saved_model
    assert result.agreement["none"] == 1.0 and result.agreement["dynamic"] >= 0.98
    assert all(result.sizes[k] > 0 for k in ("saved_model", "none", "dynamic", "fp16"))
    table = result.summary()
    # Named after the model file (<run>/model.keras -> the run folder's name), not the
    # architecture: two models of one preset do not replace each other.
    assert art.model_path.parent.name == "model"
    assert "| model.tflite |" in table and "deconvnet_tiny" not in table and "100.00%" in table
    for paths in result.predictions["none"]:
        assert {"label", "color", "overlay"} <= set(paths) and paths["overlay"].is_file()


def test_allow_flex_keeps_argmax_pooling(art, tmp_path):
    """--allow-flex: TensorFlow's MaxPoolWithArgmax stays as a Flex op, clearly marked."""
    from deconvnet_tf.export import ExportError, check_builtins_only, export_tflite, non_builtin_ops
    from deconvnet_tf.lite import read_metadata

    path = export_tflite(art.model, tmp_path / "flex.tflite", allow_flex=True,
                         input_size=(HEIGHT, WIDTH))
    flex = non_builtin_ops(path)
    assert any("MaxPoolWithArgmax" in op for op in flex), flex
    with pytest.raises(ExportError, match="non-builtin ops"):
        check_builtins_only(path)
    meta = read_metadata(path)
    assert not meta.builtins_only and "NOT the stock LiteRT" in meta.extra["note"]


def test_test_time_flip_travels_to_the_savedmodel_and_litert_runtimes(art, rng, tmp_path):
    """A Segmenter with test_time_flip: its SavedModel and LiteRT exports record it, and their
    runtimes average with the mirror image as the Keras Segmenter does (same probabilities
    within 1e-4, same labels); flip=False / --no-flip turns it off per call."""
    from deconvnet_tf import Segmenter
    from deconvnet_tf.export import export_saved_model, export_tflite, load_saved_model
    from deconvnet_tf.inference.predict import load_predictor, predict_image
    from deconvnet_tf.lite import LiteSegmenter, read_metadata

    seg = Segmenter(art.model, image_size=None, test_time_flip=True)
    saved = export_saved_model(seg, tmp_path / "sm")
    lite_path = tmp_path / "flip.tflite"
    export_tflite(seg, lite_path)
    assert read_metadata(lite_path).test_time_flip and read_metadata(saved).test_time_flip
    lite, lite_plain = LiteSegmenter(lite_path), LiteSegmenter(lite_path, flip=False)
    assert lite.flip is True and lite_plain.flip is False
    sm, sm_predictor = load_saved_model(saved), load_predictor(saved)
    assert sm.flip is True and sm_predictor.flip is True
    for image in _images(rng, 37, 53):
        expected = seg.predict_proba(image)
        plain, _ = _keras(art.model, image)
        assert not np.allclose(expected, plain, atol=1e-3)  # the flip shows
        lite_labels, lite_probs = lite.predict(image)
        assert np.abs(lite_probs - expected).max() <= 1e-4
        assert np.abs(sm(image) - expected).max() <= 1e-4
        assert np.abs(predict_image(sm_predictor, image) - expected).max() <= 1e-4
        assert_labels_match(lite_labels, expected, 1e-4)
        assert np.abs(lite_plain.predict(image)[1] - plain).max() <= 1e-4
