"""The size rule of deconvnet_tf.io (shared by the Keras, SavedModel and LiteRT predictors) by
property: what plan_size promises for any image and model, and that fit_image / restore_scores /
upscale_labels / resize_channels do exactly what a direct OpenCV/NumPy computation does."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconvnet_tf.io import (
    SizePlan,
    downscale_message,
    fit_image,
    plan_size,
    resize_channels,
    restore_scores,
    upscale_labels,
)

pytestmark = pytest.mark.jax  # NumPy/OpenCV only
RULES = settings(max_examples=60, deadline=None, derandomize=True)
sides = st.integers(1, 3000)


@RULES
@given(sides, sides, st.one_of(st.none(), st.integers(1, 5_000_000)), st.integers(0, 300))
def test_plan_size_promises(height, width, max_pixels, min_size):
    plan = plan_size(height, width, max_pixels=max_pixels, min_size=min_size)
    assert (plan.height, plan.width) == (height, width)
    h, w = plan.scaled
    if max_pixels is None or height * width <= max_pixels:
        assert plan.scaled == (height, width) and not plan.downscaled and not plan.resized
    else:
        assert plan.downscaled and plan.resized
        assert h * w <= max_pixels and h >= 1 and w >= 1
        scale = math.sqrt(max_pixels / (height * width))  # as large as the budget allows
        assert (h, w) == (max(1, int(height * scale)), max(1, int(width * scale)))
    minimum = max(1, min_size)
    assert plan.padded == (max(h, minimum), max(w, minimum))
    assert plan.identity == (plan.padded == (height, width) and not plan.resized)


def test_plan_size_fixed_input_and_errors():
    plan = plan_size(7, 9, input_size=(32, 48), max_pixels=10, min_size=99)
    assert plan == SizePlan(7, 9, (32, 48), (32, 48)) and plan.resized and not plan.downscaled
    assert plan_size(32, 48, input_size=(32, 48)).identity
    for bad in ((0, 5), (5, 0)):
        with pytest.raises(ValueError, match="empty image of size"):
            plan_size(*bad)
    with pytest.raises(ValueError, match="max_pixels must be >= 1 or None, got 0"):
        plan_size(5, 5, max_pixels=0)
    assert plan_size(3000, 4000, max_pixels=2_000_000).scaled == (1224, 1632)
    assert plan_size(9, 30, min_size=17).padded == (17, 30)
    message = downscale_message("big.jpg", plan_size(3000, 4000, max_pixels=2_000_000), 2_000_000)
    assert message == ("'big.jpg' is 3000x4000 (12,000,000 pixels), above --max-pixels 2000000: "
                       "predicting at 1224x1632 and resizing the labels back to 3000x4000")


@RULES
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from([None, 150, 600]),
       st.integers(1, 48), st.sampled_from(["uint8", "float32"]))
def test_fit_image_resizes_then_pads_with_the_mean(height, width, max_pixels, min_size, dtype):
    rng = np.random.default_rng(height * 100 + width)
    image = rng.integers(0, 256, (height, width, 3)).astype(dtype)
    plan = plan_size(height, width, max_pixels=max_pixels, min_size=min_size)
    pad = (10, 20, 30)
    out = fit_image(image, plan, pad)
    assert out.shape == plan.padded + (3,) and out.dtype == image.dtype
    if plan.resized:
        method = cv2.INTER_AREA if plan.downscaled else cv2.INTER_LINEAR
        expected = cv2.resize(image, plan.scaled[::-1], interpolation=method)
    else:
        expected = image
    np.testing.assert_array_equal(out[:plan.scaled[0], :plan.scaled[1]], expected)
    np.testing.assert_array_equal(out[plan.scaled[0]:], np.broadcast_to(
        np.array(pad, dtype), out[plan.scaled[0]:].shape))
    np.testing.assert_array_equal(out[:, plan.scaled[1]:], np.broadcast_to(
        np.array(pad, dtype), out[:, plan.scaled[1]:].shape))
    if plan.identity:
        assert out is image


def test_fit_image_to_a_fixed_input_is_bilinear():
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    plan = plan_size(5, 7, input_size=(10, 14))
    np.testing.assert_array_equal(fit_image(image, plan),
                                  cv2.resize(image, (14, 10), interpolation=cv2.INTER_LINEAR))


@RULES
@given(st.integers(1, 30), st.integers(1, 30), st.sampled_from([None, 120]), st.integers(1, 40))
def test_restore_scores_crops_padding_and_resizes_back(height, width, max_pixels, min_size):
    plan = plan_size(height, width, max_pixels=max_pixels, min_size=min_size)
    rng = np.random.default_rng(7)
    scores = rng.normal(size=plan.padded + (5,)).astype(np.float32)
    out = restore_scores(scores, plan)
    assert out.shape == (height, width, 5)
    core = scores[:plan.scaled[0], :plan.scaled[1]]
    expected = core if core.shape[:2] == (height, width) else cv2.resize(
        core, (width, height), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("channels", [1, 3, 130, 300])
def test_resize_channels_equals_per_channel_opencv(channels):
    rng = np.random.default_rng(channels)
    array = rng.normal(size=(6, 9, channels)).astype(np.float32)
    out = resize_channels(array, 13, 4)
    assert out.shape == (13, 4, channels)
    for c in (0, channels // 2, channels - 1):
        np.testing.assert_allclose(out[..., c], cv2.resize(
            np.ascontiguousarray(array[..., c]), (4, 13), interpolation=cv2.INTER_LINEAR),
            rtol=1e-6, atol=1e-6)
    nearest = resize_channels(array[..., 0], 12, 18, interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(nearest, cv2.resize(array[..., 0], (18, 12),
                                                      interpolation=cv2.INTER_NEAREST))
    assert resize_channels(array, 6, 9) is array


@pytest.mark.parametrize("classes, dtype", [(3, np.uint8), (256, np.uint8), (300, np.int32)])
def test_upscale_labels_is_the_argmax_of_the_resized_probabilities(classes, dtype):
    rng = np.random.default_rng(classes)
    probs = rng.random((5, 7, classes)).astype(np.float32)
    probs[0, 0, :] = 0.5  # a tie: the lowest class wins, as np.argmax
    labels = upscale_labels(probs, 11, 16)
    assert labels.dtype == dtype and labels.shape == (11, 16)
    np.testing.assert_array_equal(labels, resize_channels(probs, 11, 16).argmax(-1))
    assert labels[0, 0] == 0
    np.testing.assert_array_equal(upscale_labels(probs, 5, 7), probs.argmax(-1))


def test_upscale_labels_in_groups_of_classes():
    """A large output makes several class groups: the result must not depend on them."""
    rng = np.random.default_rng(0)
    probs = rng.random((4, 4, 9)).astype(np.float32)
    height, width = 2400, 3000  # 64 MiB / (h * w * 4 bytes) = 2 classes per group
    labels = upscale_labels(probs, height, width)
    expected = resize_channels(probs, height, width).argmax(-1)
    np.testing.assert_array_equal(labels, expected)
