"""``data_format`` of the pooling pairs, as in ``keras.layers.MaxPooling2D``: ``channels_first``
gives the ``channels_last`` results transposed; ``None`` follows Keras' image_data_format()."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deconvnet_tf.layers import (
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    SwitchMaxPooling2D,
    SwitchUnpooling2D,
)
from tests.conftest import BACKEND

PAIRS = {
    "argmax": (MaxPoolingWithArgmax2D, MaxUnpooling2D),
    "switch": (SwitchMaxPooling2D, SwitchUnpooling2D),
}
pairs = pytest.mark.parametrize("pair", [
    pytest.param("argmax", marks=pytest.mark.skipif(BACKEND != "tensorflow",
                                                    reason="argmax pair is TensorFlow-only")),
    pytest.param("switch", marks=pytest.mark.jax),
])


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _first(x):
    return np.transpose(x, (0, 3, 1, 2))


def _run(pair, x, data_format, padding="valid"):
    pool_cls, unpool_cls = PAIRS[pair]
    pooled, switches = pool_cls(2, padding=padding, data_format=data_format)(x)
    unpool = unpool_cls(2, data_format=data_format)
    args = [pooled, switches] + ([x] if pair == "argmax" else [])
    return _np(pooled), _np(switches), _np(unpool(args))


@pairs
@pytest.mark.parametrize("shape, padding", [((2, 6, 8, 3), "valid"), ((1, 5, 7, 2), "same"),
                                            ((2, 5, 7, 4), "valid")])
def test_channels_first_is_channels_last_transposed(pair, shape, padding):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    x[0, 0, 0, 0], x[-1, 1, 1, -1] = np.nan, np.inf
    pooled, switches, unpooled = _run(pair, x, "channels_last", padding)
    pooled_f, switches_f, unpooled_f = _run(pair, _first(x), "channels_first", padding)
    np.testing.assert_array_equal(pooled_f, _first(pooled))
    # the argmax switches index the channels_last layout in both formats
    np.testing.assert_array_equal(switches_f, _first(switches))
    np.testing.assert_array_equal(unpooled_f, _first(unpooled))
    reference = keras.layers.MaxPooling2D(2, padding=padding, data_format="channels_first")
    finite = np.nan_to_num(_first(x), nan=-1e9)
    if pair == "switch" or padding == "valid":
        np.testing.assert_array_equal(_run(pair, finite, "channels_first", padding)[0],
                                      _np(reference(finite)))


@pairs
def test_shapes_configs_and_the_global_default(pair):
    pool_cls, unpool_cls = PAIRS[pair]
    layer = pool_cls(2, padding="same", data_format="channels_first")
    assert layer.compute_output_shape((None, 3, 7, 9)) == ((None, 3, 4, 5),
                                                            (None, 3, 4, 5) if pair == "argmax"
                                                            else (None, 3, 7, 9))
    clone = pool_cls.from_config(layer.get_config())
    assert clone.data_format == "channels_first"
    old = {k: v for k, v in layer.get_config().items() if k != "data_format"}
    assert pool_cls.from_config(old).data_format == "channels_last"  # files before the field
    unpool = unpool_cls(2, data_format="channels_first")
    assert unpool_cls.from_config(unpool.get_config()).data_format == "channels_first"
    with pytest.raises(ValueError, match="`data_format` must be 'channels_last' or "
                       "'channels_first', got 'NCHW'"):
        pool_cls(2, data_format="NCHW")
    with pytest.raises(ValueError, match="`data_format`"):
        unpool_cls(2, data_format="nhwc")
    before = keras.config.image_data_format()
    try:
        keras.config.set_image_data_format("channels_first")
        assert pool_cls(2).data_format == unpool_cls(2).data_format == "channels_first"
    finally:
        keras.config.set_image_data_format(before)
    assert pool_cls(2).data_format == "channels_last"
    assert pool_cls(2, data_format="Channels_Last").data_format == "channels_last"


@pairs
def test_channels_first_in_a_functional_model_with_unknown_sizes(pair):
    pool_cls, unpool_cls = PAIRS[pair]
    inputs = keras.Input((2, None, None))
    pooled, switches = pool_cls(2, data_format="channels_first")(inputs)
    args = [pooled, switches] + ([inputs] if pair == "argmax" else [])
    outputs = unpool_cls(2, data_format="channels_first")(args)
    assert tuple(outputs.shape) == (None, 2, None, None)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(1).normal(size=(3, 2, 6, 4)).astype("float32")
    want = _first(_run(pair, np.transpose(x, (0, 2, 3, 1)), "channels_last")[2])
    np.testing.assert_array_equal(_np(model(x)), want)
