"""Behaviour of the segmentation loss pinned by mutation testing (mutmut survivors): labels
with a trailing channel axis, at batch size 1 and with a height or width of 1."""

from __future__ import annotations

import numpy as np
import pytest

from deconvnet_tf.training.losses import SegmentationCrossEntropy


@pytest.mark.jax
@pytest.mark.parametrize("shape", [(1, 2, 3), (1, 1, 3), (2, 1, 1)])
def test_trailing_label_axis_is_the_only_one_dropped(shape):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=shape + (3,)).astype("float32")
    labels = rng.integers(0, 3, shape).astype("int32")
    loss = SegmentationCrossEntropy(3)
    expected = np.asarray(loss.call(labels, logits))
    got = np.asarray(loss.call(labels[..., None], logits))  # (N, H, W, 1) labels
    assert got.shape == expected.shape == (shape[0],)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
