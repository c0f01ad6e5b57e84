"""Instance-wise inference: crop/warp/paste geometry checked exactly with fake models, max and
mean aggregation, uncovered pixels, and the pipeline end to end on a generated scene."""

from __future__ import annotations

import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.data.synthetic import make_scene
from deconvnet_tf.inference.instance import (
    aggregate_boxes,
    crop_box,
    paste_region,
    predict_instances,
)
from deconvnet_tf.inference.predict import Predictor, predict_image, softmax


class Recorder:
    """A fake model: records the batches it gets and returns ``fn(batch)``."""

    def __init__(self, fn):
        self.fn, self.batches = fn, []

    def __call__(self, batch):
        self.batches.append(np.array(batch))
        return self.fn(batch)


def constant_logits(value: float, cls: int, classes: int = 3):
    def fn(batch):
        out = np.zeros(batch.shape[:3] + (classes,), np.float32)
        out[..., cls] = value
        return out

    return fn


def ramp_image(height=40, width=50):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 5 % 256, y * 6 % 256, (x + y) % 256], -1).astype(np.uint8)


@pytest.mark.jax  # fake models, no TensorFlow: also runs under JAX
def test_crop_box_pads_outside_the_image_with_the_pad_colour():
    image = ramp_image()
    crop = crop_box(image, [-3, -2, 7, 8], (10, 10), pad_rgb=(1, 2, 3))
    np.testing.assert_array_equal(crop[2:, 3:], image[0:8, 0:7])  # the part inside the image
    np.testing.assert_array_equal(crop[:2], np.broadcast_to([1, 2, 3], (2, 10, 3)))
    np.testing.assert_array_equal(crop[:, :3], np.broadcast_to([1, 2, 3], (10, 3, 3)))
    # bottom-right corner, box past both borders
    crop = crop_box(image, [45, 35, 55, 45], (10, 10), pad_rgb=(0, 0, 0))
    np.testing.assert_array_equal(crop[:5, :5], image[35:, 45:])
    assert not crop[5:].any() and not crop[:, 5:].any()
    with pytest.raises(ValueError, match="Empty box"):
        crop_box(image, [5, 5, 5, 9], (4, 4))


@pytest.mark.jax  # fake models, no TensorFlow: also runs under JAX
def test_identity_model_returns_the_image_exactly_on_the_box():
    """Box size == input size: no resampling, so the pasted scores are the pixels themselves."""
    image = ramp_image()
    identity = Recorder(lambda b: b.astype(np.float32))
    predictor = Predictor(identity, outputs="logits", pad_rgb=(7, 7, 7))
    boxes = np.array([[10, 5, 26, 21], [-6, -4, 10, 12], [40, 30, 56, 46]], np.float32)
    crops = np.concatenate([predictor.scores(np.stack([crop_box(image, b, (16, 16), (7, 7, 7))]))
                            for b in boxes])
    scores, covered = aggregate_boxes(list(crops), boxes, image.shape, "mean")
    expected_cover = np.zeros(image.shape[:2], bool)
    expected_cover[5:21, 10:26] = expected_cover[0:12, 0:10] = expected_cover[30:40, 40:50] = True
    np.testing.assert_array_equal(covered, expected_cover)
    np.testing.assert_array_equal(scores[covered], image[covered].astype(np.float32))
    assert not scores[~covered].any()
    # what the model saw at the top-left border: the pad colour outside the image
    np.testing.assert_array_equal(identity.batches[1][0, :4], np.full((4, 16, 3), 7.0))
    np.testing.assert_array_equal(identity.batches[1][0, 4:, 6:], image[0:12, 0:10])


@pytest.mark.jax  # fake models, no TensorFlow: also runs under JAX
def test_scores_land_exactly_on_their_box_through_predict_instances():
    image = ramp_image()
    fake = Recorder(constant_logits(8.0, cls=2))
    predictor = Predictor(fake, outputs="logits")
    box = np.array([[12, 7, 33, 30]], np.float32)  # 21 x 23 box, warped to 16 x 16 and back
    whole = np.zeros(image.shape[:2] + (3,), np.float32)
    whole[..., 0] = 1.0
    probs, covered = predict_instances(predictor, image, box, input_size=16, whole=whole,
                                       return_coverage=True)
    assert fake.batches[0].shape == (1, 16, 16, 3)
    inside = np.zeros(image.shape[:2], bool)
    inside[7:30, 12:33] = True
    np.testing.assert_array_equal(covered, inside)
    np.testing.assert_allclose(probs[inside], np.broadcast_to(softmax(np.array([0, 0, 8.0])),
                                                              (inside.sum(), 3)), rtol=1e-6)
    np.testing.assert_array_equal(probs[~inside], whole[~inside])  # uncovered: whole pass


