"""Class paste of the training augmentation (``class_paste``, config ``class_paste`` and
``class_paste_classes``): a crop receives the pixels of chosen classes from the previous crop
of its batch.

Checked against a per-pixel loop restating the rule, in both executors and both pipelines;
the draw is the spec's (one stream of the example's key), so the same crops receive in both.
"""

from __future__ import annotations

import numpy as np
import pytest

from deconvnet_tf.data import augment_np
from deconvnet_tf.data import augment_spec as spec
from tests.conftest import requires_tf
from tests.data._agreement import IGNORE, KEYS, assert_pipelines_refuse, pipelines_agree


def _batch(size=4, height=6, width=7, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (size, height, width, 3)).astype(np.uint8)
    labels = rng.choice([0, 1, 2, 3, IGNORE], (size, height, width)).astype(np.int32)
    return images, labels


def _reference(images, labels, pasted, classes):
    """The rule pixel by pixel: row i (pasted) takes row i-1's pixel where that label is in
    ``classes``."""
    out_images, out_labels = images.copy(), labels.copy()
    size = len(images)
    for i in range(size):
        if not pasted[i]:
            continue
        source = (i - 1) % size
        for y in range(images.shape[1]):
            for x in range(images.shape[2]):
                if labels[source, y, x] in classes:
                    out_images[i, y, x] = images[source, y, x]
                    out_labels[i, y, x] = labels[source, y, x]
    return out_images, out_labels


CASES = [([True, False, True, True], [1, 3]), ([True] * 4, [2]), ([False] * 4, [1, 2]),
         ([True, True, False, False], []), ([True] * 4, [0, 1, 2, 3, IGNORE])]


@pytest.mark.jax
@pytest.mark.parametrize("pasted, classes", CASES)
def test_numpy_paste_matches_the_pixel_rule(pasted, classes):
    images, labels = _batch()
    before = images.copy(), labels.copy()
    got = augment_np.paste_classes(images, labels, pasted, classes)
    want = _reference(images, labels, pasted, classes)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(images, before[0])  # the inputs are not changed
    np.testing.assert_array_equal(labels, before[1])


@pytest.mark.jax
def test_a_batch_of_one_pastes_onto_itself_unchanged():
    images, labels = _batch(size=1)
    got = augment_np.paste_classes(images, labels, [True], [1, 2])
    np.testing.assert_array_equal(got[0], images)
    np.testing.assert_array_equal(got[1], labels)


@pytest.mark.jax
def test_numpy_paste_refuses_mismatched_shapes():
    images, labels = _batch()
    with pytest.raises(ValueError, match=r"pasted \(B,\), got .*\(4, 6, 7\) and \(3,\)"):
        augment_np.paste_classes(images, labels, [True] * 3, [1])
    with pytest.raises(ValueError, match="labels \\(B, h, w\\)"):
        augment_np.paste_classes(images, labels[:, :5], [True] * 4, [1])


@requires_tf
@pytest.mark.parametrize("pasted, classes", CASES)
def test_tf_paste_matches_numpy(pasted, classes):
    import tensorflow as tf

    from deconvnet_tf.data import augment

    images, labels = _batch(seed=1)
    got = augment.paste_classes(tf.constant(images), tf.constant(labels), tf.constant(pasted),
                                classes)
    want = augment_np.paste_classes(images, labels, pasted, classes)
    np.testing.assert_array_equal(got[0].numpy(), want[0])
    np.testing.assert_array_equal(got[1].numpy(), want[1])


# --- the spec ---------------------------------------------------------------------------------


@pytest.mark.jax
def test_the_draw_is_one_stream_of_the_key_and_has_its_probability():
    for key in KEYS:
        assert spec.class_paste(key, 0.0) is False and spec.class_paste(key, 1.0) is True
        assert spec.class_paste(key, 0.3) == (spec.uniform(key, spec.CLASS_PASTE) < 0.3)
    share = np.mean([spec.class_paste((5, i), 0.3) for i in range(4000)])
    assert 0.27 < share < 0.33
    # a draw of its own: the plain augmentation's parameters do not move
    assert spec.draw((5, 1), 40, 50, crop_size=(16, 16)) == spec.draw((5, 1), 40, 50,
                                                                       crop_size=(16, 16))


@pytest.mark.jax
def test_setting_is_checked_and_off_when_it_cannot_change_anything():
    assert spec.class_paste_setting(0.5, [3, 1, 3], True) == (0.5, [1, 3])
    assert spec.class_paste_setting(np.float32(0.5), np.array([2]), True) == (0.5, [2])
    assert spec.class_paste_setting(0.0, [1], True) is None
    assert spec.class_paste_setting(0.5, [], True) is None
    assert spec.class_paste_setting(0.5, [1], False) is None  # evaluation / whole images
    for bad in (-0.1, 1.5, float("nan"), True, "0.5", None):
        with pytest.raises(ValueError, match=r"class_paste must be a probability in \[0, 1\]"):
            spec.class_paste_setting(bad, [1], True)
    for bad in ([1.5], [True], "12", 3, [256], [-1], [None]):
        with pytest.raises(ValueError, match="class_paste_classes must be"):
            spec.class_paste_setting(0.5, bad, True)


# --- both pipelines ---------------------------------------------------------------------------


@requires_tf
def test_make_pipeline_and_pydataset_give_the_same_batches(tmp_path, monkeypatch):
    kwargs = dict(batch_size=4, crop_size=(16, 20), seed=3, ignore_label=IGNORE,
                  class_paste=1.0, class_paste_classes=[1, 2, 3, 4])
    assert pipelines_agree(tmp_path, monkeypatch, kwargs, {"class_paste": 0.0})  # reached


@requires_tf
def test_the_pipelines_refuse_bad_settings_before_any_tracing(tmp_path):
    assert_pipelines_refuse(tmp_path, "class_paste", (-1, "x", float("nan"), 2),
                            r"^class_paste must be a probability")
    assert_pipelines_refuse(tmp_path, "class_paste_classes", ([0.5], [300], 7),
                            r"^class_paste_classes must be")


@pytest.mark.jax
def test_pydataset_pastes_only_in_crop_training(tmp_path):
    """Evaluation batches are the images as they are, whatever the setting."""
    from deconvnet_tf.data.pydataset import make_pydataset
    from deconvnet_tf.data.synthetic import write_synthetic_dataset

    root = write_synthetic_dataset(tmp_path / "data", num_train=4, num_val=2, height=24, width=30)
    common = dict(mode="whole", training=False, batch_size=2, crop_size=(24, 30))
    plain = make_pydataset(root, "val", **common)
    pasted = make_pydataset(root, "val", **common, class_paste=1.0, class_paste_classes=[1, 2])
    assert pasted.paste is None
    np.testing.assert_array_equal(plain[0][1], pasted[0][1])
    training = make_pydataset(root, "train", batch_size=2, crop_size=(16, 16),
                              class_paste=0.5, class_paste_classes=[2, 1])
    assert training.paste == (0.5, [1, 2])
