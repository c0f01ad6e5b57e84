"""Class-uniform crop windows of the training augmentation (``class_uniform``, config
``class_uniform_crops``).

With probability ``p`` the crop window holds a pixel of a class drawn with equal chance among
those in the (rescaled) label; off (``p = 0``), every parameter is the plain draw's. Checked
against a brute-force restatement of the window rule, in both executors and both pipelines.
"""

from __future__ import annotations

import numpy as np
import pytest

from deconvnet_tf.data import augment_np
from deconvnet_tf.data import augment_spec as spec
from tests.conftest import requires_tf
from tests.data._agreement import (IGNORE, KEYS, assert_pipelines_refuse,
                                   executors_worst_difference, pipelines_agree)


def _rare_pair(height=60, width=80, seed=0):
    """Mostly class 0, a 3x3 patch of class 7 near the bottom-right corner, a row of ignore."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    label = np.zeros((height, width), np.uint8)
    label[height - 6:height - 3, width - 6:width - 3] = 7
    label[0] = IGNORE
    return image, label


def _scaled(label, height, width):
    rows = spec.nearest_indices(label.shape[0], height)
    cols = spec.nearest_indices(label.shape[1], width)
    return label[rows][:, cols]


# --- the spec ---------------------------------------------------------------------------------


@pytest.mark.jax
def test_off_gives_the_plain_draw_and_on_changes_only_the_window():
    _, label = _rare_pair()
    for key in KEYS:
        common = dict(crop_size=(32, 32), scale=(0.5, 1.5), jitter=0.3, gamma=0.5)
        plain = spec.draw(key, 60, 80, **common)
        off = spec.draw(key, 60, 80, **common, class_uniform=0.0, label=label,
                        ignore_label=IGNORE)
        moved = spec.draw(key, 60, 80, **common, class_uniform=1.0, label=label,
                          ignore_label=IGNORE)
        assert off == plain
        assert moved == spec.AugmentParams(**{**plain.__dict__, "top": moved.top,
                                              "left": moved.left})


@pytest.mark.jax
@pytest.mark.parametrize("size, crop", [((60, 80), (32, 32)), ((20, 30), (32, 40)),
                                        ((45, 50), (45, 8))])
def test_the_window_holds_a_pixel_of_the_drawn_class(size, crop):
    """Every class-uniform window is a valid window of the padded image and holds the drawn
    class (the label's classes 0 and 7, each drawn with chance 1/2; ignore never)."""
    _, label = _rare_pair()
    scaled = _scaled(label, *size)
    padded = np.full((max(size[0], crop[0]), max(size[1], crop[1])), IGNORE, np.uint8)
    padded[:size[0], :size[1]] = scaled
    drawn = []
    for index in range(400):
        key = (9, index)
        top, left = spec.class_crop_offset(key, label, size[0], size[1], crop[0], crop[1],
                                           IGNORE)
        assert 0 <= top <= padded.shape[0] - crop[0] and 0 <= left <= padded.shape[1] - crop[1]
        window = padded[top:top + crop[0], left:left + crop[1]]
        drawn.append((0, 7)[spec.randint(key, spec.CLASS_PICK, 2)])
        assert (window == drawn[-1]).any()
    assert 160 <= drawn.count(7) <= 240  # 200 expected


@pytest.mark.jax
def test_window_start_is_uniform_over_the_positions_that_hold_the_pixel():
    """A label with one class-7 pixel at (y, x) = (13, 50), crop 10x20: top uniform in 4..13,
    left uniform in 31..40 (the image is 30x60, so left <= 40)."""
    label = np.full((30, 60), IGNORE, np.uint8)
    label[13, 50] = 7
    draws = np.array([spec.class_crop_offset((4, i), label, 30, 60, 10, 20, IGNORE)
                      for i in range(3000)])
    assert set(draws[:, 0]) == set(range(4, 14)) and set(draws[:, 1]) == set(range(31, 41))
    assert np.bincount(draws[:, 0])[4:].min() > 230  # 300 each expected
    assert np.bincount(draws[:, 1])[31:].min() > 230


@pytest.mark.jax
def test_rare_class_share_of_crops():
    """p = 0.5: the 3x3 patch (0.2% of the pixels) is in about p/2 + (1-p) x its uniform-crop
    rate of the crops, many times its rate without the option."""
    image, label = _rare_pair(120, 160)

    def share(p):
        found = 0
        for index in range(300):
            _, out = augment_np.augment(image, label, (1, index), crop_size=(48, 48),
                                        ignore_label=IGNORE, scale=(0.5, 2.0), jitter=False,
                                        class_uniform=p)
            found += bool((out == 7).any())
        return found / 300

    plain, half = share(0.0), share(0.5)
    assert plain < 0.15 and half > plain + 0.12 and half > 0.18


@pytest.mark.jax
def test_no_class_to_draw_falls_back_to_the_uniform_window():
    label = np.full((20, 30), IGNORE, np.uint8)
    assert spec.class_crop_offset((0, 1), label, 40, 60, 16, 16, IGNORE) is None
    for key in KEYS:
        plain = spec.draw(key, 20, 30, crop_size=(16, 16))
        fallback = spec.draw(key, 20, 30, crop_size=(16, 16), class_uniform=1.0, label=label,
                             ignore_label=IGNORE)
        assert fallback == plain


@pytest.mark.jax
@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf"), True, "0.5", None])
def test_bad_probabilities_are_refused(bad):
    with pytest.raises(ValueError, match=r"class_uniform must be a probability in \[0, 1\]"):
        spec.class_uniform_strength(bad)
    image, label = _rare_pair()
    with pytest.raises(ValueError, match="class_uniform must be"):
        augment_np.augment(image, label, (0, 1), crop_size=(8, 8), ignore_label=IGNORE,
                           class_uniform=bad)


@pytest.mark.jax
def test_a_missing_or_mis_sized_label_is_refused():
    key = next(k for k in ((0, i) for i in range(100))
               if spec.uniform(k, spec.CLASS_CROP) < 0.5)
    with pytest.raises(ValueError, match=r"need the source label of shape \(20, 30\), got None"):
        spec.draw(key, 20, 30, crop_size=(8, 8), class_uniform=0.5)
    with pytest.raises(ValueError, match=r"shape \(20, 30\), got \(30, 20\)"):
        spec.draw(key, 20, 30, crop_size=(8, 8), class_uniform=0.5,
                  label=np.zeros((30, 20), np.uint8))


# --- both executors, both pipelines -----------------------------------------------------------


@requires_tf
@pytest.mark.parametrize("options", [{"class_uniform": 1.0},
                                     {"class_uniform": 0.5, "jitter": 0.3, "gamma": 0.5},
                                     {"class_uniform": 0.7, "scale": None, "jitter": False}])
def test_tf_and_numpy_executors_agree(options):
    cases = [((60, 80), (32, 40)), ((20, 30), (32, 40)), ((13, 9), (16, 16))]
    assert executors_worst_difference(_rare_pair, KEYS, cases, options) <= 1


@requires_tf
def test_the_pipelines_refuse_a_bad_probability_before_any_tracing(tmp_path):
    assert_pipelines_refuse(tmp_path, "class_uniform", (-1, "x", float("nan"), 2),
                            r"^class_uniform must be a probability")


@requires_tf
def test_make_pipeline_and_pydataset_give_the_same_batches(tmp_path, monkeypatch):
    kwargs = dict(batch_size=2, crop_size=(16, 20), seed=3, ignore_label=IGNORE,
                  class_uniform=1.0)
    assert pipelines_agree(tmp_path, monkeypatch, kwargs, {"class_uniform": 0.0})  # reached


@pytest.mark.jax
def test_class_crop_offset_refuses_a_label_that_is_not_2d():
    with pytest.raises(ValueError, match=r"label must have shape \(H, W\), got \(4, 5, 1\)"):
        spec.class_crop_offset((0, 1), np.zeros((4, 5, 1), np.uint8), 4, 5, 2, 2, IGNORE)


@requires_tf
def test_tf_draw_params_needs_the_label_for_class_uniform_windows():
    import tensorflow as tf

    from deconvnet_tf.data import augment

    image, label = _rare_pair()
    with pytest.raises(ValueError, match="class_uniform crops need the label"):
        augment.draw_params(tf.constant((0, 1), tf.int64), tf.constant(image), crop_size=(8, 8),
                            class_uniform=0.5)
    sizes, _ = augment.draw_params(tf.constant((0, 1), tf.int64), tf.constant(image),
                                   crop_size=(8, 8), class_uniform=0.5, label=tf.constant(label),
                                   ignore_label=IGNORE)
    expected = spec.draw((0, 1), 60, 80, crop_size=(8, 8), class_uniform=0.5, label=label,
                         ignore_label=IGNORE)
    assert sizes.numpy().tolist() == [expected.height, expected.width, expected.top,
                                      expected.left, int(expected.flip)]
