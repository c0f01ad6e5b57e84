"""What an audit of the layers against their references found (2026-12-07), one case each:
float switches under mixed precision, the pooling's default strides, zero-size inputs, uint64,
a pooled -0.0, gradients of empty inputs, VGGPreprocessing's channels, built-at-construction,
and a bare shape given to ``compute_output_shape``."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deconvnet_tf.layers import (
    CropToReference,
    Deconv2D,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    SwitchMaxPooling2D,
    SwitchUnpooling2D,
    VGGPreprocessing,
)
from tests.conftest import BACKEND, gradient, requires_tf


@pytest.fixture
def mixed_policy():
    previous = keras.config.dtype_policy()
    yield keras.config.set_dtype_policy
    keras.config.set_dtype_policy(previous)


@requires_tf
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("form", ["arguments", "list"])
def test_float_switches_are_not_autocast_under_mixed_precision(mixed_policy, policy, form):
    """tfa's convention takes float switches; a mixed policy casts the values only (float16
    would round 4095 to 4096 and put values in the wrong cells)."""
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(1, 64, 64, 1)).astype("float32")
    values, switches = tf.nn.max_pool_with_argmax(x, 2, 2, "SAME")
    want = MaxUnpooling2D()(values, switches).numpy()
    mixed_policy(policy)
    layer = MaxUnpooling2D()
    floats = tf.cast(switches, "float32")
    got = layer(values, floats) if form == "arguments" else layer([values, floats])
    assert keras.backend.standardize_dtype(got.dtype) == layer.compute_dtype
    np.testing.assert_array_equal(np.asarray(tf.cast(got, "float32")),
                                  np.asarray(tf.cast(tf.cast(want, got.dtype), "float32")))
    symbolic = layer([keras.Input((32, 32, 1)), keras.Input((32, 32, 1))])
    assert symbolic.dtype == layer.compute_dtype  # the symbolic dtype is the actual one


@requires_tf
def test_numpy_inputs_of_mixed_kinds_still_unpool():
    x = np.random.default_rng(1).normal(size=(2, 5, 5, 3)).astype("float32")
    pooled, switches = MaxPoolingWithArgmax2D(padding="same")(x)
    want = MaxUnpooling2D()([pooled, switches, x])
    for got in (MaxUnpooling2D()(np.asarray(pooled), np.asarray(switches), x),
                MaxUnpooling2D()([pooled, np.asarray(switches), x])):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@requires_tf
@pytest.mark.parametrize("pool", [1, 3, (3, 2)])
def test_argmax_pooling_strides_default_to_the_pool_size(pool):
    """As keras.layers.MaxPooling2D and SwitchMaxPooling2D (the switch pair's twin)."""
    x = np.random.default_rng(2).normal(size=(1, 9, 9, 2)).astype("float32")
    pooled, _ = MaxPoolingWithArgmax2D(pool)(x)
    want = keras.layers.MaxPooling2D(pool)(x)
    np.testing.assert_array_equal(np.asarray(pooled), np.asarray(want))
    np.testing.assert_array_equal(np.asarray(pooled), np.asarray(SwitchMaxPooling2D(pool)(x)[0]))


@pytest.mark.jax
@pytest.mark.parametrize("shape", [(1, 0, 5, 3), (1, 5, 0, 3), (2, 0, 0, 3), (0, 4, 4, 3)])
@pytest.mark.parametrize("use_bias", [True, False])
def test_deconv_of_a_zero_size_input_equals_conv2d_transpose(shape, use_bias):
    z = np.zeros(shape, "float32")
    layer = Deconv2D(4, 3, padding="same", use_bias=use_bias)
    reference = keras.layers.Conv2DTranspose(4, 3, padding="same", use_bias=use_bias)
    assert tuple(layer(z).shape) == tuple(reference(z).shape) == (*shape[:3], 4)


@requires_tf
def test_the_switch_pair_keeps_uint64():
    import tensorflow as tf

    x = np.array([2**64 - 1, 0, 0, 5, 7, 2**63, 1, 2], np.uint64).reshape(1, 2, 4, 1)
    want, _ = tf.nn.max_pool_with_argmax(x, 2, 2, "VALID")
    pooled, mask = SwitchMaxPooling2D()(x)
    assert pooled.dtype == "uint64" and mask.dtype == "uint64"
    np.testing.assert_array_equal(np.asarray(pooled), want.numpy())
    back = SwitchUnpooling2D()([pooled, mask])
    assert back.dtype == "uint64"
    np.testing.assert_array_equal(np.asarray(back).ravel(), [2**64 - 1, 0, 0, 5, 0, 0, 0, 0])


@pytest.mark.jax
@pytest.mark.parametrize("pool", [2, (1, 2), 3])
def test_a_pooled_negative_zero_keeps_its_sign(pool):
    x = np.full((1, 3, 6, 1), -1.0, "float32")
    x[0, 0, 0, 0] = -0.0
    pooled, _ = SwitchMaxPooling2D(pool)(x)
    assert np.signbit(np.asarray(pooled)[0, 0, 0, 0])
    if BACKEND == "tensorflow":
        import tensorflow as tf

        want, _ = tf.nn.max_pool_with_argmax(x, pool, pool, "VALID")
        np.testing.assert_array_equal(np.signbit(np.asarray(pooled)), np.signbit(want.numpy()))
        argmax_pooled, _ = MaxPoolingWithArgmax2D(pool)(x)
        np.testing.assert_array_equal(np.signbit(np.asarray(argmax_pooled)),
                                      np.signbit(want.numpy()))


@pytest.mark.jax
@pytest.mark.parametrize("shape", [(0, 4, 4, 1), (1, 4, 4, 0), (2, 1, 1, 3)])
def test_empty_inputs_pool_to_empty_outputs_with_zero_gradients(shape):
    """No images, no channels, or smaller than a window: MaxPooling2D's shapes, and a gradient of
    zeros (not None) of the input's shape."""
    x = np.zeros(shape, "float32")
    # MaxPooling2D's shape (TensorFlow's oneDNN pooling itself fails on a 1x1 input)
    want = (shape[0], shape[1] // 2, shape[2] // 2, shape[3])
    layers = [SwitchMaxPooling2D()] + ([MaxPoolingWithArgmax2D()] if BACKEND == "tensorflow"
                                       else [])
    for layer in layers:
        pooled, _ = layer(x)
        assert tuple(pooled.shape) == want
        grad = gradient(lambda t, layer=layer: layer(t)[0], x)
        assert grad.shape == shape and not grad.any()


@pytest.mark.jax
def test_vgg_preprocessing_names_a_wrong_channel_count_and_a_wrong_bgr():
    layer = VGGPreprocessing()
    for channels in (1, 4):
        with pytest.raises(ValueError, match=f"expected RGB images.*{channels} channels"):
            layer(np.ones((1, 2, 2, channels), "uint8"))
        with pytest.raises(ValueError, match="expected RGB images"):
            layer.compute_output_shape((1, 2, 2, channels))
    assert layer.compute_output_shape((None, None, None, 3)) == (None, None, None, 3)
    with pytest.raises(ValueError, match="`bgr` must be True or False"):
        VGGPreprocessing(bgr="false")
    assert VGGPreprocessing(bgr=np.bool_(False)).bgr is False


@pytest.mark.jax
def test_layers_without_weights_are_built_when_made():
    """As Keras' pooling layers: ``count_params()`` at once (Keras' own layer tests check it)."""
    layers = [SwitchMaxPooling2D(), SwitchUnpooling2D(), CropToReference(), VGGPreprocessing()]
    if BACKEND == "tensorflow":
        layers += [MaxPoolingWithArgmax2D(), MaxUnpooling2D()]
    for layer in layers:
        assert layer.built and layer.count_params() == 0, type(layer).__name__
    # and they still work after a config round trip
    x = np.random.default_rng(3).normal(size=(1, 4, 4, 2)).astype("float32")
    again = SwitchMaxPooling2D.from_config(SwitchMaxPooling2D().get_config())
    assert again.built
    np.testing.assert_array_equal(np.asarray(again(x)[0]),
                                  np.asarray(keras.layers.MaxPooling2D()(x)))


@requires_tf
def test_unpooling_output_shape_of_a_bare_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expects the shapes \[values, argmax\]"):
        MaxUnpooling2D().compute_output_shape((1, 2, 2, 1))
    assert MaxUnpooling2D().compute_output_shape(
        [(1, 2, 2, 1), (1, 2, 2, 1), (1, 5, 5, 1)]) == (1, 5, 5, 1)


@pytest.mark.jax
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_deconv_of_an_integer_input_is_a_value_error_as_in_the_reference(padding):
    x = np.ones((1, 4, 4, 3), "int32")
    if BACKEND == "tensorflow":  # the reference's own refusal
        with pytest.raises(ValueError):
            keras.layers.Conv2DTranspose(4, 3, padding=padding)(x)
    with pytest.raises(ValueError, match="expects a float input.*int32"):
        Deconv2D(4, 3, padding=padding)(x)


@requires_tf
def test_tfa_mask_keyword_gives_the_switches(tmp_path):
    """``tfa.layers.MaxUnpooling2D``'s ``call(updates, mask)``: ``mask=`` names the switches
    (not a Keras mask: no warning), eagerly and in a saved functional model."""
    import warnings

    values = np.array([13, 4], np.float32).reshape(1, 1, 2, 1)
    switches = np.array([1, 6]).reshape(1, 1, 2, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = MaxUnpooling2D()(values, mask=switches)
    np.testing.assert_array_equal(np.asarray(got).ravel(), [0, 13, 0, 0, 0, 0, 4, 0])
    with pytest.raises(ValueError, match="given twice"):
        MaxUnpooling2D()(values, switches, mask=switches)
    inputs = keras.Input((4, 4, 1))
    pooled, argmax = MaxPoolingWithArgmax2D()(inputs)
    model = keras.Model(inputs, MaxUnpooling2D()(pooled, mask=argmax, reference=inputs))
    x = np.random.default_rng(4).normal(size=(2, 4, 4, 1)).astype("float32")
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(model(x)))
