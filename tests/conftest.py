"""Shared test helpers: a NumPy pooling reference and a backend-agnostic gradient."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest

import deconvnet_tf  # noqa: F401  (registers layers)

BACKEND = keras.backend.backend()
requires_tf = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="TensorFlow-only feature (argmax layers / tf.data / export)"
)


def np_switch_pool(x: np.ndarray, k: int = 2, padding: str = "valid"):
    """NumPy reference: pooled values and a one-hot switch mask (first max, row-major)."""
    n, h, w, c = x.shape
    if padding == "same":
        oh, ow = math.ceil(h / k), math.ceil(w / k)
    else:
        oh, ow = (h - k) // k + 1, (w - k) // k + 1
    pooled = np.zeros((n, oh, ow, c), x.dtype)
    mask = np.zeros_like(x)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    best, pos = None, None
                    for a in range(k):
                        for bb in range(k):
                            y, xx = i * k + a, j * k + bb
                            if y >= h or xx >= w:
                                continue
                            v = x[b, y, xx, ch]
                            if best is None or v > best:
                                best, pos = v, (y, xx)
                    pooled[b, i, j, ch] = best
                    mask[b, pos[0], pos[1], ch] = 1
    return pooled, mask


def np_unpool(values: np.ndarray, mask: np.ndarray, k: int = 2) -> np.ndarray:
    """NumPy reference unpooling: each value at its window's switch, zeros elsewhere."""
    n, h, w, c = mask.shape
    up = np.repeat(np.repeat(values, k, axis=1), k, axis=2)
    full = np.zeros_like(mask)
    hh, ww = min(h, up.shape[1]), min(w, up.shape[2])
    full[:, :hh, :ww] = up[:, :hh, :ww]
    return full * mask


def gradient(fn, x: np.ndarray) -> np.ndarray:
    """d sum(fn(x)) / dx on the active backend."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = keras.ops.sum(fn(xt))
        return np.asarray(tape.gradient(y, xt))
    if BACKEND == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: keras.ops.sum(fn(v)))(x))
    raise NotImplementedError(BACKEND)


def assert_labels_match(labels: np.ndarray, scores: np.ndarray, tol: float,
                        min_decided: float = 0.99) -> None:
    """Labels of another runtime (LiteRT, a SavedModel) against the reference ``scores``
    (``(..., classes)``), whose values that runtime reproduces within ``tol``: equal wherever
    the reference's top-two margin exceeds ``2 * tol``. Nearer ties may fall either way (float
    kernels differ between runtimes and CPUs), so they are not compared; the compared pixels
    must be at least ``min_decided`` of all, so a wrong runtime cannot hide among the ties
    (trained models: 0.99; an untrained model ties on 2-17% of the pixels, measured)."""
    top2 = np.sort(scores, axis=-1)[..., -2:]
    decided = (top2[..., 1] - top2[..., 0]) > 2 * tol
    np.testing.assert_array_equal(np.asarray(labels)[decided], scores.argmax(-1)[decided])
    assert decided.mean() >= min_decided, f"{(~decided).sum()} near-tie pixels of {decided.size}"


ROOT = Path(__file__).resolve().parents[1]

# The scheduling of ``make test``'s two xdist workers (units of work, their order) lives in
# tests/_xdist_schedule.py, which imports nothing heavy (its test runs it on tiny files).
from tests._xdist_schedule import (  # noqa: E402,F401  (pytest hooks and their tables)
    LONGEST_FIRST, SHARED_CACHE_GROUPS, pytest_collection_modifyitems,
    pytest_xdist_make_scheduler, schedule_rank, unit_of_work, xdist_group_of,
)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def mixed_policy():
    """Yields a setter for the global dtype policy and restores float32 afterwards."""
    yield keras.config.set_dtype_policy
    keras.config.set_dtype_policy("float32")
