"""A program that set ``keras.config.set_image_data_format("channels_first")`` still builds,
runs and loads the channels_last networks of this package, and keeps its own setting."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import deconvnet_tf


@pytest.fixture
def channels_first():
    before = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    yield
    keras.config.set_image_data_format(before)


@pytest.mark.jax
@pytest.mark.parametrize("preset", ["deconvnet_tiny", "fcn8s_tiny"])
def test_models_stay_channels_last_under_a_channels_first_program(preset, channels_first,
                                                                   tmp_path):
    x = np.random.default_rng(0).uniform(0, 255, (2, 40, 48, 3)).astype("float32")
    model = deconvnet_tf.build_model(preset, num_classes=3)
    assert keras.config.image_data_format() == "channels_first"  # restored after building
    assert model.output_shape == (None, None, None, 3)
    got = keras.ops.convert_to_numpy(model(x))
    keras.config.set_image_data_format("channels_last")
    reference = deconvnet_tf.build_model(preset, num_classes=3)
    reference.set_weights(model.get_weights())
    want = keras.ops.convert_to_numpy(reference(x))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    keras.config.set_image_data_format("channels_first")
    model.save(tmp_path / "m.keras")
    loaded = deconvnet_tf.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), want, rtol=1e-5,
                               atol=1e-5)
    assert keras.config.image_data_format() == "channels_first"
