"""Preprocessing layer, conv/deconv blocks, cropping and the bilinear initializer."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deconvnet_tf.layers import DECONVNET_BGR_MEAN, CropToReference, VGGPreprocessing, deconv_block
from deconvnet_tf.models import BilinearUpsampling


@pytest.mark.jax
def test_preprocessing_matches_numpy(rng):
    x = rng.integers(0, 256, size=(2, 3, 4, 3)).astype("uint8")
    got = np.asarray(VGGPreprocessing()(x))
    expected = x[..., ::-1].astype("float32") - np.array(DECONVNET_BGR_MEAN, "float32")
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.dtype == np.float32


@pytest.mark.jax
def test_preprocessing_config_and_errors():
    layer = VGGPreprocessing(mean=(1, 2, 3), bgr=False)
    clone = VGGPreprocessing.from_config(layer.get_config())
    assert clone.mean == (1.0, 2.0, 3.0) and clone.bgr is False
    np.testing.assert_allclose(np.asarray(clone(np.ones((1, 1, 1, 3)))), [[[[0, -1, -2]]]])
    with pytest.raises(ValueError, match="3 values"):
        VGGPreprocessing(mean=(1, 2))


@pytest.mark.jax
def test_deconv_block_layers_and_shapes():
    inp = keras.Input((5, 5, 4))
    out = deconv_block(inp, 6, 7, name="fc6_deconv", padding="valid")
    model = keras.Model(inp, out)
    assert [l.name for l in model.layers[1:]] == ["fc6_deconv", "fc6_deconv_bn", "fc6_deconv_relu"]
    assert isinstance(model.layers[1], keras.layers.Conv2DTranspose)
    assert out.shape == (None, 11, 11, 6)
    assert np.all(np.asarray(model(np.random.rand(1, 5, 5, 4).astype("float32"))) >= 0)


@pytest.mark.jax
def test_crop_to_reference():
    x = np.arange(2 * 8 * 8 * 1, dtype="float32").reshape(2, 8, 8, 1)
    out = np.asarray(CropToReference()([x, np.zeros((2, 5, 6, 3))]))
    np.testing.assert_array_equal(out, x[:, :5, :6])


@pytest.mark.jax
def test_bilinear_upsampling_kernel_interpolates():
    layer = keras.layers.Conv2DTranspose(
        2, 4, strides=2, padding="same", use_bias=False, kernel_initializer=BilinearUpsampling()
    )
    x = np.ones((1, 4, 4, 2), "float32")
    y = np.asarray(layer(x))
    assert y.shape == (1, 8, 8, 2)
    # A constant image stays constant away from the border, and channels do not mix.
    np.testing.assert_allclose(y[0, 1:-1, 1:-1], 1.0, rtol=1e-6)
    x2 = np.zeros((1, 4, 4, 2), "float32")
    x2[..., 0] = 1
    assert np.all(np.asarray(layer(x2))[..., 1] == 0)


@pytest.mark.jax
@pytest.mark.parametrize("x_shape,ref_shape,match", [
    ((1, 4, 8, 2), (1, 5, 6, 1), "smaller than the reference .* in height"),
    ((1, 8, 4, 2), (1, 5, 6, 1), "smaller than the reference .* in width"),
    ((8, 8, 2), (1, 5, 6, 1), "both 4D"),
])
def test_crop_to_reference_refuses_what_it_cannot_crop(x_shape, ref_shape, match):
    with pytest.raises(ValueError, match=match):
        CropToReference(name="crop")([np.zeros(x_shape), np.zeros(ref_shape)])


@pytest.mark.jax
def test_crop_to_reference_empty_batch_and_unknown_sizes():
    out = CropToReference()([np.zeros((0, 8, 9, 2)), np.zeros((0, 5, 7, 1))])
    assert tuple(out.shape) == (0, 5, 7, 2)
    x, ref = keras.Input((None, None, 2)), keras.Input((None, None, 1))
    model = keras.Model([x, ref], CropToReference()([x, ref]))
    out = model.predict_on_batch([np.ones((1, 6, 7, 2)), np.zeros((1, 3, 4, 1))])
    assert out.shape == (1, 3, 4, 2)
