"""The random greyscale step of the training augmentation (``grayscale``, config
``grayscale_prob``).

With probability ``p`` the crop becomes its luma ``0.2989 R + 0.5870 G + 0.1140 B`` in all three
channels, after the colour jitter and the tone curve, before the final rounding; labels are
untouched. Off (``p = 0``) nothing is drawn and every other parameter is the plain draw's.
Checked against a NumPy restatement, in both executors and both input pipelines.
"""

from __future__ import annotations

import numpy as np
import pytest

from deconvnet_tf.data import augment_np
from deconvnet_tf.data import augment_spec as spec
from tests.conftest import requires_tf
from tests.data._agreement import (IGNORE, KEYS, assert_pipelines_refuse,
                                   executors_worst_difference, pipelines_agree)
from tests.data._agreement import random_pair as _pair


def _luma(image):
    """The luma of ``image`` in float64 (``tf.image.rgb_to_grayscale``'s weights), restated."""
    return image[..., 0] * 0.2989 + image[..., 1] * 0.5870 + image[..., 2] * 0.1140


def _grey_reference(image):
    """``round(luma)`` in float64, in all three channels, as uint8."""
    grey = np.clip(np.round(_luma(np.asarray(image, np.float64))), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def _assert_grey(image):
    assert image.ndim >= 3 and image.shape[-1] == 3
    np.testing.assert_array_equal(image[..., 0], image[..., 1])
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


def _identity_params(height, width, **changes):
    """Parameters that leave the geometry alone and skip the jitter."""
    fields = dict(scale=1.0, height=height, width=width, top=0, left=0, flip=False,
                  jitter=False, brightness=0.0, contrast=1.0, saturation=1.0)
    return spec.AugmentParams(**{**fields, **changes})


# --- the spec ---------------------------------------------------------------------------------


@pytest.mark.jax
def test_off_by_default_and_other_parameters_unchanged():
    for key in KEYS:
        common = dict(crop_size=(32, 32), scale=(0.5, 1.5), jitter=0.3, gamma=0.5)
        plain = spec.draw(key, 40, 50, **common)
        off = spec.draw(key, 40, 50, **common, grayscale=0.0)
        grey = spec.draw(key, 40, 50, **common, grayscale=1.0)
        assert plain.grayscale is False and off == plain
        assert spec.to_grayscale(key) is False and spec.to_grayscale(key, 1.0) is True
        # Its own stream: scale, crop, flip, jitter and gamma are those of the plain draw.
        assert grey == spec.AugmentParams(**{**plain.__dict__, "grayscale": True})


@pytest.mark.jax
def test_nothing_is_drawn_when_off(monkeypatch):
    """Probability 0 draws no number of the greyscale stream (so no draw of an older version
    changes), a positive one draws exactly one."""
    streams = []
    real = spec.uniform

    def recording(key, stream, *args):
        streams.append(stream)
        return real(key, stream, *args)

    monkeypatch.setattr(spec, "uniform", recording)
    spec.draw((3, 1000), 40, 50, crop_size=(32, 32), jitter=0.3, gamma=0.5)
    assert streams and spec.GRAYSCALE not in streams
    streams.clear()
    spec.draw((3, 1000), 40, 50, crop_size=(32, 32), jitter=0.3, gamma=0.5, grayscale=0.0)
    assert streams and spec.GRAYSCALE not in streams
    streams.clear()
    spec.draw((3, 1000), 40, 50, crop_size=(32, 32), jitter=0.3, gamma=0.5, grayscale=0.2)
    assert streams.count(spec.GRAYSCALE) == 1


@pytest.mark.jax
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_the_share_of_grey_crops_is_the_probability(p):
    grey = [spec.to_grayscale((11, i), p) for i in range(4000)]
    assert abs(np.mean(grey) - p) < 0.03  # 4000 draws: a standard deviation below 0.008
    # Nested: a crop grey at p is grey at every larger probability (one uniform per key).
    assert all(spec.to_grayscale((11, i), 1.0) for i in range(4000) if grey[i])
    assert grey == [spec.to_grayscale((11, i), p) for i in range(4000)]  # deterministic


@pytest.mark.jax
@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf"), True, "0.5", None])
def test_bad_probabilities_are_refused(bad):
    with pytest.raises(ValueError, match=r"grayscale must be a probability in \[0, 1\]"):
        spec.grayscale_strength(bad)
    with pytest.raises(ValueError, match="grayscale must be"):
        augment_np.augment(*_pair(), (0, 1), crop_size=(8, 8), ignore_label=IGNORE,
                           grayscale=bad)


# --- the NumPy executor -----------------------------------------------------------------------


@pytest.mark.jax
@pytest.mark.parametrize("gamma", [1.0, 2.0, 0.5])
def test_numpy_executor_gives_the_luma_after_the_curve(gamma):
    """Identity geometry, no jitter: the output is the luma of the toned input in all three
    channels; labels untouched."""
    image, label = _pair()
    params = _identity_params(23, 31, gamma=gamma, grayscale=True)
    out, out_label = augment_np.apply_params(image, label, params, crop_size=(23, 31),
                                             ignore_label=IGNORE)
    np.testing.assert_array_equal(out_label, label)
    _assert_grey(out)
    toned = 255.0 * (image / 255.0) ** gamma  # float64, not rounded
    diff = np.abs(out.astype(int) - _grey_reference(toned).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01  # float32 against float64 rounding
    # Grey pixels keep their level (the weights sum to 0.9999: 255 becomes 254.97).
    flat = np.repeat(np.arange(0, 256, 15, dtype=np.uint8)[None, :, None], 3, axis=-1)
    out, _ = augment_np.apply_params(flat, np.zeros(flat.shape[:2], np.uint8),
                                     _identity_params(*flat.shape[:2], grayscale=True),
                                     crop_size=flat.shape[:2], ignore_label=IGNORE)
    np.testing.assert_array_equal(out, flat)


@pytest.mark.jax
def test_numpy_augment_grey_is_the_luma_of_the_plain_augment():
    """Same key at p = 1 and p = 0: same labels; the grey image is the luma of the plain one
    (up to one grey level: the plain image is rounded before the luma here)."""
    image, label = _pair(37, 45)
    for key in KEYS:
        kwargs = dict(crop_size=(32, 40), ignore_label=IGNORE, jitter=0.3, gamma=0.5)
        plain, plain_label = augment_np.augment(image, label, key, **kwargs)
        off, off_label = augment_np.augment(image, label, key, grayscale=0.0, **kwargs)
        grey, grey_label = augment_np.augment(image, label, key, grayscale=1.0, **kwargs)
        np.testing.assert_array_equal(off, plain)
        np.testing.assert_array_equal(off_label, plain_label)
        np.testing.assert_array_equal(grey_label, plain_label)
        assert (plain[..., 0] != plain[..., 1]).any()  # the plain crop has colour
        _assert_grey(grey)
        assert np.abs(grey.astype(int) - _grey_reference(plain).astype(int)).max() <= 1


@pytest.mark.jax
def test_numpy_augment_at_half_greys_the_drawn_crops_only():
    image, label = _pair(37, 45)
    kwargs = dict(crop_size=(32, 40), ignore_label=IGNORE)
    greyed = []
    for index in range(40):
        key = (5, index)
        out, out_label = augment_np.augment(image, label, key, grayscale=0.5, **kwargs)
        plain, plain_label = augment_np.augment(image, label, key, **kwargs)
        np.testing.assert_array_equal(out_label, plain_label)
        if spec.to_grayscale(key, 0.5):
            greyed.append(index)
            _assert_grey(out)
        else:
            np.testing.assert_array_equal(out, plain)
    assert 10 <= len(greyed) <= 30  # both cases are exercised


# --- both executors, both pipelines -----------------------------------------------------------


@requires_tf
@pytest.mark.parametrize("options", [{"grayscale": 1.0},
                                     {"grayscale": 0.5, "gamma": 0.5, "jitter": 0.3},
                                     {"grayscale": 1.0, "scale": None, "jitter": False}])
def test_tf_and_numpy_executors_agree_with_grayscale(options):
    cases = [((37, 45), (32, 40)), ((20, 30), (32, 40)), ((13, 9), (16, 16))]
    assert executors_worst_difference(_pair, KEYS, cases, options) <= 1


@requires_tf
def test_tf_executor_greys_every_crop_at_one_and_none_at_zero():
    import tensorflow as tf

    from deconvnet_tf.data import augment

    image, label = _pair(37, 45)
    kwargs = dict(crop_size=(32, 40), ignore_label=IGNORE, jitter=0.3, gamma=0.5)
    for key in KEYS:
        args = (tf.constant(image), tf.constant(label), tf.constant(key, tf.int64))
        plain, plain_label = (np.asarray(t) for t in augment.augment(*args, **kwargs))
        off, _ = (np.asarray(t) for t in augment.augment(*args, grayscale=0.0, **kwargs))
        grey, grey_label = (np.asarray(t) for t in augment.augment(*args, grayscale=1.0,
                                                                   **kwargs))
        np.testing.assert_array_equal(off, plain)
        np.testing.assert_array_equal(grey_label, plain_label)
        assert (plain[..., 0] != plain[..., 1]).any()
        _assert_grey(grey)
        assert np.abs(grey.astype(int) - _grey_reference(plain).astype(int)).max() <= 1


@requires_tf
def test_tf_executor_refuses_a_bad_grayscale():
    import tensorflow as tf

    from deconvnet_tf.data import augment

    image, label = _pair()
    with pytest.raises(ValueError, match="grayscale must be"):
        augment.augment(tf.constant(image), tf.constant(label), tf.constant((0, 1), tf.int64),
                        crop_size=(8, 8), ignore_label=IGNORE, grayscale=1.5)


@requires_tf
def test_the_pipelines_refuse_a_bad_grayscale_before_any_tracing(tmp_path):
    assert_pipelines_refuse(tmp_path, "grayscale", (-1, 2, "x", float("nan"), True),
                            r"^grayscale must be a probability in \[0, 1\]")


@requires_tf
def test_make_pipeline_and_pydataset_give_the_same_grey_batches(tmp_path, monkeypatch):
    kwargs = dict(batch_size=2, crop_size=(32, 40), seed=3, ignore_label=IGNORE, grayscale=0.5)
    assert pipelines_agree(tmp_path, monkeypatch, kwargs, {"grayscale": 0.0})  # it reached them


@requires_tf
def test_both_pipelines_give_only_grey_batches_at_one(tmp_path):
    from deconvnet_tf.data.folder import folder_dataset
    from deconvnet_tf.data.pipeline import make_pipeline
    from deconvnet_tf.data.pydataset import make_pydataset
    from deconvnet_tf.data.synthetic import write_synthetic_dataset

    root = write_synthetic_dataset(tmp_path / "data", num_train=4, num_val=1, height=37, width=45)
    kwargs = dict(batch_size=2, crop_size=(32, 40), seed=3, ignore_label=IGNORE, grayscale=1.0)
    pipe = make_pipeline(folder_dataset(root, "train"), shuffle_buffer=1, deterministic=True,
                         **kwargs)
    pyds = make_pydataset(root, "train", **kwargs)
    for index, (tf_images, _) in zip(range(3), pipe):
        _assert_grey(tf_images.numpy())
        _assert_grey(pyds[index][0])
    # Evaluation batches are never augmented: the validation images keep their colour.
    val_images, _ = make_pydataset(root, "val", training=False, **kwargs)[0]
    assert (val_images[..., 0] != val_images[..., 1]).any()
