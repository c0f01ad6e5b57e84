"""Property tests: both pooling pairs against a loop-based NumPy reference of TensorFlow's op.

Hypothesis draws shapes (batch 0..3, odd sizes, inputs smaller than a window), window sizes and
strides, paddings, dtypes (every float and integer type the backend keeps) and values with many
ties, +-inf and NaN. The reference is written from the ``MaxPoolWithArgmax`` kernel's rule, not
from the layers: scan each window in row-major order from its first element and move only to a
strictly greater one (so NaN wins only as a window's first element), with TensorFlow's padding
("same" pads ``max((out - 1) * stride + pool - size, 0) // 2`` before the data).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deconvnet_tf.layers import (
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
    SwitchMaxPooling2D,
    SwitchUnpooling2D,
)
from tests.conftest import BACKEND, requires_tf

# The switch pair is the same keras.ops code on both backends; the TensorFlow run checks 40
# (gradients 15) examples of each property, the JAX run, where every new shape and dtype is
# compiled (~0.5 s per example), half as many of the same derandomized stream.
EXAMPLES, GRADIENT_EXAMPLES = (40, 15) if BACKEND == "tensorflow" else (20, 8)
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
GRADIENTS = settings(PROPERTY, max_examples=GRADIENT_EXAMPLES)  # each example traces a gradient

# JAX (without x64) turns 64-bit inputs into 32-bit ones, so it keeps only these.
DTYPES = ["float16", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
          "int64", "uint32"]
if BACKEND == "jax":
    DTYPES = ["float16", "float32", "int8", "uint8", "int16", "uint16", "int32"]


def out_length(n: int, k: int, s: int, padding: str) -> int:
    return math.ceil(n / s) if padding == "same" else max((n - k) // s + 1, 0)


def np_pool_with_argmax(x, pool, strides, padding):
    """Pooled values and batch-inclusive flat argmax, by TensorFlow's kernel rule."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw) = pool, strides
    oh, ow = out_length(h, kh, sh, padding), out_length(w, kw, sw, padding)
    top = max((oh - 1) * sh + kh - h, 0) // 2 if padding == "same" else 0
    left = max((ow - 1) * sw + kw - w, 0) // 2 if padding == "same" else 0
    pooled = np.zeros((n, oh, ow, c), x.dtype)
    argmax = np.zeros((n, oh, ow, c), np.int64)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    best, pos = None, None
                    for y in range(i * sh - top, i * sh - top + kh):
                        for xx in range(j * sw - left, j * sw - left + kw):
                            if not (0 <= y < h and 0 <= xx < w):
                                continue
                            v = x[b, y, xx, ch]
                            if best is None or v > best:
                                best, pos = v, ((b * h + y) * w + xx) * c + ch
                    pooled[b, i, j, ch], argmax[b, i, j, ch] = best, pos
    return pooled, argmax


def np_unpool(values, argmax, shape):
    """Scatter-add of the values at the switches into zeros of ``shape``."""
    out = np.zeros(int(np.prod(shape)), values.dtype)
    np.add.at(out, argmax.ravel(), values.ravel())
    return out.reshape(shape)


def switch_mask(argmax, shape, dtype):
    mask = np.zeros(int(np.prod(shape)), dtype)
    mask[argmax.ravel()] = 1
    return mask.reshape(shape)


@st.composite
def cases(draw, overlapping: bool):
    """(x, pool_size, strides, padding) with values full of ties and non-finite numbers."""
    dtype = draw(st.sampled_from(DTYPES))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if overlapping:
        strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        padding = draw(st.sampled_from(["valid", "same"]))
    else:
        strides = (kh, kw)
        padding = draw(st.sampled_from(["valid", "same"] if max(kh, kw) <= 2 else ["valid"]))
    shape = (draw(st.integers(0, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9)),
             draw(st.integers(1, 3)))
    size = int(np.prod(shape))
    if np.issubdtype(np.dtype(dtype), np.floating):
        pool = [-2.0, -1.0, 0.0, 0.5, 1.0, 3.0, np.inf, -np.inf, np.nan]
    else:
        info = np.iinfo(dtype)
        pool = [info.min, 0, 1, 2, 7, info.max]
    values = draw(st.lists(st.sampled_from(pool), min_size=size, max_size=size))
    x = np.array(values, dtype=np.float64 if dtype.startswith("float") else dtype)
    return x.astype(dtype).reshape(shape), (kh, kw), strides, padding


