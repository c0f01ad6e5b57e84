"""Deconv2D equals keras.layers.Conv2DTranspose (values and gradients) on every path."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deconvnet_tf.layers import Deconv2D
from tests.conftest import gradient

CASES = [
    # (input hw, in, out, kernel, strides, padding): conv path, gemm path, fallbacks
    ((5, 6), 3, 4, 3, 1, "same"),
    ((1, 1), 8, 5, 7, 1, "valid"),
    ((3, 4), 6, 2, 7, 1, "valid"),
    ((4, 4), 3, 2, (3, 2), 1, "valid"),
    ((4, 5), 3, 2, 4, 1, "same"),
    ((4, 5), 3, 2, 4, 2, "same"),
]


@pytest.mark.jax
@pytest.mark.parametrize("hw,cin,cout,kernel,strides,padding", CASES)
def test_deconv2d_matches_conv2d_transpose(rng, hw, cin, cout, kernel, strides, padding):
    x = rng.normal(size=(2, *hw, cin)).astype("float32")
    ref = keras.layers.Conv2DTranspose(cout, kernel, strides=strides, padding=padding)
    ours = Deconv2D(cout, kernel, strides=strides, padding=padding)
    ref(x)
    ours(x)
    weights = [rng.normal(size=w.shape).astype("float32") for w in ref.get_weights()]
    ref.set_weights(weights)
    ours.set_weights(weights)
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(ref(x)), atol=2e-5)
    np.testing.assert_allclose(gradient(ours, x), gradient(ref, x), atol=2e-4)


@pytest.mark.jax
def test_deconv2d_dynamic_shapes_and_config(rng):
    inp = keras.Input((None, None, 4))
    layer = Deconv2D(3, 7, padding="valid", name="fc6_deconv")
    model = keras.Model(inp, layer(inp))
    for hw in [(1, 1), (2, 5)]:
        out = model.predict(rng.normal(size=(3, *hw, 4)).astype("float32"), verbose=0)
        assert out.shape == (3, hw[0] + 6, hw[1] + 6, 3)
    clone = Deconv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert isinstance(clone, keras.layers.Conv2DTranspose)


@pytest.mark.jax
@pytest.mark.parametrize("hw,cin,cout,kernel,strides,padding", CASES)
def test_deconv2d_empty_batch_like_conv2d_transpose(hw, cin, cout, kernel, strides, padding):
    """An empty batch gives the reference's empty output, eagerly (static batch 0) and in a
    traced model (batch unknown until it runs): TensorFlow's oneDNN convolution alone returns
    the input's channels for it, which the stride-1 "same" path must not pass on."""
    x = np.zeros((0, *hw, cin), "float32")
    ref = keras.layers.Conv2DTranspose(cout, kernel, strides=strides, padding=padding)
    ours = Deconv2D(cout, kernel, strides=strides, padding=padding)
    expected = tuple(ref(x).shape)
    assert expected[0] == 0 and expected[-1] == cout
    assert tuple(ours(x).shape) == expected
    inp = keras.Input((*hw, cin))
    model = keras.Model(inp, ours(inp))
    assert model.predict_on_batch(x).shape == expected


@pytest.mark.jax
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64", "mixed_float16"])
@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[5]])
def test_deconv2d_dtypes_and_non_finite_like_conv2d_transpose(rng, dtype, case):
    """Other dtypes (policies) and NaN / +-inf inputs: the reference's values, NaNs where it
    has them."""
    hw, cin, cout, kernel, strides, padding = case
    x = rng.normal(size=(2, *hw, cin)).astype("float32")
    x[0, 0, 0, 0], x[1, -1, -1, 0] = np.nan, np.inf
    ref = keras.layers.Conv2DTranspose(cout, kernel, strides=strides, padding=padding,
                                       dtype=dtype)
    ours = Deconv2D(cout, kernel, strides=strides, padding=padding, dtype=dtype)
    ref.build(x.shape)
    ours.build(x.shape)
    ours.set_weights(ref.get_weights())
    expected = np.asarray(keras.ops.convert_to_numpy(ref(x)), np.float64)
    got = np.asarray(keras.ops.convert_to_numpy(ours(x)), np.float64)
    assert got.shape == expected.shape and np.isnan(expected).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=5e-2, atol=5e-2)
