"""Behaviour pinned by mutation testing (mutmut survivors of ``augment``, ``augment_np`` and
``augment_spec``): the spec's exact random stream, its boundaries and defaults, and details of
both executors that the parity tests (which compare the executors with each other) cannot see.

The NumPy tests run on every backend; the tf.data ones are marked ``requires_tf``.
"""

from __future__ import annotations

import numpy as np
import pytest

from deconvnet_tf.data import augment_np
from deconvnet_tf.data import augment_spec as spec
from tests.conftest import requires_tf

# A key whose FLIP draw is exactly 0.5 (built by inverting SplitMix64's finaliser): the flip
# probability is P(u < 0.5) over u in [0, 1), so this key must not flip.
HALF_KEY = (0, -8271328550972655671)
FLIP_KEY = (0, 2)  # the first small key whose flip draw is True


def ramp():
    """Every grey level once: a 16x16 RGB image of 0..255."""
    v = np.arange(256, dtype=np.uint8).reshape(16, 16)
    return np.stack([v, v, v], -1)


def asymmetric(h=4, w=5):
    image = np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)
    label = np.arange(h * w, dtype=np.uint8).reshape(h, w)
    return image, label


# ------------------------------------------------------------------------------ augment_spec
def test_mix_is_splitmix64_finaliser():
    # SplitMix64 seeded with 0 outputs mix(0 + golden gamma) = 0xE220A8397B1DCDAF first.
    assert spec._mix(0x9E3779B97F4A7C15) == 0xE220A8397B1DCDAF
    assert spec._mix(0) == 0
    assert spec._mix(1) == 0x5692161D100B05E5


def test_spec_stream_is_pinned():
    """The same key gives the same augmentation in every version (a change here is a change
    of every training run's augmentation)."""
    assert spec._bits((0, 0), spec.SCALE) == 0x71632025EC0993C5
    assert spec._bits((5, 9), spec.FLIP) == 0x15654323F681B3E0
    assert spec.draw((0, 17), 360, 480, crop_size=(224, 224)) == spec.AugmentParams(
        scale=1.1414201570258977, height=411, width=548, top=86, left=283, flip=True,
        jitter=True, brightness=0.08703878111107122, contrast=0.8166223004686772,
        saturation=0.8991316482523883)


def test_flip_is_false_at_exactly_one_half():
    assert spec.uniform(spec.as_key(HALF_KEY), spec.FLIP) == 0.5
    assert spec.flip(HALF_KEY) is False


def test_generator_key_draws_from_zero():
    assert spec.as_key(np.random.default_rng(0)) == (5874934615388537135, 2488343231644625808)


def test_randint_message():
    with pytest.raises(ValueError) as err:
        spec.randint((0, 0), spec.CROP_TOP, 0)
    assert str(err.value) == "randint needs n >= 1, got 0"


def test_spec_defaults_are_used():
    key = (0, 3)
    assert spec.jitter_factors(key) == spec.jitter_factors(key, 0.2, 0.2, 0.2)
    assert spec.scale_factor(key) == spec.scale_factor(key, 0.75, 1.25)
    assert spec.scaled_size(key, 1000, 1000) == spec.scaled_size(key, 1000, 1000, 0.75, 1.25)


# ------------------------------------------------------------------------------ augment_np
def test_numpy_resize_to_the_same_size_returns_the_inputs():
    image, label = asymmetric()
    out_image, out_label = augment_np.resize(image, label, 4, 5)
    assert out_image is image and out_label is label