def as_numpy(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


@pytest.mark.jax
@PROPERTY
@given(cases(overlapping=False))
def test_switch_pair_matches_reference(case):
    x, pool, strides, padding = case
    ref_pooled, ref_argmax = np_pool_with_argmax(x, pool, strides, padding)
    pooled, mask = SwitchMaxPooling2D(pool, padding=padding)(x)
    unpooled = SwitchUnpooling2D(pool)([pooled, mask])
    for out in (pooled, mask, unpooled):
        assert keras.backend.standardize_dtype(out.dtype) == x.dtype.name
    np.testing.assert_array_equal(as_numpy(pooled), ref_pooled)
    np.testing.assert_array_equal(as_numpy(mask), switch_mask(ref_argmax, x.shape, x.dtype))
    np.testing.assert_array_equal(as_numpy(unpooled), np_unpool(ref_pooled, ref_argmax, x.shape))


@requires_tf
@PROPERTY
@given(cases(overlapping=True))
def test_argmax_pair_matches_reference(case):
    x, pool, strides, padding = case
    ref_pooled, ref_argmax = np_pool_with_argmax(x, pool, strides, padding)
    pooled, argmax = MaxPoolingWithArgmax2D(pool, strides, padding)(x)
    unpooled = MaxUnpooling2D(pool, strides, padding)([pooled, argmax, x])
    assert pooled.dtype.name == x.dtype.name and unpooled.dtype.name == x.dtype.name
    np.testing.assert_array_equal(pooled.numpy(), ref_pooled)
    if ref_argmax.size:  # the switch of an all-padding window is never used
        np.testing.assert_array_equal(argmax.numpy(), ref_argmax)
    np.testing.assert_array_equal(unpooled.numpy(), np_unpool(ref_pooled, ref_argmax, x.shape))


@requires_tf
@PROPERTY
@given(cases(overlapping=False))
def test_pairs_agree_and_switch_pair_compiles_with_xla(case):
    import tensorflow as tf

    x, pool, strides, padding = case
    pooled, argmax = MaxPoolingWithArgmax2D(pool, strides, padding)(x)
    reference = MaxUnpooling2D(pool, strides, padding)([pooled, argmax, x])
    pool_layer, unpool_layer = SwitchMaxPooling2D(pool, padding=padding), SwitchUnpooling2D(pool)

    @tf.function(jit_compile=True)
    def pair(t):
        p, m = pool_layer(t)
        return p, unpool_layer([p, m])

    if x.dtype.name in ("uint16", "uint32", "int8", "int16") or not x.size:
        pair = pair.python_function  # types XLA:CPU lacks kernels for; empty: nothing to compile
    s_pooled, s_unpooled = pair(tf.constant(x))
    np.testing.assert_array_equal(s_pooled.numpy(), pooled.numpy())
    np.testing.assert_array_equal(s_unpooled.numpy(), reference.numpy())


def float_cases():
    return cases(overlapping=False).filter(lambda c: c[0].dtype.name in ("float32", "float64"))


@pytest.mark.jax
@GRADIENTS
@given(float_cases(), st.integers(0, 2**16))
def test_switch_pair_gradients_select_the_switch(case, seed):
    """d sum(w * pool(x)) / dx is w at each switch and 0 elsewhere, whatever the neighbours."""
    from tests.conftest import gradient

    x, pool, _, padding = case
    _, ref_argmax = np_pool_with_argmax(x, pool, pool, padding)
    ref_pooled = np_pool_with_argmax(x, pool, pool, padding)[0]
    w = np.random.default_rng(seed).uniform(1, 2, ref_pooled.shape).astype(x.dtype)
    layer = SwitchMaxPooling2D(pool, padding=padding)
    grad = gradient(lambda t: layer(t)[0] * w, x)
    np.testing.assert_array_equal(grad, np_unpool(w, ref_argmax, x.shape))
    # Through the unpooling: the gradient reaching the values is the output's at the switch.
    unpool = SwitchUnpooling2D(pool)
    mask = layer(x)[1]
    w_out = np.random.default_rng(seed + 1).uniform(1, 2, x.shape).astype(x.dtype)
    grad_values = gradient(lambda v: unpool([v, mask]) * w_out, ref_pooled)
    expected = w_out.reshape(-1)[ref_argmax.ravel()].reshape(ref_pooled.shape)
    np.testing.assert_array_equal(grad_values, expected)


@requires_tf
@GRADIENTS
@given(float_cases(), st.integers(0, 2**16))
def test_argmax_pair_gradients_equal_switch_pair(case, seed):
    from tests.conftest import gradient

    x, pool, _, padding = case
    w = np.random.default_rng(seed).uniform(1, 2, x.shape).astype(x.dtype)
    argmax_pool = MaxPoolingWithArgmax2D(pool, pool, padding)
    argmax_unpool = MaxUnpooling2D(pool, pool)
    switch_pool, switch_unpool = SwitchMaxPooling2D(pool, padding=padding), SwitchUnpooling2D(pool)

    def through_argmax(t):
        p, a = argmax_pool(t)
        return argmax_unpool([p, a, t]) * w

    def through_switch(t):
        p, m = switch_pool(t)
        return switch_unpool([p, m]) * w

    np.testing.assert_array_equal(gradient(through_switch, x), gradient(through_argmax, x))
