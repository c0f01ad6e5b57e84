"""Behaviour of ``combine_probabilities`` pinned by mutation testing (mutmut survivors): exact
error messages, float32 arithmetic whatever the input dtype, weights that are only relative,
and the per-pixel renormalisation."""

from __future__ import annotations

import numpy as np
import pytest

from deconvnet_tf.inference.ensemble import combine_probabilities

pytestmark = pytest.mark.jax  # NumPy only


def _maps(seed=0, shape=(3, 5), classes=4):
    rng = np.random.default_rng(seed)
    return [rng.dirichlet(np.ones(classes), shape).astype(np.float16) for _ in range(2)]


def test_exact_error_messages():
    a = np.full((2, 2, 3), 1 / 3, np.float32)
    with pytest.raises(ValueError) as err:
        combine_probabilities([])
    assert str(err.value) == "combine_probabilities needs at least one probability map"
    with pytest.raises(ValueError) as err:
        combine_probabilities([a, a[..., :2]])
    assert str(err.value) == ("probability maps differ in shape: [(2, 2, 3), (2, 2, 2)] (the "
                              "models must predict the same classes at the image's size)")


@pytest.mark.parametrize("method", ["mean", "product"])
def test_maps_are_combined_in_float32_whatever_their_dtype(method):
    # float16 maps give bit for bit the result of the same values as float32.
    maps = _maps()
    assert np.array_equal(combine_probabilities(maps, method, weights=[1, 2]),
                          combine_probabilities([m.astype(np.float32) for m in maps], method,
                                                weights=[1, 2]))


@pytest.mark.parametrize("method", ["mean", "product"])
def test_weights_are_used_in_float64_whatever_their_dtype(method):
    maps = [m.astype(np.float32) for m in _maps(1)]
    weights = np.float16([0.1, 0.7])
    assert np.array_equal(combine_probabilities(maps, method, weights=weights),
                          combine_probabilities(maps, method, weights=weights.tolist()))


def test_mean_weights_are_relative():
    """Mixing weights are scaled to sum to 1: any common factor gives the same mean (no
    float32 overflow for huge weights, no underflow for tiny ones)."""
    maps = [m.astype(np.float32) for m in _maps(2)]
    expected = combine_probabilities(maps, "mean", weights=[1, 3])
    for scale in (2.0**100, 2.0**-100):
        np.testing.assert_array_equal(
            combine_probabilities(maps, "mean", weights=[scale, 3 * scale]), expected)


def test_mean_is_renormalised_per_pixel():
    # Maps that sum to 0.5 per pixel: the result still sums to 1.
    half = np.array([[[0.25, 0.25], [0.4, 0.1]]], np.float32)
    np.testing.assert_array_equal(combine_probabilities([half]),
                                  np.float32([[[0.5, 0.5], [0.8, 0.2]]]))