@pytest.mark.jax  # fake models, no TensorFlow: also runs under JAX
def test_warped_geometry_maps_crop_coordinates_back_to_image_coordinates():
    """A model that outputs each crop pixel's position: after the round trip through a 3x
    larger box, every image pixel reads (close to) its own position within the box."""
    def coordinates(batch):
        n, h, w, _ = batch.shape
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        return np.broadcast_to(np.stack([(x + 0.5) / w, (y + 0.5) / h], -1), (n, h, w, 2))

    box = np.array([6, 3, 54, 51], np.float32)  # 48 x 48 box on a 40 x 50 image
    placed = paste_region(coordinates(np.zeros((1, 16, 16, 3)))[0], box, (40, 50))
    (rows, cols), values = placed
    assert (rows, cols) == (slice(3, 40), slice(6, 50))
    y, x = np.mgrid[3:40, 6:50].astype(np.float32)
    expected = np.stack([(x - 6 + 0.5) / 48, (y - 3 + 0.5) / 48], -1)
    interior = (slice(2, -2), slice(2, -2))  # bilinear clamps at the crop's outer half-pixel
    np.testing.assert_allclose(values[interior], expected[interior], atol=1e-5)
    assert paste_region(values, [60, 0, 70, 10], (40, 50)) is None  # wholly outside


@pytest.mark.jax  # fake models, no TensorFlow: also runs under JAX
def test_max_and_mean_aggregation_of_overlapping_boxes():
    maps = [np.full((4, 4, 2), [1.0, 5.0], np.float32), np.full((4, 4, 2), [3.0, 2.0], np.float32)]
    boxes = [[0, 0, 6, 6], [3, 3, 9, 9]]
    top, covered = aggregate_boxes(maps, boxes, (10, 10), "max")
    np.testing.assert_array_equal(top[4, 4], [3.0, 5.0])  # overlap: pixel-wise max per class
    np.testing.assert_array_equal(top[1, 1], [1.0, 5.0])
    np.testing.assert_array_equal(top[7, 7], [3.0, 2.0])
    assert covered.sum() == 36 + 36 - 9 and not top[9, 0].any()
    mean, _ = aggregate_boxes(maps, boxes, (10, 10), "mean")
    np.testing.assert_array_equal(mean[4, 4], [2.0, 3.5])
    np.testing.assert_array_equal(mean[1, 1], [1.0, 5.0])
    with pytest.raises(ValueError, match="aggregate"):
        aggregate_boxes(maps, boxes, (10, 10), "median")
    with pytest.raises(ValueError, match="2 score maps for 1 boxes"):
        aggregate_boxes(maps, boxes[:1], (10, 10))


@pytest.mark.jax  # fake models, no TensorFlow: also runs under JAX
def test_no_boxes_falls_back_to_the_whole_image_pass():
    predictor = Predictor(constant_logits(3.0, cls=1), outputs="logits")
    image = ramp_image()
    probs = predict_instances(predictor, image, np.zeros((0, 4)), input_size=16)
    np.testing.assert_allclose(probs, predict_image(predictor, image))


@pytest.mark.jax  # fake models, no TensorFlow: also runs under JAX
def test_predict_instances_rejects_bad_arguments():
    predictor = Predictor(constant_logits(1.0, 0), min_input_size=32)
    with pytest.raises(ValueError, match="minimum input size 32"):
        predict_instances(predictor, ramp_image(), [[0, 0, 10, 10]], input_size=16)
    with pytest.raises(ValueError, match="batch_size"):
        predict_instances(predictor, ramp_image(), [[0, 0, 10, 10]], batch_size=0)


