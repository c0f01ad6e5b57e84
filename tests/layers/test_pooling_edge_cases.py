"""The cases outside checks found, one by one: non-finite values, dtypes, empty and tiny inputs,
and the errors for inputs that cannot work (wrong rank, mismatched pool sizes, references)."""

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
from tests.conftest import BACKEND, gradient, requires_tf

INF, NAN = np.inf, np.nan


def window(values, dtype="float32"):
    return np.array(values, dtype).reshape(1, 2, 2, 1)


def switch_pair(x, **kwargs):
    pooled, mask = SwitchMaxPooling2D(**kwargs)(x)
    return (np.asarray(pooled).ravel(), np.asarray(mask).ravel(),
            np.asarray(SwitchUnpooling2D(kwargs.get("pool_size", 2))([pooled, mask])).ravel())


# (window in row-major order, pooled value, switch position): TensorFlow's kernel rule.
NON_FINITE = [
    ([5, -INF, 1, 2], 5, 0),
    ([-INF, -INF, -INF, -INF], -INF, 0),
    ([INF, 1, 2, 3], INF, 0),
    ([1, 2, 3, INF], INF, 3),
    ([NAN, 5, 1, 2], NAN, 0),     # a NaN first in its window wins
    ([1, NAN, 3, 2], 3, 2),       # a NaN elsewhere is skipped
    ([1, NAN, NAN, NAN], 1, 0),
    ([-INF, NAN, -INF, NAN], -INF, 0),
]


@pytest.mark.jax
@pytest.mark.parametrize("values, value, position", NON_FINITE)
def test_switch_pair_non_finite_windows(values, value, position):
    pooled, mask, unpooled = switch_pair(window(values))
    np.testing.assert_array_equal(pooled, [value])
    expected_mask = np.zeros(4, "float32")
    expected_mask[position] = 1
    np.testing.assert_array_equal(mask, expected_mask)
    expected = np.zeros(4, "float32")
    expected[position] = value
    np.testing.assert_array_equal(unpooled, expected)  # [0, inf, 0, 0], never NaN around


@requires_tf
@pytest.mark.parametrize("values, value, position", NON_FINITE)
def test_argmax_pair_non_finite_windows_equal_the_switch_pair(values, value, position):
    x = window(values)
    pooled, argmax = MaxPoolingWithArgmax2D()(x)
    assert pooled.numpy().ravel().tolist() == pytest.approx([value], nan_ok=True)
    assert argmax.numpy().ravel().tolist() == [position]
    unpooled = MaxUnpooling2D()([pooled, argmax, x]).numpy().ravel()
    np.testing.assert_array_equal(unpooled, switch_pair(x)[2])


@pytest.mark.jax
def test_nan_neighbour_leaves_the_gradient_at_the_switch():
    # Windows [1, nan, 7, 8] and [3, 2, 9, 6].
    x = np.array([1, NAN, 3, 2, 7, 8, 9, 6], "float32").reshape(1, 2, 4, 1)
    layer = SwitchMaxPooling2D()
    grad = gradient(lambda t: layer(t)[0], x)
    np.testing.assert_array_equal(grad.ravel(), [0, 0, 0, 0, 0, 1, 1, 0])


@pytest.mark.jax
@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "float16"])
def test_switch_pair_keeps_integer_and_half_dtypes(dtype):
    x = (np.arange(32) % 11).astype(dtype).reshape(1, 4, 4, 2)
    pooled, mask = SwitchMaxPooling2D()(x)
    unpooled = SwitchUnpooling2D()([pooled, mask])
    for out in (pooled, mask, unpooled):
        assert keras.backend.standardize_dtype(out.dtype) == dtype
    np.testing.assert_array_equal(np.asarray(pooled), x.reshape(1, 2, 2, 2, 2, 2).max(axis=(2, 4)))


@pytest.mark.jax
@pytest.mark.parametrize("shape, padding, pooled_shape", [
    ((0, 4, 4, 3), "valid", (0, 2, 2, 3)),
    ((0, 5, 5, 3), "same", (0, 3, 3, 3)),
    ((1, 1, 1, 2), "valid", (1, 0, 0, 2)),
    ((2, 1, 5, 1), "valid", (2, 0, 2, 1)),
])
def test_switch_pair_empty_outputs(shape, padding, pooled_shape):
    x = np.ones(shape, "float32")
    pooled, mask = SwitchMaxPooling2D(padding=padding)(x)
    assert tuple(pooled.shape) == pooled_shape and tuple(mask.shape) == shape
    assert not np.asarray(mask).any()
    assert tuple(SwitchUnpooling2D()([pooled, mask]).shape) == shape


