"""The segmentation loss against a NumPy computation; median-frequency weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deconvnet_tf.training.losses import SegmentationCrossEntropy, median_frequency_weights


def np_loss(labels, logits, ignore, weights=None):
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    valid = labels != ignore
    safe = np.where(valid, labels, 0)
    nll = -np.take_along_axis(logp, safe[..., None], -1)[..., 0]
    w = valid.astype(np.float64) * (1.0 if weights is None else np.asarray(weights)[safe])
    return (nll * w).sum() / w.sum()


@pytest.mark.jax
@pytest.mark.parametrize("weights", [None, [0.5, 2.0, 1.0, 3.0]])
def test_loss_matches_numpy_and_ignores_void(rng, weights):
    logits = rng.normal(size=(3, 5, 6, 4)).astype("float32")
    labels = rng.integers(0, 4, size=(3, 5, 6))
    labels[0, :2] = 255
    labels[2] = 255  # a fully void image still gives a finite batch loss
    loss = SegmentationCrossEntropy(num_classes=4, ignore_label=255, class_weights=weights)
    got = float(loss(labels, logits))
    np.testing.assert_allclose(got, np_loss(labels, logits, 255, weights), rtol=1e-5)
    # Changing the logits of void pixels changes nothing.
    logits2 = logits.copy()
    logits2[2] += 100.0
    assert float(loss(labels, logits2)) == pytest.approx(got, rel=1e-6)


@pytest.mark.jax
def test_loss_in_fit_and_config(rng):
    loss = SegmentationCrossEntropy(num_classes=3, ignore_label=2)
    clone = SegmentationCrossEntropy.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="class_weights has 2 values for 3 classes"):
        SegmentationCrossEntropy(num_classes=3, class_weights=[1, 2])
    inp = keras.Input((4, 4, 3))
    model = keras.Model(inp, keras.layers.Conv2D(3, 1)(inp))
    model.compile(optimizer="sgd", loss=loss)
    x = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    y = rng.integers(0, 3, size=(2, 4, 4))
    assert np.isfinite(model.train_on_batch(x, y))


def test_median_frequency_weights():
    # SegNet's definition: freq(c) = pixels(c) / pixels of images containing c.
    w = median_frequency_weights([10, 30, 0, 60], image_counts=[100, 100, 0, 100])
    np.testing.assert_allclose(w, [3.0, 1.0, 0.0, 0.5])
    np.testing.assert_allclose(median_frequency_weights([1, 1]), [1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        median_frequency_weights([-1, 2])


@pytest.mark.jax
def test_median_frequency_weights_by_the_definition():
    """SegNet's rule, written out: freq(c) = pixels(c) / pixels of the images containing c,
    weight = median over seen classes / freq; a class absent from the data (no pixels, or no
    image) gets 0; plain frequencies without image counts."""
    pixels = np.array([50, 20, 0, 30, 5])
    totals = np.array([400, 100, 300, 0, 50])  # class 2: in images but no pixel; 3: no image
    seen_freq = {0: 50 / 400, 1: 20 / 100, 4: 5 / 50}
    median = np.median(list(seen_freq.values()))
    expected = [median / seen_freq.get(c, np.inf) if c in seen_freq else 0.0 for c in range(5)]
    got = median_frequency_weights(pixels, image_counts=totals)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    plain = median_frequency_weights([10, 30, 60])  # total 100 for every class
    np.testing.assert_allclose(plain, [3.0, 1.0, 0.5], rtol=1e-6)
    assert median_frequency_weights(np.array([7], np.int64)).tolist() == [1.0]
    for bad in ([], [[1, 2], [3, 4]], [1, -2, 3]):
        with pytest.raises(ValueError, match="pixel_counts must be a non-empty 1-D array of "
                                             "non-negative counts"):
            median_frequency_weights(bad)


@pytest.mark.jax
def test_loss_options_change_what_they_should(rng):
    logits = rng.normal(size=(2, 3, 4, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(2, 3, 4))
    labels[0, 0, :2] = 2
    plain = SegmentationCrossEntropy(num_classes=3, ignore_label=None)
    everything = np_loss(labels, logits, ignore=-1)
    assert float(plain(labels, logits)) == pytest.approx(everything, rel=1e-5)
    # Label maps with a trailing channel axis are the same labels.
    assert float(plain(labels[..., None], logits)) == pytest.approx(everything, rel=1e-5)
    # Probabilities instead of logits.
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    as_probs = SegmentationCrossEntropy(num_classes=3, ignore_label=None, from_logits=False)
    assert float(as_probs(labels, probs)) == pytest.approx(everything, rel=1e-4)
    # The batch's weighted mean, whatever the batch size (Keras' division is undone).
    one = SegmentationCrossEntropy(num_classes=3, ignore_label=2)
    assert float(one(labels, logits)) == pytest.approx(np_loss(labels, logits, 2), rel=1e-5)
    all_void = np.full((1, 3, 4), 2)
    assert float(one(all_void, logits[:1])) == 0.0  # finite: the denominator is clamped
    config = SegmentationCrossEntropy(num_classes=3, ignore_label=None, class_weights=[1, 2, 3],
                                      from_logits=False).get_config()
    assert (config["num_classes"], config["ignore_label"], config["class_weights"],
            config["from_logits"]) == (3, None, [1.0, 2.0, 3.0], False)
    assert SegmentationCrossEntropy(num_classes=3).get_config()["ignore_label"] == 255


@pytest.mark.jax
def test_loss_name_options_fractional_weights_and_per_sample_shape():
    assert SegmentationCrossEntropy(3).name == "segmentation_cross_entropy"
    assert SegmentationCrossEntropy(3, reduction="sum").reduction == "sum"  # kwargs reach Keras
    logits = np.random.default_rng(0).normal(size=(1, 2, 3, 2)).astype("float32")  # N != H
    labels = np.array([[[0, 1, 255], [1, 0, 0]]], "int32")
    weights = [0.1, 0.05]  # they sum to < 1 over the labelled pixels: still a weighted mean
    loss = SegmentationCrossEntropy(2, class_weights=weights)
    per_sample = np.asarray(loss.call(labels, logits))
    assert per_sample.shape == (1,)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = labels != 255
    safe = np.where(valid, labels, 0)
    nll = -np.take_along_axis(log_probs, safe[..., None], -1)[..., 0]
    w = np.where(valid, np.asarray(weights)[safe], 0.0)
    np.testing.assert_allclose(per_sample[0], (nll * w).sum() / w.sum(), rtol=1e-5)


def test_median_frequency_weights_edges():
    # A class in one image of one pixel counts (total 1 > 0): freq 1.0 and 0.5, median 0.75.
    np.testing.assert_allclose(median_frequency_weights([1, 4], [1, 8]), [0.75, 1.5])
    with pytest.raises(ValueError) as err:
        median_frequency_weights([])
    assert str(err.value) == "pixel_counts must be a non-empty 1-D array of non-negative counts"


@pytest.mark.jax
def test_median_frequency_weights_power_interpolates_between_none_and_segnet():
    """``power`` raises SegNet's ratio: 0 gives 1 for every seen class, 0.5 its square root,
    1 the ratio itself; unseen classes stay 0; a negative or non-finite power is refused."""
    pixels, totals = [10, 30, 0, 60], [100, 100, 0, 100]
    full = median_frequency_weights(pixels, totals)
    np.testing.assert_allclose(median_frequency_weights(pixels, totals, power=1.0), full)
    np.testing.assert_allclose(median_frequency_weights(pixels, totals, power=0.5),
                               [np.sqrt(3.0), 1.0, 0.0, np.sqrt(0.5)], rtol=1e-6)
    np.testing.assert_allclose(median_frequency_weights(pixels, totals, power=0.0), [1, 1, 0, 1])
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="power must be a finite number >= 0"):
            median_frequency_weights(pixels, totals, power=bad)
