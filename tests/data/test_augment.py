"""The augmentation spec, checked on both executors (tf.data ops and the NumPy twin).

The random parameters are drawn in one place, :mod:`deconvnet_tf.data.augment_spec`; both
executors get the same key ``(i, 7)`` per draw index here, and
``tests/data/test_augment_parity.py`` checks that they give the same outputs for it.

Each test states one rule of the spec (README / docs/training.md) and measures it on the
output, so a changed constant, operator or argument in either executor fails a test
(`python tools/mutation.py --groups augmentation`).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from deconvnet_tf.data import augment_np
from tests.conftest import BACKEND

EXECUTORS = ["numpy", "tensorflow"]


class NumpyOps:
    """The NumPy executor, with the key ``(i, 7)`` per draw index (the TF executor's seed)."""

    def rng(self, i):
        return (i, 7)

    def scale(self, image, label, i, lo, hi):
        return augment_np.random_scale(image, label, self.rng(i), lo, hi)

    def pad(self, image, label, h, w, ignore):
        return augment_np.pad_to_size(image, label, h, w, ignore)

    def crop(self, image, label, h, w, ignore, i):
        return augment_np.random_crop(image, label, h, w, ignore, self.rng(i))

    def flip(self, image, label, i):
        return augment_np.random_flip(image, label, self.rng(i))

    def jitter(self, image, i, **kwargs):
        return augment_np.color_jitter(image, self.rng(i), **kwargs)

    def augment(self, image, label, i, **kwargs):
        return augment_np.augment(image, label, self.rng(i), **kwargs)

    module = augment_np


class TensorFlowOps:
    """The tf.data executor, with the key ``[i, 7]`` per draw index."""

    def __init__(self):
        import tensorflow as tf

        from deconvnet_tf.data import augment

        self.tf, self.module = tf, augment

    def seed(self, i):
        return self.tf.constant([i, 7], self.tf.int32)

    def _np(self, pair):
        return tuple(np.asarray(t) for t in pair) if isinstance(pair, tuple) else np.asarray(pair)

    def scale(self, image, label, i, lo, hi):
        return self._np(self.module.random_scale(image, label, self.seed(i), lo, hi))

    def pad(self, image, label, h, w, ignore):
        return self._np(self.module.pad_to_size(image, label, h, w, ignore))

    def crop(self, image, label, h, w, ignore, i):
        return self._np(self.module.random_crop(image, label, h, w, ignore, self.seed(i)))

    def flip(self, image, label, i):
        return self._np(self.module.random_flip(image, label, self.seed(i)))

    def jitter(self, image, i, **kwargs):
        return self._np(self.module.color_jitter(image, self.seed(i), **kwargs))

    def augment(self, image, label, i, **kwargs):
        return self._np(self.module.augment(image, label, self.seed(i), **kwargs))


@pytest.fixture(params=EXECUTORS)
def ops(request):
    if request.param == "tensorflow":
        if BACKEND != "tensorflow":
            pytest.skip("the tf.data executor runs on the TensorFlow backend")
        return TensorFlowOps()
    return NumpyOps()


def photo(h=12, w=16, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(40, 216, (h, w, 3), dtype=np.uint8)
    label = rng.integers(0, 5, (h, w), dtype=np.uint8)
    return image, label


def test_jitter_with_zero_ranges_is_the_identity(ops):
    image, _ = photo()
    np.testing.assert_array_equal(ops.jitter(image, 3, brightness=0, contrast=0, saturation=0),
                                  image)


def test_jitter_keeps_black_black_and_white_white_without_brightness(ops):
    for value in (0, 255):
        image = np.full((6, 6, 3), value, np.uint8)
        for i in range(4):
            out = ops.jitter(image, i, brightness=0, contrast=0.5, saturation=0.5)
            np.testing.assert_array_equal(out, image)


def spread_of(draws):
    return min(draws), max(draws)


def test_brightness_delta_is_uniform_in_plus_minus_b(ops):
    image = np.full((4, 4, 3), 128, np.uint8)
    deltas = [(ops.jitter(image, i, brightness=0.2, contrast=0, saturation=0).astype(float)
               - 128).mean() / 255 for i in range(48)]
    lo, hi = spread_of(deltas)
    assert -0.2 - 1 / 255 <= lo < -0.1 and 0.1 < hi <= 0.2 + 1 / 255


def test_contrast_factor_is_uniform_in_one_plus_minus_c(ops):
    image = np.zeros((4, 4, 3), np.uint8)
    image[::2], image[1::2] = 88, 168  # mean 128, deviation 40 per channel
    ratios = [np.abs(ops.jitter(image, i, brightness=0, contrast=0.2, saturation=0)
                     .astype(float) - 128).mean() / 40 for i in range(48)]
    lo, hi = spread_of(ratios)
    assert 0.8 - 0.02 <= lo < 0.9 and 1.1 < hi <= 1.2 + 0.02


def test_saturation_factor_is_uniform_in_one_plus_minus_s(ops):
    image = np.zeros((4, 4, 3), np.uint8)
    image[...] = (200, 150, 100)  # HSV saturation 0.5: no clipping at factor <= 1.2
    ratios = [(200 - ops.jitter(image, i, brightness=0, contrast=0, saturation=0.2)
               .astype(float)[..., 2]).mean() / 100 for i in range(48)]
    lo, hi = spread_of(ratios)
    assert 0.8 - 0.02 <= lo < 0.9 and 1.1 < hi <= 1.2 + 0.02


def test_flip_mirrors_image_and_label_together_half_of_the_time(ops):
    image, label = photo()
    flips = 0
    for i in range(40):
        out_image, out_label = ops.flip(image, label, i)
        mirrored = np.array_equal(out_image, image[:, ::-1])
        assert mirrored == np.array_equal(out_label, label[:, ::-1])
        assert mirrored or (np.array_equal(out_image, image)
                            and np.array_equal(out_label, label))
        flips += mirrored
    assert 10 <= flips <= 30


def test_scale_resizes_both_by_the_factor(ops):
    image, label = photo(6, 10)
    out_image, out_label = ops.scale(image, label, 0, 2.0, 2.0)
    assert out_image.shape == (12, 20, 3) and out_label.shape == (12, 20)
    assert set(np.unique(out_label)) <= set(np.unique(label))  # nearest: no new classes
    tiny_image, tiny_label = ops.scale(image[:1, :3], label[:1, :3], 0, 0.5, 0.5)
    assert tiny_image.shape == (1, 2, 3) and tiny_label.shape == (1, 2)  # never below 1
    zeros, _ = ops.scale(np.zeros_like(image), label, 0, 1.5, 1.5)
    assert not zeros.any()  # bilinear of zeros is zero (no clipping offset)


def test_scale_factor_is_drawn_in_the_range(ops):
    image, label = photo(20, 20)
    sizes = {ops.scale(image, label, i, 0.5, 1.5)[0].shape[0] for i in range(30)}
    assert min(sizes) < 15 and max(sizes) > 25 and all(10 <= s <= 30 for s in sizes)


@pytest.mark.parametrize("height, width", [(12, 17), (12, 19), (13, 16), (15, 20)])
def test_pad_at_bottom_right_with_zero_and_ignore(ops, height, width):
    image, label = photo(12, 16)
    out_image, out_label = ops.pad(image, label, height, width, 255)
    assert out_image.shape == (height, width, 3) and out_label.shape == (height, width)
    np.testing.assert_array_equal(out_image[:12, :16], image)
    np.testing.assert_array_equal(out_label[:12, :16], label)
    assert not out_image[12:].any() and not out_image[:, 16:].any()
    assert (out_label[12:] == 255).all() and (out_label[:, 16:] == 255).all()


def test_crop_windows_cover_every_position_and_match_between_image_and_label(ops):
    image, label = photo(6, 7)
    label = (np.arange(42).reshape(6, 7)).astype(np.uint8)  # position-coded labels
    tops, lefts = set(), set()
    for i in range(60):
        out_image, out_label = ops.crop(image, label, 4, 4, 255, i)
        top, left = divmod(int(out_label[0, 0]), 7)
        np.testing.assert_array_equal(out_label, label[top:top + 4, left:left + 4])
        np.testing.assert_array_equal(out_image, image[top:top + 4, left:left + 4])
        tops.add(top)
        lefts.add(left)
    assert tops == {0, 1, 2} and lefts == {0, 1, 2, 3}


def test_augment_without_random_steps_is_a_crop(ops):
    image, label = photo()
    out_image, out_label = ops.augment(image, label, 0, crop_size=(12, 16), ignore_label=255,
                                       scale=None, flip=False, jitter=False)
    np.testing.assert_array_equal(out_image, image)
    np.testing.assert_array_equal(out_label, label)


def test_augment_scales_before_cropping(ops):
    image, label = photo(6, 8)
    out_image, out_label = ops.augment(image, label, 0, crop_size=(12, 16), ignore_label=255,
                                       scale=(2.0, 2.0), flip=False, jitter=False)
    assert (out_label != 255).all()  # the 2x image fills the crop: no padding


def test_augment_flips_and_jitters_by_default(ops):
    image, label = photo()
    mirrored = jittered = 0
    for i in range(16):
        out_image, out_label = ops.augment(image, label, i, crop_size=(12, 16),
                                           ignore_label=255, scale=None)
        flipped = np.array_equal(out_label, label[:, ::-1])
        mirrored += flipped
        reference = image[:, ::-1] if flipped else image
        jittered += not np.array_equal(out_image, reference)
    assert 0 < mirrored < 16 and jittered == 16


def test_augment_jitter_strength_sets_the_brightness_range(ops):
    """``jitter=s`` draws brightness deltas in [-s, s]: 0 is off, 0.5 reaches past 0.2."""
    image = np.full((12, 16, 3), 128, np.uint8)
    label = np.zeros((12, 16), np.uint8)
    kwargs = dict(crop_size=(12, 16), ignore_label=255, scale=None, flip=False)
    for i in range(4):
        out, _ = ops.augment(image, label, i, jitter=0.0, **kwargs)
        np.testing.assert_array_equal(out, image)
    spread = [np.abs(ops.augment(image, label, i, jitter=0.5, **kwargs)[0].astype(float) - 128)
              .mean() / 255 for i in range(24)]
    assert 0.25 < max(spread) <= 0.5 + 1 / 255


@pytest.mark.parametrize("jitter", [1.0, -0.1, 2])
def test_augment_rejects_a_jitter_strength_outside_0_1(ops, jitter):
    image, label = photo()
    with pytest.raises(ValueError, match="jitter must be a bool or a strength in"):
        ops.augment(image, label, 0, crop_size=(12, 16), ignore_label=255, jitter=jitter)


def test_documented_defaults(ops):
    """README/docs: scale 0.75-1.25, brightness/contrast/saturation 0.2, flip and jitter on."""
    params = inspect.signature(ops.module.augment).parameters
    assert params["scale"].default == (0.75, 1.25)
    assert params["flip"].default is True and params["jitter"].default is True
    jitter = inspect.signature(ops.module.color_jitter).parameters
    assert [jitter[k].default for k in ("brightness", "contrast", "saturation")] == [0.2] * 3
    scale = inspect.signature(ops.module.random_scale).parameters
    assert (scale["min_scale"].default, scale["max_scale"].default) == (0.75, 1.25)


def test_pair_checks_name_the_shapes():
    image, label = photo(4, 5)
    with pytest.raises(ValueError, match=r"image must have shape \(H, W, 3\), got \(4, 5, 4\)"):
        augment_np.augment(np.zeros((4, 5, 4), np.uint8), label, np.random.default_rng(0),
                           crop_size=(4, 5), ignore_label=255)
    with pytest.raises(ValueError, match=r"label must have the image's \(H, W\) = \(4, 5\), got"):
        augment_np.augment(image, label[:3], np.random.default_rng(0), crop_size=(4, 5),
                           ignore_label=255)


def test_numpy_colour_primitives():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (2, 3, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(augment_np.adjust_brightness(x, 0.1), x + 0.1, rtol=1e-6)
    batch = augment_np.adjust_contrast(x, 1.5)  # per image of a batch
    for i in range(2):
        np.testing.assert_allclose(batch[i], augment_np.adjust_contrast(x[i], 1.5), rtol=1e-5)
    saturated = augment_np.adjust_saturation(x, 3.0)
    assert saturated.dtype == np.float32
    assert saturated.min() >= -1e-6  # capped at saturation 1: no channel below 0
    black = np.zeros((1, 2, 3), np.float32)
    np.testing.assert_array_equal(augment_np.adjust_saturation(black, 0.5), black)
