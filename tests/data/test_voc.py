"""PASCAL VOC source on a generated fake VOCdevkit: palette labels as indices, instances,
SBD train_aug lists, clear errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from deconvnet_tf.data.folder import DatasetError
from deconvnet_tf.data.sources import load_record, open_source, validate_records
from deconvnet_tf.data.voc import VOC_CLASSES, voc_dataset, voc_records
from tests.conftest import requires_tf
from tests.data.fake_datasets import save_palette_png, write_fake_voc

pytestmark = requires_tf


@pytest.fixture
def voc(tmp_path):
    return write_fake_voc(tmp_path, extra=("s1",), sbd=tmp_path / "benchmark_RELEASE")


def test_voc_reads_palette_indices_and_instances(voc, tmp_path):
    root, scenes = voc
    source = open_source(tmp_path)  # finds VOCdevkit/VOC2012 under the folder
    assert source.info.class_names == VOC_CLASSES and source.info.ignore_label == 255
    records = source.records("train")
    assert [r.image.stem for r in records] == ["a1", "a2", "a3"]
    image, label, inst = load_record(records[1], instances=True)
    _, ref_label, ref_objects = scenes["a2"]
    np.testing.assert_array_equal(label, ref_label)  # palette PNG -> raw indices, 255 kept
    np.testing.assert_array_equal(inst, np.where(ref_objects == 255, 0, ref_objects))
    assert image.shape == (40, 56, 3)
    # The tf.data dataset gives the same labels (palette decoding in NumPy inside tf.data).
    items = list(voc_dataset(tmp_path, "val").as_numpy_iterator())
    assert len(items) == 2
    np.testing.assert_array_equal(items[0][1], scenes["b1"][1])
    counts, _ = source.validate("train")
    assert counts.sum() == sum((scenes[s][1] != 255).sum() for s in ("a1", "a2", "a3"))


def test_sbd_train_aug_split(voc, tmp_path):
    root, scenes = voc
    records = voc_records(root, "train_aug", sbd_root=tmp_path / "benchmark_RELEASE")
    # SBD train (s1, a1) + SBD val (b1) + VOC train (a1..a3), minus VOC val (b1, b2).
    assert [r.image.stem for r in records] == ["s1", "a1", "a2", "a3"]
    assert records[0].label_format == "sbd_mat" and records[1].label_format == "index_png"
    _, label, inst = load_record(records[0], instances=True)
    ref = scenes["s1"][1]
    np.testing.assert_array_equal(label, np.where(ref == 255, 0, ref))
    assert inst.max() >= 1
    with pytest.raises(DatasetError, match="needs the SBD folder"):
        voc_records(root, "train_aug")


def test_voc_errors_name_the_file(voc, tmp_path):
    root, _ = voc
    (root / "SegmentationClass" / "a2.png").unlink()
    with pytest.raises(DatasetError, match=r"a2.jpg' \(split 'train'\) has no label"):
        voc_records(root, "train")
    save_palette_png(root / "SegmentationClass" / "a2.png", np.full((40, 56), 30, np.uint8))
    with pytest.raises(DatasetError, match=r"a2.png' has value\(s\) \[30\] outside \[0, 21\)"):
        validate_records(voc_records(root, "train"), open_source(root).info)
    save_palette_png(root / "SegmentationClass" / "a2.png", np.zeros((20, 56), np.uint8))
    with pytest.raises(DatasetError, match="Size mismatch: image .*a2.jpg' is 40x56"):
        validate_records(voc_records(root, "train"), open_source(root).info)
    (root / "SegmentationClass" / "a2.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="Cannot read label .*a2.png'"):
        validate_records(voc_records(root, "train"), open_source(root).info)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n")
    with pytest.raises(DatasetError, match="val.txt' is empty"):
        voc_records(root, "val")
    with pytest.raises(DatasetError, match="test.txt' not found"):
        voc_records(root, "test")
    with pytest.raises(DatasetError, match="exactly one"):
        open_source()
