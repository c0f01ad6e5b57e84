"""The focal modulation of the segmentation loss against NumPy (its config field and flag:
tests/training/test_lovasz.py, with the Lovasz term's)."""

from __future__ import annotations

import numpy as np
import pytest

from deconvnet_tf.training.losses import SegmentationCrossEntropy
from tests.training.loss_checks import assert_matches_reference, train_one_step


def np_focal(labels, logits, ignore, gamma, weights=None):
    """Lin et al.'s focal loss, the mean over labelled pixels weighted by the class weights."""
    z = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    valid = labels != ignore
    safe = np.where(valid, labels, 0)
    logp_true = np.take_along_axis(logp, safe[..., None], -1)[..., 0]
    focal = -((1.0 - np.exp(logp_true)) ** gamma) * logp_true
    w = valid * (1.0 if weights is None else np.asarray(weights, np.float64)[safe])
    return (focal * w).sum() / w.sum()


@pytest.mark.jax
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("weights", [None, [0.5, 2.0, 1.0, 3.0]])
def test_focal_loss_matches_numpy_and_ignores_void(rng, gamma, weights):
    loss = SegmentationCrossEntropy(num_classes=4, ignore_label=255, class_weights=weights,
                                    focal_gamma=gamma)
    assert_matches_reference(loss, lambda y, z: np_focal(y, z, 255, gamma, weights), rng)


@pytest.mark.jax
def test_gamma_zero_is_the_cross_entropy_and_confident_pixels_count_less(rng):
    logits = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(2, 4, 5))
    plain = float(SegmentationCrossEntropy(num_classes=3)(labels, logits))
    assert float(SegmentationCrossEntropy(num_classes=3, focal_gamma=0)(labels, logits)) == plain
    focal = float(SegmentationCrossEntropy(num_classes=3, focal_gamma=2)(labels, logits))
    assert 0 < focal < plain
    # A confidently right pixel (p ~ 1 - 6.7e-4): weighted by (1 - p)^2 ~ 4.5e-7.
    confident = np.zeros((1, 1, 1, 3), "float32")
    confident[..., 0] = 8.0
    label = np.zeros((1, 1, 1), int)
    value = float(SegmentationCrossEntropy(num_classes=3, focal_gamma=2)(label, confident))
    assert value == pytest.approx(np_focal(label, confident, 255, 2), rel=1e-2)
    assert 0 < value < 1e-9


@pytest.mark.jax
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_focal_loss_trains_with_finite_gradients_also_when_certain(rng, gamma):
    model, x = train_one_step(SegmentationCrossEntropy(num_classes=3, focal_gamma=gamma), rng)
    # p == 1 in float32 (logit gap 200): the gradient stays finite (floored 1 - p).
    model.layers[-1].kernel.assign(np.zeros((1, 1, 3, 3), "float32"))
    model.layers[-1].bias.assign(np.array([200.0, 0.0, 0.0], "float32"))
    assert np.isfinite(model.train_on_batch(x, np.zeros((2, 4, 5), int)))
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_focal_gamma_in_the_loss_config_and_its_checks():
    loss = SegmentationCrossEntropy(num_classes=3, focal_gamma=2)
    assert SegmentationCrossEntropy.from_config(loss.get_config()).focal_gamma == 2.0
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="focal_gamma must be a finite number >= 0"):
            SegmentationCrossEntropy(num_classes=3, focal_gamma=bad)
