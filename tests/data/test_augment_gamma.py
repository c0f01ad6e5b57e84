"""The random tone curve of the training augmentation (``gamma``, config ``gamma_jitter``).

``x -> x ** g`` on the 0..1 scale after the colour jitter, ``log g`` uniform in
``[-log(1 + t), log(1 + t))``; off (``g = 1``, no other parameter changed) at strength 0. Checked
against a NumPy restatement, in both executors and both input pipelines.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from deconvnet_tf.data import augment_np
from deconvnet_tf.data import augment_spec as spec
from tests.conftest import requires_tf
from tests.data._agreement import (IGNORE, KEYS, assert_pipelines_refuse,
                                   executors_worst_difference, pipelines_agree)
from tests.data._agreement import random_pair as _pair


def _reference(image, gamma):
    """``round(255 * (x / 255) ** gamma)`` in float64, the tone curve restated."""
    return np.clip(np.round(255.0 * (image / 255.0) ** gamma), 0, 255).astype(np.uint8)


# --- the spec ---------------------------------------------------------------------------------


@pytest.mark.jax
def test_off_by_default_and_other_parameters_unchanged():
    for key in KEYS:
        plain = spec.draw(key, 40, 50, crop_size=(32, 32), scale=(0.5, 1.5), jitter=0.3)
        toned = spec.draw(key, 40, 50, crop_size=(32, 32), scale=(0.5, 1.5), jitter=0.3,
                          gamma=0.5)
        assert plain.gamma == 1.0 and spec.gamma_factor(key) == 1.0
        assert toned.gamma == spec.gamma_factor(key, 0.5) != 1.0
        # Its own stream: scale, crop, flip and colour jitter are those of the plain draw.
        assert toned == spec.AugmentParams(**{**plain.__dict__, "gamma": toned.gamma})


@pytest.mark.jax
def test_log_gamma_is_uniform_over_its_range():
    logs = np.log([spec.gamma_factor((11, i), 0.5) for i in range(4000)])
    bound = math.log(1.5)
    assert -bound <= logs.min() < -bound + 0.01 and bound - 0.01 < logs.max() < bound
    assert abs(logs.mean()) < 0.01  # symmetric: as often darker as brighter
    counts = np.histogram(logs, bins=4, range=(-bound, bound))[0]
    assert counts.min() > 900  # about 1000 per quarter of the range


@pytest.mark.jax
@pytest.mark.parametrize("bad", [-0.1, 3.5, float("nan"), float("inf"), True, "0.5", None])
def test_bad_strengths_are_refused(bad):
    with pytest.raises(ValueError, match=r"gamma must be a number in \[0, 3\]"):
        spec.gamma_strength(bad)
    with pytest.raises(ValueError, match="gamma must be"):
        augment_np.augment(*_pair(), (0, 1), crop_size=(8, 8), ignore_label=IGNORE, gamma=bad)


# --- the NumPy executor -----------------------------------------------------------------------


@pytest.mark.jax
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 1 / 3])
def test_numpy_executor_applies_the_curve(gamma):
    """Identity geometry, no jitter: the output is the tone curve of the input, exactly."""
    image, label = _pair()
    params = spec.AugmentParams(scale=1.0, height=23, width=31, top=0, left=0, flip=False,
                                jitter=False, brightness=0.0, contrast=1.0, saturation=1.0,
                                gamma=gamma)
    out, out_label = augment_np.apply_params(image, label, params, crop_size=(23, 31),
                                             ignore_label=IGNORE)
    np.testing.assert_array_equal(out_label, label)
    diff = np.abs(out.astype(int) - _reference(image, gamma).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01  # float32 against float64 rounding
    if gamma != 1.0:  # monotone and fixing black and white
        black_white = np.array([[[0, 255, 0]]], np.uint8)
        bw, _ = augment_np.apply_params(black_white, np.zeros((1, 1), np.uint8),
                                        spec.AugmentParams(**{**params.__dict__, "height": 1,
                                                              "width": 1}),
                                        crop_size=(1, 1), ignore_label=IGNORE)
        np.testing.assert_array_equal(bw, black_white)


@pytest.mark.jax
def test_numpy_augment_with_gamma_is_the_plain_augment_toned():
    """Same key with and without gamma: same labels; the image is the plain one under the
    drawn curve (up to one grey level: the plain image is rounded before the curve here)."""
    image, label = _pair(37, 45)
    for key in KEYS:
        kwargs = dict(crop_size=(32, 40), ignore_label=IGNORE, jitter=0.2)
        plain, plain_label = augment_np.augment(image, label, key, **kwargs)
        toned, toned_label = augment_np.augment(image, label, key, gamma=0.5, **kwargs)
        np.testing.assert_array_equal(toned_label, plain_label)
        g = spec.gamma_factor(key, 0.5)
        expected = _reference(plain, g).astype(int)
        # Rounding the plain image first moves a value by at most half a level before the
        # curve, whose slope is below 2 where it matters (g <= 1.5) except near black for g < 1.
        bright = plain >= 16
        assert np.abs(toned.astype(int) - expected)[bright].max() <= 1
        if g > 1:
            assert (toned <= plain).all()
        else:
            assert (toned >= plain).all()


# --- both executors, both pipelines -----------------------------------------------------------


@requires_tf
@pytest.mark.parametrize("options", [{"gamma": 0.5}, {"gamma": 2.0, "jitter": 0.3},
                                     {"gamma": 0.5, "scale": None, "jitter": False}])
def test_tf_and_numpy_executors_agree_with_gamma(options):
    cases = [((37, 45), (32, 40)), ((20, 30), (32, 40)), ((13, 9), (16, 16))]
    assert executors_worst_difference(_pair, KEYS, cases, options) <= 1


@requires_tf
def test_tf_executor_refuses_a_bad_gamma():
    import tensorflow as tf

    from deconvnet_tf.data import augment

    image, label = _pair()
    with pytest.raises(ValueError, match="gamma must be"):
        augment.augment(tf.constant(image), tf.constant(label), tf.constant((0, 1), tf.int64),
                        crop_size=(8, 8), ignore_label=IGNORE, gamma=-1)


@requires_tf
def test_the_pipelines_refuse_a_bad_gamma_before_any_tracing(tmp_path):
    assert_pipelines_refuse(tmp_path, "gamma", (-1, "x", float("nan")),
                            r"^gamma must be a number in \[0, 3\]")


@requires_tf
def test_make_pipeline_and_pydataset_give_the_same_toned_batches(tmp_path, monkeypatch):
    kwargs = dict(batch_size=2, crop_size=(32, 40), seed=3, ignore_label=IGNORE, gamma=0.5)
    assert pipelines_agree(tmp_path, monkeypatch, kwargs, {"gamma": 0.0})  # the curve reached them
