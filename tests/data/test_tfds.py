"""TFDS sources: oxford_iiit_pet and cityscapes through ``tfds.testing.mock_data``; this
project's CamVid and VOC builders built offline from generated manual dirs."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds  # a dependency of the package: a broken install fails here

from deconvnet_tf.data.folder import DatasetError
from deconvnet_tf.data.sources import open_source
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from deconvnet_tf.data.tfds_sources import TFDSSource, cityscapes_train_ids
from tests.conftest import requires_tf
from tests.data.fake_datasets import write_fake_segnet_camvid, write_fake_voc

pytestmark = requires_tf


def test_oxford_pet_trimap_becomes_classes():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    trimaps = [rng.integers(1, 4, size=(12, 16, 1)).astype(np.uint8) for _ in range(3)]
    species = [0, 1, 1]

    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
        def gen():
            for t, s in zip(trimaps, species):
                yield {"image": np.full((12, 16, 3), 7, np.uint8), "segmentation_mask": t,
                       "species": np.int64(s), "label": np.int64(0), "file_name": "x.jpg"}

        spec = {"image": tf.TensorSpec((None, None, 3), tf.uint8),
                "segmentation_mask": tf.TensorSpec((None, None, 1), tf.uint8),
                "species": tf.TensorSpec((), tf.int64), "label": tf.TensorSpec((), tf.int64),
                "file_name": tf.TensorSpec((), tf.string)}
        return tf.data.Dataset.from_generator(gen, output_signature=spec)

    with tfds.testing.mock_data(num_examples=3, as_dataset_fn=as_dataset):
        source = open_source(tfds="oxford_iiit_pet")
        assert source.info.class_names == ("background", "cat", "dog")
        pairs = list(source.numpy_examples("train"))
    assert len(pairs) == 3
    for (image, label), trimap, s in zip(pairs, trimaps, species):
        expected = np.select([trimap[..., 0] == 1, trimap[..., 0] == 2], [s + 1, 0], 255)
        np.testing.assert_array_equal(label, expected)
        assert image.shape == (12, 16, 3) and label.dtype == np.uint8


def test_cityscapes_label_ids_become_train_ids():
    table = cityscapes_train_ids()
    assert table[7] == 0 and table[26] == 13 and table[33] == 18
    assert table[0] == table[6] == table[34] == 255
    with tfds.testing.mock_data(num_examples=1):
        source = open_source(tfds="cityscapes/semantic_segmentation")
        image, label = next(source.numpy_examples("train"))
    assert image.shape == (1024, 2048, 3) and label.shape == (1024, 2048)
    assert set(np.unique(label)) <= set(range(19)) | {255}
    assert len(source.info.class_names) == 19


@pytest.mark.parametrize("layout", ["segnet", "folder"])
def test_camvid_builder_from_manual_dir(tmp_path, layout):
    if layout == "segnet":
        manual = write_fake_segnet_camvid(tmp_path / "CamVid")
    else:
        manual = write_synthetic_dataset(tmp_path / "camvid", num_train=3, num_val=2, height=36, width=48)
    source = TFDSSource("camvid_segmentation", data_dir=str(tmp_path / "tfds"), manual_dir=str(manual))
    assert source.num_examples("train") == 3 and source.num_examples("val") == 2
    assert source.info.ignore_label == 11 and len(source.info.class_names) == 11
    pairs = list(source.numpy_examples("train"))
    import cv2

    for image, label in pairs:
        assert image.shape == (36, 48, 3) and label.shape == (36, 48)
    # Labels survive the TFDS round trip exactly (PNG), matched by content.
    if layout == "segnet":
        refs = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((manual / "trainannot").glob("*.png"))]
    else:
        refs = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((manual / "train" / "labels").glob("*.png"))]
    got = sorted(label.tobytes() for _, label in pairs)
    assert got == sorted(r.tobytes() for r in refs)
    counts, _ = source.validate("train")
    assert counts.sum() == sum(int((r != 11).sum()) for r in refs)
    # Prepared data is reused without the manual dir.
    again = TFDSSource("camvid_segmentation", data_dir=str(tmp_path / "tfds"))
    assert again.num_examples("val") == 2


def test_voc_builder_from_manual_dir(tmp_path):
    _, scenes = write_fake_voc(tmp_path / "manual")
    source = open_source(tfds="voc2012_segmentation", tfds_data_dir=str(tmp_path / "tfds"),
                         manual_dir=str(tmp_path / "manual"))
    assert source.num_examples("train") == 3 and source.info.ignore_label == 255
    labels = sorted(label.tobytes() for _, label in source.numpy_examples("val"))
    assert labels == sorted(scenes[s][1].tobytes() for s in ("b1", "b2"))
    builder = source.builder()
    example = next(iter(builder.as_dataset(split="train").take(1)))
    assert int(example["object_mask"].numpy().max()) >= 1  # instance ids kept


def test_tfds_errors(tmp_path):
    with pytest.raises(DatasetError, match="not supported; supported: oxford_iiit_pet"):
        open_source(tfds="mnist")
    with pytest.raises(DatasetError, match="manual dir .* is not a directory"):
        TFDSSource("camvid_segmentation", data_dir=str(tmp_path), manual_dir=str(tmp_path / "no")).dataset("train")
    with pytest.raises(DatasetError, match="not available .*tfds_manual_dir"):
        TFDSSource("camvid_segmentation", data_dir=str(tmp_path / "empty")).dataset("train")
    with pytest.raises(DatasetError, match="exactly one"):
        open_source(tmp_path, tfds="oxford_iiit_pet")