def oracle_segmenter(batch):
    """A pixel classifier by colour for the generated scene below (logits, 3 classes)."""
    red = (batch[..., 0] > 150) & (batch[..., 1] < 100)
    green = (batch[..., 1] > 150) & (batch[..., 0] < 100)
    out = np.zeros(batch.shape[:3] + (3,), np.float32)
    out[..., 0] = 5.0 * ~(red | green)
    out[..., 1] = 5.0 * red
    out[..., 2] = 5.0 * green
    return out


@pytest.mark.jax  # fake models, no TensorFlow: also runs under JAX
def test_instance_pipeline_end_to_end_on_known_objects():
    image = np.full((96, 128, 3), 40, np.uint8)
    image[20:60, 10:50] = (220, 30, 30)
    image[50:85, 70:120] = (30, 220, 30)
    label = np.zeros((96, 128), np.uint8)
    label[20:60, 10:50] = 1
    label[50:85, 70:120] = 2
    fake = Recorder(oracle_segmenter)
    predictor = Predictor(fake, outputs="logits")
    probs, covered = predict_instances(
        predictor, image, input_size=32, batch_size=4, return_coverage=True,
        proposals=dict(edge="gradient", top_k=10, min_size=8))
    assert sum(len(b) for b in fake.batches[:-1]) <= 10  # crops, then a whole-image pass if any
    assert probs.shape == (96, 128, 3) and np.allclose(probs.sum(-1), 1, atol=1e-5)
    assert covered[20:60, 10:50].all() and covered[50:85, 70:120].all()  # proposals hit objects
    accuracy = (probs.argmax(-1) == label).mean()
    assert accuracy > 0.97  # only resampled object borders may differ


