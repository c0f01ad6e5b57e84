"""The Lovasz-softmax term against a NumPy port of the authors' reference (Berman et al. 2018,
``lovasz_softmax_flat`` with ``classes="present"``), and its use in the training loss."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deconvnet_tf.training.config import ConfigError, TrainConfig
from deconvnet_tf.training.losses import SegmentationCrossEntropy, lovasz_softmax


def np_lovasz_grad(gt_sorted):
    gts = gt_sorted.sum()
    intersection = gts - np.cumsum(gt_sorted)
    union = gts + np.cumsum(1.0 - gt_sorted)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def np_lovasz_softmax(labels, probs, ignore):
    """The reference: drop void pixels, then per present class sort the errors."""
    probs = probs.reshape(-1, probs.shape[-1]).astype(np.float64)
    labels = labels.reshape(-1)
    keep = labels != ignore
    probs, labels = probs[keep], labels[keep]
    losses = []
    for c in range(probs.shape[1]):
        fg = (labels == c).astype(np.float64)
        if fg.sum() == 0:
            continue
        errors = np.abs(fg - probs[:, c])
        order = np.argsort(-errors, kind="stable")
        losses.append(float(np.dot(errors[order], np_lovasz_grad(fg[order]))))
    return float(np.mean(losses)) if losses else 0.0


def softmax(z):
    z = np.exp(z - z.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


@pytest.mark.jax
@pytest.mark.parametrize("num_classes", [2, 4])
def test_lovasz_matches_the_reference_and_ignores_void(rng, num_classes):
    probs = softmax(rng.normal(size=(3, 5, 7, num_classes)).astype("float32"))
    labels = rng.integers(0, num_classes, size=(3, 5, 7))
    labels[0, :2] = 255
    labels[1][labels[1] == 0] = 1  # class 0 rarer; with 4 classes one may be absent
    got = float(lovasz_softmax(labels, probs, num_classes, 255))
    want = np_lovasz_softmax(labels, probs, 255)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # void pixels' probabilities change nothing
    probs2 = probs.copy()
    probs2[0, :2] = probs2[0, :2, :, ::-1]
    assert float(lovasz_softmax(labels, probs2, num_classes, 255)) == pytest.approx(got, rel=1e-6)


@pytest.mark.jax
def test_lovasz_is_zero_when_perfect_and_one_when_all_wrong_and_zero_without_labels():
    labels = np.array([[[0, 1, 1], [1, 0, 0]]])
    perfect = np.eye(2, dtype="float32")[labels]
    assert float(lovasz_softmax(labels, perfect, 2)) == pytest.approx(0.0, abs=1e-7)
    assert float(lovasz_softmax(labels, 1.0 - perfect, 2)) == pytest.approx(1.0, abs=1e-6)
    void = np.full_like(labels, 255)
    assert float(lovasz_softmax(void, perfect, 2, 255)) == 0.0


@pytest.mark.jax
def test_cross_entropy_plus_lovasz_weight_in_the_loss_and_its_config(rng):
    logits = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(2, 4, 5))
    plain = float(SegmentationCrossEntropy(num_classes=3)(labels, logits))
    both = SegmentationCrossEntropy(num_classes=3, lovasz_weight=0.5)
    want = plain + 0.5 * np_lovasz_softmax(labels, softmax(logits), 255)
    assert float(both(labels, logits)) == pytest.approx(want, rel=1e-5)
    assert SegmentationCrossEntropy.from_config(both.get_config()).lovasz_weight == 0.5
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lovasz_weight must be a finite number >= 0"):
            SegmentationCrossEntropy(num_classes=3, lovasz_weight=bad)
    # it trains: gradients flow through the sorted errors
    inp = keras.Input((4, 5, 3))
    model = keras.Model(inp, keras.layers.Conv2D(3, 1)(inp))
    model.compile(optimizer="sgd", loss=SegmentationCrossEntropy(num_classes=3, lovasz_weight=1))
    x = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    assert np.isfinite(model.train_on_batch(x, labels))
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("field, value", [("lovasz_weight", 0.5), ("focal_gamma", 1),
                                          ("label_smoothing", 0.5)])
def test_loss_config_fields_are_checked(field, value):
    assert getattr(TrainConfig(**{field: float(value)}), field) == value
    assert getattr(TrainConfig.from_dict({field: value}), field) == value
    for bad in (-0.5, float("nan"), True, "1"):
        with pytest.raises(ConfigError, match=field):
            TrainConfig(**{field: bad})


@pytest.mark.parametrize("field, value", [("lovasz_weight", 1), ("focal_gamma", 2),
                                          ("label_smoothing", 0.1)])
def test_the_documented_loss_flags_reach_the_compiled_loss(field, value):
    """docs/training.md: ``--set lovasz_weight=1`` adds the Lovasz term to the run's loss,
    ``--set focal_gamma=2`` makes its cross-entropy focal, ``--set label_smoothing=0.1``
    smooths its targets; without them all are off."""
    from deconvnet_tf.cli import train as train_cli
    from deconvnet_tf.training.train import _build_and_compile

    parser = train_cli._parser()
    config = train_cli.resolve_config(
        parser, parser.parse_args(["--preset", "deconvnet_tiny", "--set", f"{field}={value}"]))
    assert getattr(config, field) == value
    model = _build_and_compile(config, 3, 255, None, False, {})
    assert getattr(model.loss, field) == float(value)
    plain = _build_and_compile(train_cli.resolve_config(
        parser, parser.parse_args(["--preset", "deconvnet_tiny"])), 3, 255, None, False, {})
    assert getattr(plain.loss, field) == 0.0
