"""One augmentation spec, two executors: the spec (``augment_spec``) is a pure function of the
key ``(seed, index)``; the tf.data executor (``augment``) and the NumPy executor
(``augment_np``) apply the same parameters, so the same key gives the same scale, crop window
and flip (labels identical) and the same colour jitter (images within one grey level: the
bilinear resize and the colour reductions round differently in OpenCV/NumPy and tf.image; the
executors keep the image in float from the resize to the end and round once, so a float
difference can move a pixel by at most one level). The tf.data pipeline and the PyDataset give
the example at stream position ``p`` the key ``(seed, p)``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from deconvnet_tf.data import augment_np
from deconvnet_tf.data import augment_spec as spec
from tests.conftest import requires_tf

IGNORE = 255
KEYS = [(0, 0), (0, 1), (0, 7), (3, 0), (3, 1000), (12345, 42), (-1, 5), (2**40, 2**33)]
# (image size, crop size): larger than the crop, smaller than it, odd sizes, one smaller side.
SIZES = [((37, 45), (32, 40)), ((20, 30), (32, 40)), ((101, 77), (48, 48)), ((13, 9), (16, 16)),
         ((64, 31), (48, 48)), ((1, 1), (4, 6))]


def _pair(height, width, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    label = rng.integers(0, 21, (height, width)).astype(np.uint8)
    return image, label


def _spec_label(label, params, crop_size):
    """The label the spec prescribes, computed from the drawn parameters by hand."""
    rows = [int(Fraction(2 * i + 1, 2) * label.shape[0] / params.height)
            for i in range(params.height)]
    cols = [int(Fraction(2 * j + 1, 2) * label.shape[1] / params.width)
            for j in range(params.width)]
    scaled = label[np.ix_(rows, cols)]
    ch, cw = crop_size
    padded = np.full((max(ch, scaled.shape[0]), max(cw, scaled.shape[1])), IGNORE, np.uint8)
    padded[: scaled.shape[0], : scaled.shape[1]] = scaled
    window = padded[params.top : params.top + ch, params.left : params.left + cw]
    return window[:, ::-1] if params.flip else window


# --- the spec (NumPy only: also runs on the JAX backend) -------------------------------------


@pytest.mark.jax
def test_the_draw_is_a_function_of_the_key_only():
    a = spec.draw((5, 9), 40, 56, crop_size=(32, 32))
    assert spec.draw((5, 9), 40, 56, crop_size=(32, 32)) == a
    assert spec.draw(np.array([5, 9], np.int32), 40, 56, crop_size=(32, 32)) == a
    assert spec.draw([5, 9], 40, 56, crop_size=(32, 32)) == a
    others = {spec.draw(key, 40, 56, crop_size=(32, 32)) for key in [(5, 10), (6, 9), (9, 5)]}
    assert a not in others and len(others) == 3
    assert spec.as_key(7) == (7, 0)
    gen_a, gen_b = np.random.default_rng(1), np.random.default_rng(1)
    assert spec.as_key(gen_a) == spec.as_key(gen_b) != spec.as_key(gen_a)  # advances it
    with pytest.raises(ValueError, match="seed must be an int, a pair of ints"):
        spec.as_key((1, 2, 3))
    with pytest.raises(ValueError, match="seed must be an int, a pair of ints"):
        spec.as_key(0.5)


@pytest.mark.jax
def test_the_single_step_draws_are_the_fields_of_the_draw():
    for key in KEYS:
        for (h, w), crop in SIZES:
            p = spec.draw(key, h, w, crop_size=crop, scale=(0.5, 1.5), jitter=0.3)
            assert p.scale == spec.scale_factor(key, 0.5, 1.5)
            assert (p.height, p.width) == spec.scaled_size(key, h, w, 0.5, 1.5)
            assert (p.height, p.width) == (max(round(h * p.scale), 1), max(round(w * p.scale), 1))
            assert (p.top, p.left) == spec.crop_offset(key, p.height, p.width, *crop)
            assert 0 <= p.top <= max(p.height - crop[0], 0)
            assert 0 <= p.left <= max(p.width - crop[1], 0)
            assert p.flip == spec.flip(key)
            factors = spec.jitter_factors(key, 0.3, 0.3, 0.3)
            assert (p.brightness, p.contrast, p.saturation) == factors
            assert p.jitter
    off = spec.draw((1, 2), 20, 30, crop_size=(8, 8), scale=None, flip=False, jitter=False)
    assert (off.scale, off.height, off.width, off.flip, off.jitter) == (1.0, 20, 30, False, False)
    assert (off.brightness, off.contrast, off.saturation) == (0.0, 1.0, 1.0)


@pytest.mark.jax
def test_the_draws_are_uniform_over_their_ranges():
    draws = [spec.draw((11, i), 40, 50, crop_size=(32, 32), scale=(0.5, 1.5)) for i in range(2000)]
    scales = np.array([p.scale for p in draws])
    assert 0.5 <= scales.min() < 0.51 and 1.49 < scales.max() < 1.5
    assert abs(scales.mean() - 1.0) < 0.02
    assert 0.45 < np.mean([p.flip for p in draws]) < 0.55
    deltas = np.array([p.brightness for p in draws])
    assert -0.2 <= deltas.min() < -0.19 and 0.19 < deltas.max() < 0.2
    for field in ("contrast", "saturation"):
        values = np.array([getattr(p, field) for p in draws])
        assert 0.8 <= values.min() < 0.81 and 1.19 < values.max() < 1.2
    tops = np.bincount([spec.crop_offset((3, i), 40, 50, 37, 45)[0] for i in range(4000)],
                       minlength=4)
    assert len(tops) == 4 and tops.min() > 850  # every top in [0, 3], about equally often


@pytest.mark.jax
def test_nearest_indices_are_exact_half_pixel_centres():
    for n_in, n_out in [(20, 19), (37, 46), (45, 34), (7, 7), (1, 5), (5, 1), (40, 80)]:
        expected = [int((Fraction(i) + Fraction(1, 2)) * n_in / n_out) for i in range(n_out)]
        np.testing.assert_array_equal(spec.nearest_indices(n_in, n_out), expected)
    np.testing.assert_array_equal(spec.nearest_indices(9, 9), np.arange(9))


@pytest.mark.jax
def test_the_numpy_executor_follows_the_spec():
    for key in KEYS:
        for (h, w), crop in SIZES:
            image, label = _pair(h, w, seed=key[1] % 97)
            out_image, out_label = augment_np.augment(image, label, key, crop_size=crop,
                                                      ignore_label=IGNORE)
            p = spec.draw(key, h, w, crop_size=crop)
            np.testing.assert_array_equal(out_label, _spec_label(label, p, crop))
            assert out_image.shape == (*crop, 3) and out_image.dtype == np.uint8


# --- TensorFlow executor vs NumPy executor ------------------------------------------------


def _tf_augment(image, label, key, **kwargs):
    import tensorflow as tf

    from deconvnet_tf.data import augment

    out = augment.augment(tf.constant(image), tf.constant(label), tf.constant(key, tf.int64),
                          **kwargs)
    return tuple(np.asarray(t) for t in out)


def _grey_difference(a, b):
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@requires_tf
@pytest.mark.parametrize("options", [
    {},                                             # the defaults: scale, flip, jitter 0.2
    {"scale": (0.5, 2.0), "jitter": 0.5},
    {"jitter": False},
    {"scale": None},
    {"scale": None, "jitter": False},               # crop and flip only: exact
])
def test_tf_and_numpy_executors_agree(options):
    """Same key: labels identical (same scale, crop window, flip), images within one grey
    level; the spec's parameters checked on the TF labels too."""
    worst, differing, pixels = 0, 0, 0
    for key in KEYS:
        for (h, w), crop in SIZES:
            image, label = _pair(h, w, seed=key[1] % 97)
            kwargs = dict(crop_size=crop, ignore_label=IGNORE, **options)
            np_image, np_label = augment_np.augment(image, label, key, **kwargs)
            tf_image, tf_label = _tf_augment(image, label, key, **kwargs)
            np.testing.assert_array_equal(tf_label, np_label)
            params = spec.draw(key, h, w, crop_size=crop,
                               scale=options.get("scale", (0.75, 1.25)),
                               jitter=options.get("jitter", True))
            np.testing.assert_array_equal(tf_label, _spec_label(label, params, crop))
            assert tf_image.shape == np_image.shape and tf_image.dtype == np.uint8
            worst = max(worst, _grey_difference(tf_image, np_image))
            differing += int((tf_image != np_image).sum())
            pixels += tf_image.size
    print(f"{options}: max image difference {worst} grey level(s), {differing} of {pixels} values")
    assert worst <= 1, f"max image difference {worst} grey levels"
    assert differing <= 0.005 * pixels  # one-level differences are float ties, rare (~0.1%)
    if options.get("scale", ()) is None and options.get("jitter", True) is False:
        assert worst == differing == 0