def test_instance_inference_runs_a_real_keras_model():
    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5)
    image, _, _ = make_scene(3, 48, 64)
    boxes = np.array([[0, 0, 30, 30], [20, 10, 64, 48], [-8, -8, 24, 24]], np.float32)
    probs = predict_instances(model, image, boxes, input_size=32, batch_size=2)
    assert probs.shape == (48, 64, 5)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    # the first box alone, by hand: crop, model, softmax of the logits resized onto the box
    single = predict_instances(model, image, boxes[:1], input_size=32)
    logits = np.asarray(model.predict_on_batch(crop_box(image, boxes[0], (32, 32),
                                                        model.mean[::-1])[None]))[0]
    import cv2

    expected = softmax(cv2.resize(logits, (30, 30), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_allclose(single[:30, :30], expected, atol=1e-5)


@pytest.mark.jax  # fake models, no TensorFlow: also runs under JAX
def test_timings_split_the_stages_and_change_nothing():
    import tempfile

    from deconvnet_tf.inference.pipeline import InferenceOptions, infer
    from deconvnet_tf.inference.proposals import propose_boxes
    from deconvnet_tf.inference.timing import STAGES, stage

    image = np.full((96, 128, 3), 40, np.uint8)
    image[20:60, 10:50] = (220, 30, 30)
    options = InferenceOptions(mode="instance", input_size=32, batch_size=4,
                               proposals=dict(edge="gradient", top_k=10, min_size=8))
    predictor = Predictor(Recorder(oracle_segmenter), outputs="logits")
    plain = infer(predictor, image, options)
    timings = {}
    timed = infer(predictor, image, options, timings=timings,
                  ensemble=Predictor(Recorder(oracle_segmenter), outputs="logits"))
    again = infer(predictor, image, options, ensemble=Predictor(Recorder(oracle_segmenter),
                                                                outputs="logits"))
    np.testing.assert_array_equal(timed, again)
    assert plain.shape == timed.shape
    assert {"edges", "proposals", "crops", "network", "paste", "ensemble"} <= set(timings)
    assert set(timings) <= set(STAGES) and all(v >= 0 for v in timings.values())
    whole = {}
    infer(predictor, image, InferenceOptions(), timings=whole)
    assert list(whole) == ["whole"]
    cached = {}
    boxes_options = dict(edge="gradient", top_k=10, min_size=8)
    with tempfile.TemporaryDirectory() as cache:
        first = propose_boxes(image, cache_dir=cache, **boxes_options)
        again_boxes = propose_boxes(image, cache_dir=cache, timings=cached, **boxes_options)
    np.testing.assert_array_equal(first, again_boxes)
    assert list(cached) == ["proposals"]  # a cache hit computes no edges
    with pytest.raises(ValueError, match="unknown stage 'edge'"):
        with stage({}, "edge"):
            pass
    total = {}
    for _ in range(2):
        with stage(total, "crf"):
            pass
        with stage(None, "crf"):
            pass
    assert list(total) == ["crf"] and total["crf"] >= 0


# ---------------------------------------------------------------- edges (mutation-checked)


@pytest.mark.jax
def test_crop_and_paste_edges():
    image = ramp_image(8, 10)
    crop = crop_box(image, [0, 0, 10, 8], (4, 6))  # non-square output: (height, width)
    assert crop.shape == (4, 6, 3) and crop.dtype == np.float32
    same = crop_box(image, [2, 1, 7, 6], (5, 5))  # no resize needed: the pixels themselves
    assert same.dtype == np.float32
    np.testing.assert_array_equal(same, image[1:6, 2:7].astype(np.float32))
    for empty in ([3, 2, 3, 6], [3, 2, 7, 2]):  # zero width, zero height
        with pytest.raises(ValueError, match=r"Empty box .*: need x1 > x0 and y1 > y0"):
            crop_box(image, empty, (4, 4))
    scores = np.ones((4, 4, 2), np.float32)
    for outside in ([-10, 0, 0, 5], [0, -10, 5, 0], [10, 0, 14, 5], [0, 8, 5, 12]):
        assert paste_region(scores, outside, (8, 10)) is None  # touches the border only
    (rows, cols), values = paste_region(scores, [8, 6, 12, 10], image.shape)  # (H, W, 3) shape
    assert (rows, cols) == (slice(6, 8), slice(8, 10)) and values.shape == (2, 2, 2)


@pytest.mark.jax
def test_aggregate_skips_boxes_outside_and_keeps_going():
    maps = [np.full((4, 4, 2), 5.0, np.float32), np.full((4, 4, 2), 1.0, np.float32)]
    scores, covered = aggregate_boxes(maps, [[20, 20, 30, 30], [0, 0, 4, 4]], (8, 8, 3), "max")
    assert scores.dtype == np.float32 and scores.shape == (8, 8, 2)
    assert covered[:4, :4].all() and covered.sum() == 16  # the second box is still pasted
    np.testing.assert_array_equal(scores[:4, :4], 1.0)
    none, nothing = aggregate_boxes([], np.zeros((0, 4)), (5, 6, 3), "max")
    assert none.shape == (5, 6, 1) and not nothing.any()


@pytest.mark.jax
def test_predict_instances_sizes_defaults_and_whole_pass():
    image = ramp_image(40, 50)
    fake = Recorder(constant_logits(3.0, 1))
    predictor = Predictor(fake, outputs="logits", pad_rgb=(7.0, 8.0, 9.0))
    boxes = np.array([[-10, -10, 20, 20]] * 9, np.float32)
    predict_instances(predictor, image, boxes)  # defaults: 224x224 crops, 8 per call
    assert [b.shape for b in fake.batches[:2]] == [(8, 224, 224, 3), (1, 224, 224, 3)]
    # outside the image: the predictor's padding colour
    np.testing.assert_allclose(fake.batches[0][0, 0, 0], [7.0, 8.0, 9.0])
    fake.batches.clear()
    predict_instances(predictor, image, boxes[:2], input_size=(24, 32), batch_size=1)
    assert [b.shape for b in fake.batches[:2]] == [(1, 24, 32, 3)] * 2
    fixed = Recorder(constant_logits(3.0, 1))
    predict_instances(Predictor(fixed, input_size=(16, 20)), image, boxes[:1], input_size=64)
    assert fixed.batches[0].shape == (1, 16, 20, 3)  # a fixed-size model uses its own size
    small = Predictor(Recorder(constant_logits(3.0, 1)), min_input_size=16)
    predict_instances(small, image, boxes[:1], input_size=16)  # the minimum itself is fine
    # no boxes: the whole-image pass, a (H, W) bool coverage, float32 whatever `whole` is
    whole = np.full((40, 50, 3), 1 / 3)  # float64
    probs, covered = predict_instances(predictor, image, np.zeros((0, 4)), whole=whole,
                                       return_coverage=True)
    assert covered.shape == (40, 50) and covered.dtype == bool and not covered.any()
    assert probs.dtype == np.float32
    timings = {}
    predict_instances(predictor, image, boxes[:1], timings=timings)
    assert "whole" in timings  # the box covers part of the image: a whole pass ran
    with pytest.raises(ValueError) as err:
        predict_instances(predictor, image, boxes[:1], whole=np.zeros((4, 4, 3)))
    assert str(err.value) == ("whole-image probabilities (4, 4, 3) do not match the image "
                              "(40, 50)")


@pytest.mark.jax
def test_predict_instances_passes_the_aggregation_on():
    image = ramp_image(40, 50)
    boxes = np.array([[0, 0, 30, 30], [10, 10, 40, 40]], np.float32)

    def pixels_as_logits(batch):
        return np.asarray(batch, np.float32) / 64.0

    predictor = Predictor(pixels_as_logits, outputs="logits")
    maps = list(pixels_as_logits(np.stack([crop_box(image, b, (16, 16)) for b in boxes])))
    results = {}
    for aggregate in ("max", "mean"):
        results[aggregate] = predict_instances(predictor, image, boxes, input_size=16,
                                               aggregate=aggregate)
        scores, covered = aggregate_boxes(maps, boxes, image.shape, aggregate)
        np.testing.assert_allclose(results[aggregate][covered], softmax(scores)[covered],
                                   atol=1e-6)
    assert not np.allclose(results["max"][10:30, 10:30], results["mean"][10:30, 10:30])


# ------------------------------------------------------------- XLA-compiled crops (issue 21)


@pytest.mark.slow
def test_instance_crops_run_xla_compiled_by_default_with_the_same_labels():
    """predict_instances compiles a switch-pooled network's forward with XLA (Keras' "auto"
    never does on a CPU-only machine); scores match the uncompiled forward to float rounding
    and the label map is the same; False and an argmax-pooled network stay uncompiled."""
    from deconvnet_tf.inference import predict as predict_module
    from deconvnet_tf.inference.predict import as_predictor

    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5, unpooling="switch")
    image, _, _ = make_scene(5, 48, 64)
    boxes = np.array([[0, 0, 30, 30], [20, 10, 64, 48], [-8, -8, 24, 24], [5, 5, 60, 40]],
                     np.float32)
    assert as_predictor(model).jit_compile is None and as_predictor(model).supports_jit
    plain = predict_instances(model, image, boxes, input_size=32, batch_size=3,
                              jit_compile=False)
    assert model not in predict_module._COMPILED
    compiled = predict_instances(model, image, boxes, input_size=32, batch_size=3)
    assert model in predict_module._COMPILED  # the default compiled it
    np.testing.assert_allclose(compiled, plain, atol=1e-4)
    np.testing.assert_array_equal(compiled.argmax(-1), plain.argmax(-1))
    # an explicit choice on the predictor is kept
    chosen = as_predictor(model).with_jit_compile(False)
    assert chosen.jit_compile is False and chosen.with_jit_compile(True).jit_compile is True
    argmax = deconvnet_tf.build_model("deconvnet_tiny", num_classes=5, unpooling="argmax")
    assert not as_predictor(argmax).supports_jit
    predict_instances(argmax, image, boxes, input_size=32, batch_size=3)  # no compile tried
    assert argmax not in predict_module._COMPILED
    with pytest.raises(ValueError, match="cannot XLA-compile.*argmax pooling"):
        predict_instances(argmax, image, boxes, input_size=32, jit_compile=True)
    # other predictors have nothing to compile: returned unchanged
    fake = Predictor(constant_logits(1.0, 0), outputs="logits")
    assert fake.with_jit_compile(True) is fake and fake.jit_compile is None


def test_argmax_pooling_tells_keras_it_cannot_be_xla_compiled():
    from deconvnet_tf.layers import MaxPoolingWithArgmax2D, SwitchMaxPooling2D

    assert MaxPoolingWithArgmax2D().supports_jit is False
    assert SwitchMaxPooling2D().supports_jit is True


def test_compiled_forward_cache_does_not_keep_the_network_alive():
    import gc
    import weakref

    from deconvnet_tf.inference.predict import KerasForward

    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, unpooling="switch")
    batch = np.zeros((1, 32, 32, 3), np.float32)
    compiled = KerasForward(model, jit_compile=True)(batch)
    np.testing.assert_allclose(compiled, model.predict_on_batch(batch), atol=1e-5)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
