"""``MaxUnpooling2D`` accepts what ``tfa.layers.MaxUnpooling2D`` accepts, with the same result.

tensorflow-addons is the reference for this layer's no-reference form (it is retired and not
installed here; its semantics are restated in ``tfa_unpool`` below): ``layer(values, argmax)``
as separate arguments, switches of any number dtype, switches counted within each image
(``tf.nn.max_pool_with_argmax``'s default) and switches that need not lie in their own pooling
window (any row and column of the image; the channel is the value's own), ``strides``
defaulting to 2 whatever the pool size. The layer's own convention (the batch inside the
index, ``include_batch_in_index=True``) gives the same output."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from deconvnet_tf.layers import MaxPoolingWithArgmax2D, MaxUnpooling2D
from tests.conftest import requires_tf

pytestmark = requires_tf


def output_size(pooled: int, pool: int, stride: int, padding: str) -> int:
    return (pooled - 1) * stride + pool if padding == "valid" else pooled * stride


def tfa_unpool(values, switches, pool, strides, padding):
    """tfa's rule: the value at (b, i, j, c) goes to row ``s // (W*C)`` and column
    ``(s // C) % W`` of image b, channel c, where ``s`` is its switch within the image."""
    n, h, w, c = values.shape
    height = output_size(h, pool[0], strides[0], padding)
    width = output_size(w, pool[1], strides[1], padding)
    out = np.zeros((n, height, width, c), values.dtype)
    per_image = height * width * c
    for (b, i, j, k), value in np.ndenumerate(values):
        s = int(switches[b, i, j, k]) % per_image
        out[b, s // (width * c), (s // c) % width, k] += value
    return out


CASES = [  # (values shape, pool, strides, padding)
    ((1, 1, 2, 1), (2, 2), (2, 2), "same"),
    ((1, 2, 2, 2), (2, 2), (2, 1), "same"),
    ((2, 2, 4, 2), (2, 2), (2, 3), "same"),
    ((2, 2, 4, 2), (2, 2), (2, 3), "valid"),
    ((3, 3, 2, 4), (2, 3), (2, 2), "valid"),
    ((2, 1, 1, 3), (3, 3), (4, 4), "same"),
]


@pytest.mark.parametrize("shape,pool,strides,padding", CASES)
@pytest.mark.parametrize("with_batch", [False, True])
def test_arbitrary_switches_land_where_tfa_puts_them(shape, pool, strides, padding, with_batch):
    rng = np.random.default_rng(len(shape) + sum(shape) + int(with_batch))
    values = rng.normal(size=shape).astype("float32")
    n, h, w, c = shape
    height = output_size(h, pool[0], strides[0], padding)
    width = output_size(w, pool[1], strides[1], padding)
    # any row/column of the image, the position's own channel
    rows = rng.integers(0, height, shape)
    cols = rng.integers(0, width, shape)
    switches = (rows * width + cols) * c + np.arange(c)
    if with_batch:
        switches = switches + np.arange(n).reshape(-1, 1, 1, 1) * height * width * c
    want = tfa_unpool(values, switches, pool, strides, padding)
    layer = MaxUnpooling2D(pool_size=pool, strides=strides, padding=padding.upper())
    got = np.asarray(layer(values, switches.astype("float32")))  # tfa's call, float switches
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    got_list = np.asarray(layer([values, switches.astype("int64")]))  # this package's call
    np.testing.assert_array_equal(got_list, got)
    import tensorflow as tf

    graph = tf.function(lambda v, s: layer(v, s))(values, switches.astype("int32"))
    np.testing.assert_allclose(np.asarray(graph), want, rtol=1e-6, atol=1e-6)


def test_the_defaults_are_tfas():
    layer = MaxUnpooling2D(pool_size=(2, 3), padding="VALID")  # strides stay (2, 2)
    assert layer.strides == (2, 2)
    assert layer.compute_output_shape([(1, 2, 2, 1), (1, 2, 2, 1)]) == (1, 4, 5, 1)
    assert MaxUnpooling2D().compute_output_shape([(2, 3, 4, 5), (2, 3, 4, 5)]) == (2, 6, 8, 5)


@pytest.mark.parametrize("include_batch", [False, True])
def test_switches_of_either_pooling_convention_unpool_alike(include_batch):
    import tensorflow as tf

    x = np.random.default_rng(3).normal(size=(3, 6, 4, 2)).astype("float32")
    pooled, switches = tf.nn.max_pool_with_argmax(x, 2, 2, "VALID",
                                                  include_batch_in_index=include_batch)
    ours_pooled, ours = MaxPoolingWithArgmax2D()(x)
    want = np.asarray(MaxUnpooling2D()([ours_pooled, ours, x]))  # with the reference
    np.testing.assert_array_equal(np.asarray(MaxUnpooling2D()(pooled, switches)), want)
    np.testing.assert_array_equal(np.asarray(MaxUnpooling2D()(pooled, switches, x)), want)


def test_separate_arguments_in_a_functional_model_save_and_load(tmp_path):
    image = keras.Input((8, 6, 3))
    pooled, switches = MaxPoolingWithArgmax2D()(image)
    model = keras.Model(image, MaxUnpooling2D()(pooled, switches))
    x = np.random.default_rng(1).normal(size=(2, 8, 6, 3)).astype("float32")
    want = np.asarray(model(x))
    path = tmp_path / "unpool.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(again(x)), want)
    assert np.count_nonzero(want) == 2 * 4 * 3 * 3


def test_errors_name_what_was_expected():
    values = np.ones((2, 1, 2, 1), "float32")
    with pytest.raises(ValueError, match="either a list .* or separate arguments"):
        MaxUnpooling2D()([values, values], values)
    with pytest.raises(ValueError, match="outside its image"):  # past the last image
        MaxUnpooling2D()(values, np.full((2, 1, 2, 1), 99, "int64"))
    with pytest.raises(ValueError, match="outside its image"):
        MaxUnpooling2D()(values, np.full((2, 1, 2, 1), -1, "int64"))
