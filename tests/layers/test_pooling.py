"""Both pooling/unpooling pairs against a NumPy reference and against each other."""

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
from tests.conftest import BACKEND, gradient, np_switch_pool, np_unpool, requires_tf

SHAPES = [(1, 4, 4, 1), (2, 6, 8, 3), (2, 5, 7, 2), (3, 9, 4, 2)]
KINDS = ["random", "ties", "constant"]


def make_input(rng, shape, kind):
    if kind == "random":
        return rng.normal(size=shape).astype("float32")
    if kind == "ties":
        return rng.integers(0, 3, size=shape).astype("float32")
    return np.full(shape, 0.5, "float32")


def run_pair(pair, x, padding):
    if pair == "argmax":
        pooled, switches = MaxPoolingWithArgmax2D(padding=padding)(x)
        return pooled, switches, MaxUnpooling2D()([pooled, switches, x])
    pooled, mask = SwitchMaxPooling2D(padding=padding)(x)
    return pooled, mask, SwitchUnpooling2D()([pooled, mask])


@pytest.mark.jax
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("kind", KINDS)
def test_switch_pair_matches_numpy(rng, shape, padding, kind):
    x = make_input(rng, shape, kind)
    ref_pooled, ref_mask = np_switch_pool(x, 2, padding)
    pooled, mask, unpooled = run_pair("switch", x, padding)
    np.testing.assert_array_equal(np.asarray(pooled), ref_pooled)
    np.testing.assert_array_equal(np.asarray(mask), ref_mask)
    np.testing.assert_array_equal(np.asarray(unpooled), np_unpool(ref_pooled, ref_mask))


@requires_tf
@pytest.mark.parametrize("shape", SHAPES + [(1, 45, 30, 2)])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("kind", KINDS)
def test_argmax_pair_matches_numpy_and_switch_pair(rng, shape, padding, kind):
    x = make_input(rng, shape, kind)
    ref_pooled, ref_mask = np_switch_pool(x, 2, padding)
    pooled, argmax, unpooled = run_pair("argmax", x, padding)
    assert argmax.dtype.name == "int64"
    np.testing.assert_array_equal(pooled.numpy(), ref_pooled)
    # The flat switches point exactly at the mask's ones (batch included in the index).
    flat_mask = np.zeros(x.size, "float32")
    flat_mask[argmax.numpy().ravel()] = 1
    np.testing.assert_array_equal(flat_mask.reshape(x.shape), ref_mask)
    np.testing.assert_array_equal(unpooled.numpy(), np_unpool(ref_pooled, ref_mask))
    s_pooled, s_mask, s_unpooled = run_pair("switch", x, padding)
    np.testing.assert_array_equal(pooled.numpy(), np.asarray(s_pooled))
    np.testing.assert_array_equal(unpooled.numpy(), np.asarray(s_unpooled))


@requires_tf
def test_argmax_switches_stay_exact_beyond_float32():
    # 2**24 + a bit elements: a float32 index could not address the last positions exactly.
    h, w = 4098, 4098
    x = np.zeros((1, h, w, 1), "float32")
    x[0, h - 1, w - 1, 0] = 1.0
    x[0, h - 1, w - 4, 0] = 2.0
    pooled, argmax = MaxPoolingWithArgmax2D()(x)
    assert argmax.dtype.name == "int64"
    assert int(argmax[0, -1, -1, 0]) == h * w - 1
    assert int(argmax[0, -1, -2, 0]) == h * w - 4
    y = MaxUnpooling2D()([pooled, argmax, x]).numpy()
    assert y[0, h - 1, w - 1, 0] == 1.0 and y[0, h - 1, w - 4, 0] == 2.0
    assert y.sum() == 3.0


@requires_tf
def test_odd_size_round_trip_45_22_45(rng):
    x = rng.normal(size=(2, 45, 45, 3)).astype("float32")
    pooled, argmax = MaxPoolingWithArgmax2D(padding="valid")(x)
    assert pooled.shape == (2, 22, 22, 3)
    y = MaxUnpooling2D()([pooled, argmax, x])
    assert y.shape == x.shape
    pooled_s, mask = SwitchMaxPooling2D(padding="valid")(x)
    np.testing.assert_array_equal(y.numpy(), np.asarray(SwitchUnpooling2D()([pooled_s, mask])))


