"""The TFLite-int8-safe switch pooling: exact in float, correct switches in full-integer int8
where the quantisation scale is >= 1 (LiteRT's int8 EQUAL then compares everything equal)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import requires_tf

pytestmark = requires_tf


@pytest.mark.parametrize("shape, padding, pool", [
    ((2, 7, 9, 3), "same", 2),
    ((1, 8, 8, 4), "valid", 2),
    ((2, 9, 12, 5), "valid", 3),
    ((1, 5, 6, 2), "same", (1, 2)),
    ((1, 7, 9, 2), "valid", 2),  # a row and a column left over: the mask is padded with zeros
])
def test_argmax_switch_pooling_equals_switch_pooling(shape, padding, pool):
    import tensorflow as tf

    from deconvnet_tf.export._int8_pooling import ArgMaxSwitchPooling2D
    from deconvnet_tf.layers import SwitchMaxPooling2D

    rng = np.random.default_rng(0)
    reference = SwitchMaxPooling2D(pool, padding=padding)
    variant = ArgMaxSwitchPooling2D.from_config(reference.get_config())
    traced = tf.function(variant, input_signature=[
        tf.TensorSpec([None, None, None, shape[-1]], tf.float32)])
    for x in (rng.integers(0, 3, shape).astype("float32"),     # many ties: first max wins
              rng.normal(size=shape).astype("float32")):
        want_pooled, want_mask = (np.asarray(t) for t in reference(x))
        for pooled, mask in (variant(x), traced(x)):             # static and dynamic shapes
            np.testing.assert_array_equal(np.asarray(pooled), want_pooled)
            np.testing.assert_array_equal(np.asarray(mask), want_mask)


def _int8_pool(layer_type, x):
    """Converts input * 8 -> layer -> (pooled, mask) to full-integer int8 (activations up to
    ~2000: int8 scale ~8) and runs it on ``x``; returns dequantised (pooled, mask)."""
    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    inputs = keras.Input(x.shape[1:], batch_size=1)
    pooled, mask = layer_type()(inputs * 8.0)
    model = keras.Model(inputs, [pooled, mask])
    rng = np.random.default_rng(1)
    calibration = [x] + [rng.uniform(0, 255, x.shape).astype("float32") for _ in range(4)]
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = lambda: ([c] for c in calibration)
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    scale, zero = detail["quantization"]
    value = x if not scale else np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
    interpreter.set_tensor(detail["index"], value.astype(detail["dtype"]))
    interpreter.invoke()
    outputs = []
    for detail in interpreter.get_output_details():
        value = interpreter.get_tensor(detail["index"]).astype(np.float32)
        scale, zero = detail["quantization"]
        outputs.append((value - zero) * scale if scale else value)
    outputs.sort(key=lambda a: a.shape[1])
    return outputs


def test_int8_switches_are_right_at_large_scales():
    from deconvnet_tf.export._int8_pooling import ArgMaxSwitchPooling2D

    # 256 distinct integers: x 8 they stay >= one int8 step apart, so the int8 switches must
    # equal the float ones (the plain switch pooling gets the first window position here).
    x = np.random.default_rng(2).permutation(256).reshape(1, 8, 8, 4).astype("float32")
    pooled, mask = _int8_pool(ArgMaxSwitchPooling2D, x)
    window_max = x.reshape(1, 4, 2, 4, 2, 4).max(axis=(2, 4))
    want = x == np.repeat(np.repeat(window_max, 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(mask > 0.5, want)
    np.testing.assert_allclose(pooled, 8 * window_max, atol=12.0)


@pytest.mark.parametrize("signature", [
    [None, 7, None, None],  # static height only, unknown channels
    [None, None, 9, None],  # static width only
    [1, 7, 9, None],        # static size, unknown channels
])
def test_partly_unknown_shapes_trace_to_the_same_outputs(signature):
    import tensorflow as tf

    from deconvnet_tf.export._int8_pooling import ArgMaxSwitchPooling2D
    from deconvnet_tf.layers import SwitchMaxPooling2D

    reference = SwitchMaxPooling2D(2, padding="same")
    variant = ArgMaxSwitchPooling2D.from_config(reference.get_config())
    traced = tf.function(variant, input_signature=[tf.TensorSpec(signature, tf.float32)])
    x = np.random.default_rng(3).normal(size=(1, 7, 9, 3)).astype("float32")
    want_pooled, want_mask = (np.asarray(t) for t in reference(x))
    pooled, mask = traced(x)
    np.testing.assert_array_equal(np.asarray(pooled), want_pooled)
    np.testing.assert_array_equal(np.asarray(mask), want_mask)


def test_with_int8_safe_pooling_swaps_only_the_switch_pooling():
    import keras

    import deconvnet_tf
    from deconvnet_tf.export._int8_pooling import ArgMaxSwitchPooling2D, with_int8_safe_pooling
    from deconvnet_tf.layers import SwitchMaxPooling2D

    model = deconvnet_tf.build_model("deconvnet_tiny", num_classes=3, unpooling="switch",
                                     input_shape=(24, 40, 3))
    safe = with_int8_safe_pooling(model)
    assert safe is not model and safe.name == model.name
    kinds = [type(layer) for layer in safe.layers]
    assert SwitchMaxPooling2D not in kinds and ArgMaxSwitchPooling2D in kinds
    assert len(safe.layers) == len(model.layers)
    assert safe.get_layer("block1_conv1") is model.get_layer("block1_conv1")  # shared, no copy
    for old, new in zip(model.layers, safe.layers):
        if type(old) is SwitchMaxPooling2D:
            assert new.get_config() == old.get_config()
    x = np.random.default_rng(4).integers(0, 256, (2, 24, 40, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(safe(x)), np.asarray(model(x)), atol=1e-5)
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert with_int8_safe_pooling(plain) is plain  # nothing to swap: the model itself
