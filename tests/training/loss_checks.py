"""Checks shared by the tests of the segmentation loss's settings (focal modulation, label
smoothing): void pixels count nowhere, and a small model trains with finite weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest


def assert_matches_reference(loss, reference, rng) -> None:
    """``loss`` (4 classes, void label 255) equals ``reference(labels, logits)`` on random
    logits and labels with void pixels, and raising the void pixels' logits by 50 changes
    nothing."""
    logits = (3 * rng.normal(size=(3, 5, 6, 4))).astype("float32")
    labels = rng.integers(0, 4, size=(3, 5, 6))
    labels[0, :2] = 255
    got = float(loss(labels, logits))
    np.testing.assert_allclose(got, reference(labels, logits), rtol=1e-5)
    changed = logits.copy()
    changed[labels == 255] += 50.0
    assert float(loss(labels, changed)) == pytest.approx(got, rel=1e-6)


def train_one_step(loss, rng):
    """Compiles a 1x1-conv model with ``loss``, takes one SGD step on random data and asserts
    a finite loss, finite weights that moved; returns the model and its inputs."""
    inp = keras.Input((4, 5, 3))
    model = keras.Model(inp, keras.layers.Conv2D(3, 1)(inp))
    model.compile(optimizer="sgd", loss=loss)
    labels = rng.integers(0, 3, size=(2, 4, 5))
    x = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    assert np.isfinite(model.train_on_batch(x, labels))
    after = model.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    assert any(not np.allclose(a, b) for a, b in zip(before, after))
    return model, x