@pytest.mark.jax
@pytest.mark.parametrize("pair", ["argmax", "switch"])
def test_dynamic_batch_and_spatial_in_functional_model(rng, pair):
    if pair == "argmax" and BACKEND != "tensorflow":
        pytest.skip("argmax pair is TensorFlow-only (its error is tested separately)")
    inp = keras.Input((None, None, 2))
    if pair == "argmax":
        pooled, sw = MaxPoolingWithArgmax2D(padding="same")(inp)
        out = MaxUnpooling2D()([pooled, sw, inp])
    else:
        pooled, sw = SwitchMaxPooling2D(padding="same")(inp)
        out = SwitchUnpooling2D()([pooled, sw, inp])
    model = keras.Model(inp, [pooled, out])
    for shape in [(1, 6, 6, 2), (3, 7, 5, 2), (4, 10, 3, 2)]:
        x = rng.normal(size=shape).astype("float32")
        ref_pooled, ref_mask = np_switch_pool(x, 2, "same")
        got_pooled, got = model.predict(x, verbose=0, batch_size=2)
        np.testing.assert_array_equal(got_pooled, ref_pooled)
        np.testing.assert_array_equal(got, np_unpool(ref_pooled, ref_mask))


@pytest.mark.jax
@pytest.mark.parametrize("pair", ["argmax", "switch"])
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(rng, mixed_policy, pair, policy):
    if pair == "argmax" and BACKEND != "tensorflow":
        pytest.skip("argmax pair is TensorFlow-only")
    mixed_policy(policy)
    dtype = policy.split("_")[1]
    x = rng.normal(size=(2, 7, 6, 3)).astype("float32")
    pooled, sw, unpooled = run_pair(pair, x, "same")
    assert keras.backend.standardize_dtype(pooled.dtype) == dtype
    assert keras.backend.standardize_dtype(unpooled.dtype) == dtype
    xc = np.asarray(keras.ops.cast(x, dtype)).astype("float32")  # values as the layer sees them
    ref_pooled, ref_mask = np_switch_pool(xc, 2, "same")
    np.testing.assert_array_equal(np.asarray(keras.ops.cast(pooled, "float32")), ref_pooled)
    np.testing.assert_array_equal(
        np.asarray(keras.ops.cast(unpooled, "float32")), np_unpool(ref_pooled, ref_mask)
    )


@pytest.mark.jax
@pytest.mark.parametrize("pair", ["argmax", "switch"])
def test_gradients_route_to_switch_positions(rng, pair):
    if pair == "argmax" and BACKEND != "tensorflow":
        pytest.skip("argmax pair is TensorFlow-only")
    # Ties everywhere: the gradient must go to exactly one position per window, not be split.
    x = rng.integers(0, 2, size=(2, 6, 5, 2)).astype("float32")
    weights = rng.normal(size=x.shape).astype("float32")
    _, ref_mask = np_switch_pool(x, 2, "same")
    ref_pooled_w = rng.normal(size=(2, 3, 3, 2)).astype("float32")

    if pair == "argmax":
        pool, unpool = MaxPoolingWithArgmax2D(padding="same"), MaxUnpooling2D()

        def through(v):
            p, a = pool(v)
            return unpool([p, a, v]) * weights

        def pooled_only(v):
            return pool(v)[0] * ref_pooled_w
    else:
        pool, unpool = SwitchMaxPooling2D(padding="same"), SwitchUnpooling2D()

        def through(v):
            p, m = pool(v)
            return unpool([p, m]) * weights

        def pooled_only(v):
            return pool(v)[0] * ref_pooled_w

    np.testing.assert_allclose(gradient(through, x), weights * ref_mask, rtol=1e-6)
    g = gradient(pooled_only, x)
    expected = np_unpool(ref_pooled_w, ref_mask)
    np.testing.assert_allclose(g, expected, rtol=1e-6)
    assert np.count_nonzero(g) == np.count_nonzero(expected)