@requires_tf
def test_tf_and_numpy_single_steps_agree():
    import tensorflow as tf

    from deconvnet_tf.data import augment

    image, label = _pair(37, 45)
    timage, tlabel = tf.constant(image), tf.constant(label)
    for key in KEYS:
        tkey = tf.constant(key, tf.int64)
        n, t = augment_np.random_scale(image, label, key, 0.5, 1.5), augment.random_scale(
            timage, tlabel, tkey, 0.5, 1.5)
        np.testing.assert_array_equal(n[1], t[1].numpy())
        assert _grey_difference(n[0], t[0].numpy()) <= 1
        for crop in ((20, 30), (40, 50)):
            n = augment_np.random_crop(image, label, *crop, IGNORE, key)
            t = augment.random_crop(timage, tlabel, *crop, IGNORE, tkey)
            np.testing.assert_array_equal(n[0], t[0].numpy())
            np.testing.assert_array_equal(n[1], t[1].numpy())
        n, t = augment_np.random_flip(image, label, key), augment.random_flip(timage, tlabel, tkey)
        np.testing.assert_array_equal(n[0], t[0].numpy())
        np.testing.assert_array_equal(n[1], t[1].numpy())
        n, t = augment_np.color_jitter(image, key, 0.3, 0.3, 0.3), augment.color_jitter(
            timage, tkey, 0.3, 0.3, 0.3)
        assert _grey_difference(n, t.numpy()) <= 1


