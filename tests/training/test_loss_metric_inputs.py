"""The segmentation loss and metric as a Keras user calls them, with odd inputs, against the
obvious references: keras.losses.SparseCategoricalCrossentropy(ignore_class=...) and
keras.metrics.MeanIoU(ignore_class=...)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deconvnet_tf.evaluation.metrics import mean_iou_metric
from deconvnet_tf.training.losses import SegmentationCrossEntropy

C, VOID = 4, 255


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 6, C)).astype("float32")
    labels = rng.integers(0, C, (2, 5, 6)).astype("int32")
    labels[0, 0, :3] = VOID
    return labels, logits


def _reference(labels, logits, **kwargs):
    ref = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=VOID)
    return float(ref(labels, logits, **kwargs))


@pytest.mark.jax
def test_label_layouts_and_dtypes_give_the_reference(batch):
    labels, logits = batch
    loss = SegmentationCrossEntropy(C, VOID)
    expected = _reference(labels, logits)
    for same in (labels, labels[..., None], labels.astype("float32"), labels.astype("uint8")):
        assert float(loss(same, logits)) == pytest.approx(expected, rel=1e-5)
    for dtype in ("float16", "bfloat16"):  # mixed-precision logits
        low = keras.ops.cast(logits, dtype)
        assert float(loss(labels, low)) == pytest.approx(_reference(labels, low), rel=1e-4)


@pytest.mark.jax
def test_scores_of_void_pixels_count_nowhere_even_nan(batch):
    labels, logits = batch
    poisoned = logits.copy()
    poisoned[0, 0, 0] = np.nan  # a void pixel
    poisoned[0, 0, 1, 2] = np.inf  # another
    loss = SegmentationCrossEntropy(C, VOID)
    assert float(loss(labels, poisoned)) == pytest.approx(_reference(labels, logits), rel=1e-5)
    for option in ({"lovasz_weight": 1.0}, {"focal_gamma": 2.0}, {"label_smoothing": 0.1}):
        with_option = SegmentationCrossEntropy(C, VOID, **option)
        assert float(with_option(labels, poisoned)) == pytest.approx(
            float(with_option(labels, logits)), rel=1e-5)
    probabilities = keras.ops.softmax(poisoned)  # NaN rows at the void pixels
    as_probs = SegmentationCrossEntropy(C, VOID, from_logits=False)
    assert np.isfinite(float(as_probs(labels, probabilities)))


@pytest.mark.jax
@pytest.mark.parametrize("shape", ["pixel", "pixel1", "image"])
def test_sample_weight_weights_pixels_as_the_reference(batch, shape):
    labels, logits = batch
    rng = np.random.default_rng(1)
    loss = SegmentationCrossEntropy(C, VOID)
    per_image = rng.uniform(size=2).astype("float32")
    pixels = rng.uniform(size=labels.shape).astype("float32")
    if shape == "image":  # the reference refuses (N,): the same weight on every pixel
        weights, expected = per_image, _reference(
            labels, logits, sample_weight=np.broadcast_to(per_image[:, None, None], labels.shape))
    else:
        weights = pixels if shape == "pixel" else pixels[..., None]
        expected = _reference(labels, logits, sample_weight=weights)
    assert float(loss(labels, logits, sample_weight=weights)) == pytest.approx(expected, rel=1e-5)
    assert float(loss(labels, logits, sample_weight=2.0)) == pytest.approx(
        2 * float(loss(labels, logits)), rel=1e-6)
    with pytest.raises(ValueError, match=r"sample_weight of shape \(2, 5\) does not fit"):
        loss(labels, logits, sample_weight=np.ones((2, 5), "float32"))


@pytest.mark.jax
def test_empty_batch_gives_zero_like_the_reference():
    loss = SegmentationCrossEntropy(C, VOID, lovasz_weight=1.0)
    labels, logits = np.zeros((0, 5, 6), "int32"), np.zeros((0, 5, 6, C), "float32")
    got = loss(labels, logits)
    assert tuple(got.shape) == () and float(got) == _reference(labels, logits) == 0.0


@pytest.mark.jax
def test_bad_labels_and_settings_are_clear_value_errors(batch):
    labels, logits = batch
    loss = SegmentationCrossEntropy(C, VOID)
    for bad in (7, -1):
        wrong = labels.copy()
        wrong[1, 1, 1] = bad
        with pytest.raises(ValueError, match=rf"y_true holds label\(s\) \[{bad}\] outside the "
                                             r"classes 0..3 \(ignore_label=255\)"):
            loss(wrong, logits)
    with pytest.raises(ValueError, match=r"label\(s\) \[255\] outside .*ignore_label=None"):
        SegmentationCrossEntropy(C, ignore_label=None)(labels, logits)
    with pytest.raises(ValueError, match=r"y_true of shape \(2, 4, 6\) does not fit y_pred"):
        loss(labels[:, :4], logits)
    with pytest.raises(ValueError, match=r"y_true of shape \(5, 6\) does not fit y_pred"):
        loss(labels[0], logits)
    cases = [({"num_classes": 0}, "num_classes must be >= 1, got 0"),
             ({"num_classes": "x"}, "num_classes must be an integer, got 'x'"),
             ({"num_classes": 2.5}, "num_classes must be an integer, got 2.5"),
             ({"ignore_label": "x"}, "ignore_label must be an integer, got 'x'"),
             ({"class_weights": [1, 1, np.nan, 1]}, "class_weights must be finite numbers >= 0"),
             ({"class_weights": [1, -1, 1, 1]}, "class_weights must be finite numbers >= 0"),
             ({"class_weights": "abcd"}, "class_weights must be finite numbers >= 0")]
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            SegmentationCrossEntropy(**{"num_classes": C, **change})


@pytest.mark.jax
def test_fit_takes_labels_with_a_channel_after_labels_without_and_sample_weights(batch):
    """One model fitted with (N, H, W) labels, then (N, H, W, 1) ones and per-image and
    per-pixel sample weights: the retraced step sees labels and weights of unknown rank."""
    labels, _ = batch
    x = np.random.default_rng(2).normal(size=(2, 5, 6, 3)).astype("float32")
    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, keras.layers.Conv2D(C, 1)(inp))
    model.compile(optimizer="sgd", loss=SegmentationCrossEntropy(C, VOID))
    for kwargs in ({"y": labels}, {"y": labels[..., None]},
                   {"y": labels, "sample_weight": np.ones(2, "float32")},
                   {"y": labels, "sample_weight": np.ones(labels.shape, "float32")}):
        history = model.fit(x, batch_size=2, epochs=1, verbose=0, **kwargs).history
        assert np.isfinite(history["loss"][0])
    weights = np.random.default_rng(3).uniform(size=labels.shape).astype("float32")
    expected = _reference(labels, model.predict(x, verbose=0), sample_weight=weights)
    got = model.evaluate(x, labels, sample_weight=weights, batch_size=2, verbose=0)
    assert got == pytest.approx(expected, rel=1e-5)


@pytest.mark.jax
def test_mean_iou_metric_is_the_keras_reference(batch):
    labels, logits = batch
    reference = keras.metrics.MeanIoU(num_classes=C, ignore_class=VOID, sparse_y_pred=False)
    ours = mean_iou_metric(C, VOID)
    for y in (labels, labels[..., None]):
        reference.update_state(y, logits)
        ours.update_state(y, logits)
    assert float(ours.result()) == float(reference.result())