@pytest.mark.jax
def test_unpool_value_gradient_gathers_from_switches(rng):
    x = rng.normal(size=(1, 4, 4, 1)).astype("float32")
    pooled, mask = SwitchMaxPooling2D()(x)
    w = rng.normal(size=x.shape).astype("float32")
    g = gradient(lambda v: SwitchUnpooling2D()([v, mask]) * w, np.asarray(pooled))
    # Each pooled value receives the upstream gradient of its window's switch position.
    expected = (w * np.asarray(mask)).reshape(1, 2, 2, 2, 2, 1).sum(axis=(2, 4))
    np.testing.assert_allclose(g, expected, rtol=1e-6)


@pytest.mark.jax
@pytest.mark.parametrize(
    "layer",
    [
        SwitchMaxPooling2D(pool_size=2, padding="same", name="p"),
        SwitchUnpooling2D(pool_size=(2, 2), name="u"),
    ],
    ids=["pool", "unpool"],
)
def test_switch_get_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@requires_tf
def test_argmax_get_config_round_trip():
    for layer in (MaxPoolingWithArgmax2D(pool_size=3, strides=2, padding="same"), MaxUnpooling2D()):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


@pytest.mark.jax
@pytest.mark.parametrize("pair", ["argmax", "switch"])
def test_keras_file_round_trip_without_custom_objects(tmp_path, rng, pair):
    if pair == "argmax" and BACKEND != "tensorflow":
        pytest.skip("argmax pair is TensorFlow-only")
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)
    if pair == "argmax":
        p, s = MaxPoolingWithArgmax2D()(x)
        y = MaxUnpooling2D()([p, s, x])
    else:
        p, s = SwitchMaxPooling2D()(x)
        y = SwitchUnpooling2D()([p, s])
    model = keras.Model(inp, y)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects: registration does it
    xin = rng.normal(size=(2, 8, 6, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(xin, verbose=0), loaded.predict(xin, verbose=0))


@pytest.mark.jax
def test_switch_layer_argument_errors():
    with pytest.raises(ValueError, match="strides == pool_size"):
        SwitchMaxPooling2D(pool_size=3, strides=2)
    with pytest.raises(ValueError, match="size <= 2"):
        SwitchMaxPooling2D(pool_size=3, padding="same")
    with pytest.raises(ValueError, match="padding"):
        SwitchMaxPooling2D(padding="full")
    with pytest.raises(ValueError, match="pool_size"):
        SwitchMaxPooling2D(pool_size=(2, 0))
    with pytest.raises(ValueError, match="values, mask"):
        SwitchUnpooling2D()(np.zeros((1, 2, 2, 1), "float32"))


@pytest.mark.jax
def test_switch_valid_pool_of_three(rng):
    x = rng.normal(size=(2, 7, 9, 2)).astype("float32")
    pooled, mask = SwitchMaxPooling2D(pool_size=3, padding="valid")(x)
    ref_pooled, ref_mask = np_switch_pool(x, 3, "valid")
    np.testing.assert_array_equal(np.asarray(pooled), ref_pooled)
    np.testing.assert_array_equal(np.asarray(mask), ref_mask)
    np.testing.assert_array_equal(
        np.asarray(SwitchUnpooling2D(pool_size=3)([pooled, mask])), np_unpool(ref_pooled, ref_mask, 3)
    )


@pytest.mark.jax
@pytest.mark.skipif(BACKEND == "tensorflow", reason="checks the error raised off TensorFlow")
def test_argmax_layers_raise_clear_error_off_tensorflow():
    with pytest.raises(RuntimeError, match=rf"'{BACKEND}'.*SwitchMaxPooling2D"):
        MaxPoolingWithArgmax2D()
    with pytest.raises(RuntimeError, match="SwitchUnpooling2D"):
        MaxUnpooling2D()


@requires_tf
def test_switch_pair_compiles_with_xla(rng):
    import tensorflow as tf

    pool, unpool = SwitchMaxPooling2D(padding="same"), SwitchUnpooling2D()

    @tf.function(jit_compile=True)
    def f(v):
        p, m = pool(v)
        return unpool([p, m])

    x = rng.normal(size=(2, 7, 6, 3)).astype("float32")
    ref_pooled, ref_mask = np_switch_pool(x, 2, "same")
    np.testing.assert_array_equal(f(x).numpy(), np_unpool(ref_pooled, ref_mask))