# --- tf.data pipeline vs PyDataset ------------------------------------------------------------


@pytest.fixture(scope="module")
def odd_dataset(tmp_path_factory):
    from deconvnet_tf.data.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("parity") / "ds", num_train=5,
                                   num_val=1, height=37, width=51)


@requires_tf
@pytest.mark.parametrize("seed", [0, 7])
def test_make_pipeline_and_pydataset_give_the_same_batches(odd_dataset, seed, monkeypatch):
    """Same seed, same example order: the same batches (labels identical, images within one
    grey level), across a pass boundary.

    The shuffles differ by design (a tf.data shuffle buffer vs a NumPy permutation per pass),
    so the order is fixed on both sides: ``shuffle_buffer=1`` keeps tf.data in file order, and
    the PyDataset's per-pass permutation is replaced by the identity. What is compared is then
    the augmentation of each stream position, keyed ``(seed, position)`` by both pipelines.
    """
    from deconvnet_tf.data.folder import folder_dataset
    from deconvnet_tf.data.pipeline import make_pipeline
    from deconvnet_tf.data.pydataset import make_pydataset

    kwargs = dict(batch_size=3, crop_size=(40, 48), seed=seed, ignore_label=IGNORE)
    pipe = make_pipeline(folder_dataset(odd_dataset, "train"), shuffle_buffer=1,
                         deterministic=True, **kwargs)
    pyds = make_pydataset(odd_dataset, "train", **kwargs)
    monkeypatch.setattr(pyds, "_order", lambda epoch: np.arange(pyds.num_examples))
    worst = 0
    for index, (tf_images, tf_labels) in zip(range(4), pipe):  # 12 positions: 2+ passes of 5
        np_images, np_labels = pyds[index]
        np.testing.assert_array_equal(tf_labels.numpy(), np_labels)
        worst = max(worst, _grey_difference(tf_images.numpy(), np_images))
    assert worst <= 1
    assert (np_labels == IGNORE).any()  # some crops are padded (scaled 37 rows < 40)
