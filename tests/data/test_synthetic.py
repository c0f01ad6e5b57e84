"""The generated dataset: deterministic, consistent labels/instances, folder layout."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from deconvnet_tf.data.synthetic import CLASS_NAMES, make_scene, write_synthetic_dataset


def test_make_scene_is_deterministic_and_consistent():
    a = make_scene(7, 64, 80)
    b = make_scene(7, 64, 80)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    image, label, instances = a
    assert image.shape == (64, 80, 3) and image.dtype == np.uint8
    assert label.shape == instances.shape == (64, 80)
    assert set(np.unique(label)) <= set(range(len(CLASS_NAMES)))
    # Instances and labels agree: background exactly where no instance, one class per instance.
    np.testing.assert_array_equal(label == 0, instances == 0)
    for inst in np.unique(instances[instances > 0]):
        assert len(np.unique(label[instances == inst])) == 1
    assert not np.array_equal(make_scene(8, 64, 80)[0], image)


def test_scenes_cover_every_class_and_have_texture():
    labels = np.stack([make_scene(s)[1] for s in range(40)])
    assert set(np.unique(labels)) == set(range(len(CLASS_NAMES)))
    image, label, _ = make_scene(3)
    assert image[label == 0].std() > 5  # textured background, not flat colour


def test_write_synthetic_dataset_layout(tmp_path):
    root = write_synthetic_dataset(tmp_path / "synth", num_train=3, num_val=2, height=32, width=48)
    meta = json.loads((root / "meta.json").read_text())
    assert meta["classes"] == list(CLASS_NAMES) and meta["ignore_label"] == 255
    stems = (root / "train.txt").read_text().split()
    assert len(stems) == 3 and len((root / "val.txt").read_text().split()) == 2
    image = cv2.imread(str(root / "train" / "images" / f"{stems[0]}.png"))[..., ::-1]
    label = cv2.imread(str(root / "train" / "labels" / f"{stems[0]}.png"), cv2.IMREAD_UNCHANGED)
    ref_image, ref_label, _ = make_scene(0, 32, 48)
    np.testing.assert_array_equal(image, ref_image)
    np.testing.assert_array_equal(label, ref_label)


def test_make_scene_rejects_bad_sizes():
    with pytest.raises(ValueError, match="height, width >= 16"):
        make_scene(0, 8, 64)
