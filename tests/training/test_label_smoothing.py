"""Label smoothing of the segmentation loss against NumPy (its config field and flag:
tests/training/test_lovasz.py, with the other loss settings')."""

from __future__ import annotations

import numpy as np
import pytest

from deconvnet_tf.training.config import ConfigError, TrainConfig
from deconvnet_tf.training.losses import SegmentationCrossEntropy
from tests.training.loss_checks import assert_matches_reference, train_one_step


def np_smoothed(labels, logits, ignore, eps, weights=None, gamma=0.0):
    """Cross-entropy against ``(1 - eps) * onehot + eps / C``, the focal factor of the true
    class's probability, the mean over labelled pixels weighted by the class weights."""
    z = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    valid = labels != ignore
    safe = np.where(valid, labels, 0)
    target = (1 - eps) * np.eye(logits.shape[-1])[safe] + eps / logits.shape[-1]
    pixel = -(target * logp).sum(-1)
    logp_true = np.take_along_axis(logp, safe[..., None], -1)[..., 0]
    pixel = pixel * (1.0 - np.exp(logp_true)) ** gamma
    w = valid * (1.0 if weights is None else np.asarray(weights, np.float64)[safe])
    return (pixel * w).sum() / w.sum()


@pytest.mark.jax
@pytest.mark.parametrize("eps", [0.05, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("weights, gamma", [(None, 0.0), ([0.5, 2.0, 1.0, 3.0], 0.0),
                                            ([0.5, 2.0, 1.0, 3.0], 2.0)])
def test_label_smoothing_matches_numpy_and_ignores_void(rng, eps, weights, gamma):
    loss = SegmentationCrossEntropy(num_classes=4, ignore_label=255, class_weights=weights,
                                    focal_gamma=gamma, label_smoothing=eps)
    assert_matches_reference(
        loss, lambda y, z: np_smoothed(y, z, 255, eps, weights, gamma), rng)


@pytest.mark.jax
def test_smoothing_zero_is_the_cross_entropy_and_probabilities_agree_with_logits(rng):
    logits = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(2, 4, 5))
    plain = float(SegmentationCrossEntropy(num_classes=3)(labels, logits))
    assert float(SegmentationCrossEntropy(num_classes=3, label_smoothing=0)(labels, logits)) \
        == plain
    smoothed = SegmentationCrossEntropy(num_classes=3, label_smoothing=0.2)
    from_probs = SegmentationCrossEntropy(num_classes=3, label_smoothing=0.2, from_logits=False)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert float(from_probs(labels, probs)) == pytest.approx(float(smoothed(labels, logits)),
                                                             rel=1e-5)
    # A confidently right pixel is no longer nearly free: the smoothed target wants mass on
    # the other classes, so the loss is minimal at a finite logit gap.
    confident = np.zeros((1, 1, 1, 3), "float32")
    confident[..., 0] = 30.0
    label = np.zeros((1, 1, 1), int)
    assert float(smoothed(label, confident)) == pytest.approx(
        np_smoothed(label, confident, 255, 0.2), rel=1e-5)
    assert float(smoothed(label, confident)) > 1.0


@pytest.mark.jax
def test_label_smoothing_trains_with_finite_gradients(rng):
    train_one_step(SegmentationCrossEntropy(num_classes=3, label_smoothing=0.1), rng)


def test_label_smoothing_in_the_loss_config_and_its_checks():
    loss = SegmentationCrossEntropy(num_classes=3, label_smoothing=0.1)
    assert SegmentationCrossEntropy.from_config(loss.get_config()).label_smoothing == 0.1
    for bad in (-0.1, 1.0, 2.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"label_smoothing must be a number in \[0, 1\)"):
            SegmentationCrossEntropy(num_classes=3, label_smoothing=bad)
        with pytest.raises(ConfigError, match="config field .label_smoothing."):
            TrainConfig(label_smoothing=bad)