def test_numpy_colours_are_computed_in_float32():
    # Brightness (k + 0.5) / 255 puts every grey level on a rounding tie, which float32 and
    # float64 break differently: the executor is float32 throughout, as tf.image.
    image, delta = ramp(), -39.5 / 255
    expected = np.clip(np.round((image.astype(np.float32) / np.float32(255) + np.float32(delta))
                                * np.float32(255)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(augment_np.adjust_colors(image, delta, None, None), expected)
    # apply_params without rescaling: the same float32 steps (contrast/saturation factor 1).
    label = np.zeros((16, 16), np.uint8)
    params = spec.AugmentParams(scale=1.0, height=16, width=16, top=0, left=0, flip=False,
                                jitter=True, brightness=delta, contrast=1.0, saturation=1.0)
    out, _ = augment_np.apply_params(image, label, params, crop_size=(16, 16), ignore_label=255)
    np.testing.assert_array_equal(out, augment_np.adjust_colors(image, delta, 1.0, 1.0))


def test_numpy_saturation_keeps_pixels_without_value():
    # V <= 0 (possible after a negative brightness delta): no saturation to change.
    x = np.array([[[0.0, -0.1, -0.2], [-0.3, -0.1, -0.2]]], np.float32)
    for factor in (0.5, 1.5):
        np.testing.assert_array_equal(augment_np.adjust_saturation(x, factor), x)


def test_numpy_jitter_range_zero_skips_the_step():
    # A saturation factor of 1 is not the identity on pixels a negative brightness delta
    # pushed below 0, so a range of 0 must skip the step, not apply factor 1.
    image = np.array([[[200, 100, 10], [30, 20, 5]]], np.uint8)
    key = (0, 1)  # brightness delta -0.17
    delta = spec.jitter_factors(key, 0.2, 0.0, 0.0)[0]
    assert delta < -0.1
    out = augment_np.color_jitter(image, key, brightness=0.2, contrast=0.0, saturation=0.0)
    np.testing.assert_array_equal(out, augment_np.adjust_colors(image, delta, None, None))
    assert not np.array_equal(out, augment_np.adjust_colors(image, delta, None, 1.0))


def test_numpy_defaults_are_used():
    image, label = asymmetric(40, 50)
    key = (0, 3)
    np.testing.assert_array_equal(augment_np.color_jitter(image, key),
                                  augment_np.color_jitter(image, key, 0.2, 0.2, 0.2))
    assert augment_np.random_scale(image, label, key)[1].shape == (32, 40)  # factor 0.79


def test_numpy_augment_without_flip_never_flips():
    image, label = asymmetric()
    assert spec.flip(FLIP_KEY)
    out_image, out_label = augment_np.augment(image, label, FLIP_KEY, crop_size=(4, 5),
                                              ignore_label=255, scale=None, flip=False,
                                              jitter=False)
    np.testing.assert_array_equal(out_image, image)
    np.testing.assert_array_equal(out_label, label)


# ------------------------------------------------------------------------------ augment (tf)
def _tf_key(key):
    import tensorflow as tf

    return tf.constant(key, tf.int64)


@requires_tf
def test_tf_seed_message():
    import tensorflow as tf

    from deconvnet_tf.data import augment

    with pytest.raises(ValueError) as err:
        augment.random_flip(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint8),
                            tf.constant([0.0, 1.0]))
    assert str(err.value) == ("seed must be an integer [2] tensor (seed, index), "
                              "got <dtype: 'float32'>")


@requires_tf
def test_tf_round_and_clip_to_255():
    from deconvnet_tf.data import augment

    white = np.full((2, 2, 3), 250, np.uint8)
    np.testing.assert_array_equal(np.asarray(augment.adjust_colors(white, 0.2)), 255)


@requires_tf
def test_tf_draw_params_defaults_and_flip_off():
    from deconvnet_tf.data import augment

    image, _ = asymmetric()
    sizes, colours = augment.draw_params(_tf_key(FLIP_KEY), image, crop_size=(4, 5))
    params = spec.draw(FLIP_KEY, 4, 5, crop_size=(4, 5))
    assert np.asarray(sizes).tolist() == [params.height, params.width, 0, 0, 1]
    np.testing.assert_array_equal(
        np.asarray(colours),
        np.float32([params.brightness, params.contrast, params.saturation, 1.0, 0.0]))
    sizes, _ = augment.draw_params(_tf_key(FLIP_KEY), image, crop_size=(4, 5), flip=False)
    assert np.asarray(sizes)[4] == 0
    _, colours = augment.draw_params(_tf_key(FLIP_KEY), image, crop_size=(4, 5), gamma=0.5)
    assert np.asarray(colours)[3] == np.float32(spec.gamma_factor(FLIP_KEY, 0.5))
    _, colours = augment.draw_params(_tf_key(FLIP_KEY), image, crop_size=(4, 5), grayscale=1.0)
    assert np.asarray(colours)[4] == 1.0


@requires_tf
def test_tf_static_shapes_in_graph_mode():
    """Inside tf.data (graph mode) the drawn parameters keep their static shapes."""
    import tensorflow as tf

    from deconvnet_tf.data import augment

    image_spec = tf.TensorSpec((6, 7, 3), tf.uint8)
    label_spec = tf.TensorSpec((6, 7), tf.uint8)
    key_spec = tf.TensorSpec((2,), tf.int64)

    def shapes(fn, *specs):
        out = tf.function(fn).get_concrete_function(*specs).structured_outputs
        return [t.shape.as_list() if t.shape.rank is not None else None
                for t in tf.nest.flatten(out)]

    assert shapes(lambda s, i: augment.draw_params(s, i, crop_size=(4, 5)),
                  key_spec, image_spec) == [[5], [5]]
    assert shapes(augment.color_jitter, image_spec, key_spec) == [[6, 7, 3]]
    assert shapes(augment.random_flip, image_spec, label_spec, key_spec) == [[6, 7, 3], [6, 7]]
    assert shapes(augment.random_scale, image_spec, label_spec, key_spec) == [
        [None, None, 3], [None, None]]


@requires_tf
def test_tf_defaults_are_used_and_range_zero_skips_the_step():
    from deconvnet_tf.data import augment

    image, label = asymmetric(40, 50)
    key = _tf_key((0, 3))
    np.testing.assert_array_equal(np.asarray(augment.color_jitter(image, key)),
                                  np.asarray(augment.color_jitter(image, key, 0.2, 0.2, 0.2)))
    assert np.asarray(augment.random_scale(image, label, key)[1]).shape == (32, 40)
    small = np.array([[[200, 100, 10], [30, 20, 5]]], np.uint8)
    key = (0, 1)  # brightness delta -0.17
    delta = np.float32(spec.jitter_factors(key, 0.2, 0.0, 0.0)[0])
    out = augment.color_jitter(small, _tf_key(key), brightness=0.2, contrast=0.0, saturation=0.0)
    np.testing.assert_array_equal(np.asarray(out),
                                  np.asarray(augment.adjust_colors(small, delta)))
    assert not np.array_equal(np.asarray(out),
                              np.asarray(augment.adjust_colors(small, delta, None, 1.0)))