@requires_tf
@pytest.mark.parametrize("shape, padding, pooled_shape", [
    ((0, 4, 4, 3), "valid", (0, 2, 2, 3)),
    ((0, 5, 5, 3), "same", (0, 3, 3, 3)),
    ((1, 1, 1, 2), "valid", (1, 0, 0, 2)),
])
def test_empty_inputs_in_a_traced_function(shape, padding, pooled_shape):
    """Dynamic shapes (tf.function): right shapes, for both pairs (mask (1,1,1,2), not (4,1,1,2))."""
    import tensorflow as tf

    spec = tf.TensorSpec((None, None, None, shape[-1]))
    pairs = {
        "switch": (SwitchMaxPooling2D(padding=padding), SwitchUnpooling2D()),
        "argmax": (MaxPoolingWithArgmax2D(padding=padding), MaxUnpooling2D()),
    }
    for name, (pool, unpool) in pairs.items():
        @tf.function(input_signature=[spec])
        def run(t, pool=pool, unpool=unpool):
            pooled, switches = pool(t)
            return pooled, switches, unpool([pooled, switches, t])

        pooled, switches, unpooled = run(tf.ones(shape))
        assert tuple(pooled.shape) == pooled_shape, name
        assert tuple(unpooled.shape) == shape, name
        if name == "switch":
            assert tuple(switches.shape) == shape


@requires_tf
def test_argmax_pair_empty_batch_like_keras_max_pooling():
    x = np.ones((0, 6, 6, 2), "float32")
    pooled, argmax = MaxPoolingWithArgmax2D()(x)
    assert tuple(pooled.shape) == tuple(keras.layers.MaxPooling2D()(x).shape) == (0, 3, 3, 2)
    assert argmax.dtype.name == "int64"
    assert tuple(MaxUnpooling2D()([pooled, argmax, x]).shape) == (0, 6, 6, 2)


@pytest.mark.jax
@pytest.mark.parametrize("shape", [(4, 4), (1, 4, 4), (1, 2, 4, 4, 1)])
def test_switch_pool_wrong_rank_is_a_value_error(shape):
    with pytest.raises(ValueError, match=r"SwitchMaxPooling2D expects an input of rank 4.*"
                                         + str(len(shape))):
        SwitchMaxPooling2D()(np.zeros(shape, "float32"))


@requires_tf
@pytest.mark.parametrize("shape", [(4, 4), (1, 4, 4)])
def test_argmax_pool_wrong_rank_is_a_value_error(shape):
    with pytest.raises(ValueError, match=r"MaxPoolingWithArgmax2D expects an input of rank 4"):
        MaxPoolingWithArgmax2D()(np.zeros(shape, "float32"))


@pytest.mark.jax
def test_bool_input_is_a_value_error():
    with pytest.raises(ValueError, match="real number dtype.*bool"):
        SwitchMaxPooling2D()(np.zeros((1, 4, 4, 1), bool))


@pytest.mark.jax
@pytest.mark.parametrize("size", [6, 9, 3])
def test_unpooling_with_another_pool_size_is_a_value_error(size):
    x = np.random.default_rng(size).normal(size=(1, size, size, 1)).astype("float32")
    x[0, 2, 2, 0] = 10.0  # a switch in the third row/column: outside a 2x2 unpooling's reach
    pooled, mask = SwitchMaxPooling2D(pool_size=3)(x)
    with pytest.raises(ValueError, match=r"SwitchUnpooling2D\(pool_size=\(2, 2\)\)"):
        SwitchUnpooling2D(pool_size=2)([pooled, mask])
    # The right pool size unpools every value.
    unpooled = np.asarray(SwitchUnpooling2D(pool_size=3)([pooled, mask]))
    assert np.isclose(unpooled.sum(), np.asarray(pooled).sum())


