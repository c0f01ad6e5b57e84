"""The test helper that compares another runtime's labels with reference scores."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import assert_labels_match


@pytest.mark.jax
def test_near_ties_may_fall_either_way_and_decided_pixels_may_not():
    scores = np.array([[[0.5, 0.5 + 1e-6, 0.0], [0.9, 0.05, 0.05]]] * 200).reshape(20, 20, 3)
    labels = scores.argmax(-1)
    flipped = labels.copy()
    flipped[0, 0] = 0  # a near-tie (margin 1e-6 < 2e-4): either answer is right
    with pytest.raises(AssertionError, match="near-tie pixels"):
        assert_labels_match(flipped, scores, 1e-4)  # half the pixels are ties: too many
    assert_labels_match(flipped, scores, 1e-4, min_decided=0.5)
    wrong = labels.copy()
    wrong[0, 1] = 2  # a decided pixel (margin 0.85)
    with pytest.raises(AssertionError):
        assert_labels_match(wrong, scores, 1e-4, min_decided=0.5)
