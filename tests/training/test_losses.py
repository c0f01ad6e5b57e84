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