@pytest.mark.jax
def test_switch_unpool_checks_batch_channels_and_reference():
    pooled, mask = SwitchMaxPooling2D()(np.ones((2, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="differ in channels"):
        SwitchUnpooling2D()([pooled[..., :2], mask])
    with pytest.raises(ValueError, match="reference"):
        SwitchUnpooling2D()([pooled, mask, np.ones((2, 5, 5, 3), "float32")])


@requires_tf
@pytest.mark.parametrize("reference_shape", [(1, 5, 5, 1), (1, 3, 3, 1), (1, 6, 6, 1),
                                             (2, 4, 4, 1), (1, 4, 4, 2)])
def test_max_unpool_refuses_a_reference_that_cannot_hold_the_switches(reference_shape):
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)[:, ::-1]  # switches not top-left
    pooled, argmax = MaxPoolingWithArgmax2D()(x)
    with pytest.raises(ValueError, match=r"MaxUnpooling2D: .*\(1, 2, 2, 1\)"):
        MaxUnpooling2D()([pooled, argmax, np.zeros(reference_shape, "float32")])


@requires_tf
def test_max_unpool_without_reference_uses_the_geometry():
    x = np.random.default_rng(0).normal(size=(2, 6, 8, 3)).astype("float32")
    pooled, argmax = MaxPoolingWithArgmax2D()(x)
    with_reference = MaxUnpooling2D()([pooled, argmax, x])
    without = MaxUnpooling2D(pool_size=2, padding="same")([pooled, argmax])
    np.testing.assert_array_equal(without.numpy(), with_reference.numpy())


@requires_tf
def test_overlapping_windows_scatter_add():
    """3x3 windows with stride 1 share a maximum: unpooling adds the values there."""
    x = np.zeros((1, 3, 4, 1), "float32")
    x[0, 1, 2, 0] = 5.0
    pooled, argmax = MaxPoolingWithArgmax2D(pool_size=3, strides=1)(x)
    assert pooled.numpy().ravel().tolist() == [5.0, 5.0]
    unpooled = MaxUnpooling2D(pool_size=3, strides=1)([pooled, argmax, x]).numpy()
    assert unpooled[0, 1, 2, 0] == 10.0 and unpooled.sum() == 10.0


@requires_tf
def test_float64_stays_float64_and_mixed_precision_still_casts(mixed_policy):
    x = np.random.default_rng(1).normal(size=(1, 4, 4, 1))
    for layer in (SwitchMaxPooling2D(), MaxPoolingWithArgmax2D()):
        assert layer(x)[0].dtype.name == "float64"
    mixed_policy("mixed_float16")
    assert SwitchMaxPooling2D()(x.astype("float32"))[0].dtype.name == "float16"


@pytest.mark.skipif(BACKEND != "jax", reason="the JAX path of the same checks")
def test_switch_pair_under_jax_jit_with_non_finite_values():
    import jax

    x = np.array([NAN, 5, 1, 2, 1, NAN, 3, INF], "float32").reshape(1, 2, 4, 1)
    pool, unpool = SwitchMaxPooling2D(), SwitchUnpooling2D()
    run = jax.jit(lambda t: unpool(list(pool(t))))
    np.testing.assert_array_equal(np.asarray(run(x)).ravel(), [NAN, 0, 0, 0, 0, 0, 0, INF])


@pytest.mark.jax
def test_bfloat16_keeps_its_dtype_and_the_nan_rule():
    x = keras.ops.cast(np.array([NAN, 5, 1, 2, 1, NAN, 3, INF], "float32").reshape(1, 2, 4, 1),
                       "bfloat16")
    expected = [NAN, 0, 0, 0, 0, 0, 0, INF]
    pooled, mask = SwitchMaxPooling2D()(x)
    unpooled = SwitchUnpooling2D()([pooled, mask])
    assert keras.backend.standardize_dtype(unpooled.dtype) == "bfloat16"
    np.testing.assert_array_equal(np.asarray(keras.ops.cast(unpooled, "float32")).ravel(), expected)
    if BACKEND == "tensorflow":
        pooled, argmax = MaxPoolingWithArgmax2D()(x)
        unpooled = MaxUnpooling2D()([pooled, argmax, x])
        assert unpooled.dtype.name == "bfloat16"
        np.testing.assert_array_equal(keras.ops.cast(unpooled, "float32").numpy().ravel(),
                                      expected)
