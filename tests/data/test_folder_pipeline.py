"""Folder source: clear errors naming the file; pipeline: shapes, padding, nearest labels,
determinism."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from deconvnet_tf.data.folder import (
    DatasetError,
    folder_dataset,
    list_examples,
    read_meta,
    validate_examples,
)
from deconvnet_tf.data.pipeline import make_pipeline, pipeline_throughput
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from tests.conftest import requires_tf

pytestmark = requires_tf


@pytest.fixture
def dataset(tmp_path):
    return write_synthetic_dataset(tmp_path / "ds", num_train=4, num_val=2, height=40, width=56)


def test_folder_dataset_reads_images_and_labels(dataset):
    info = read_meta(dataset)
    assert info.num_classes == 5 and info.ignore_label == 255
    items = list(folder_dataset(dataset, "train"))
    assert len(items) == 4
    image, label = (t.numpy() for t in items[0])
    ref_image = cv2.imread(str(dataset / "train" / "images" / "train_00000.png"))[..., ::-1]
    np.testing.assert_array_equal(image, ref_image)
    assert label.shape == (40, 56) and label.dtype == np.uint8


def test_void_label_key_of_the_real_datasets(tmp_path, dataset):
    meta = json.loads((dataset / "meta.json").read_text())
    meta.pop("ignore_label")
    meta["void_label"] = 11  # CamVid's (outside the 5 classes: one inside is an error)
    (dataset / "meta.json").write_text(json.dumps(meta))
    assert read_meta(dataset).ignore_label == 11


@pytest.mark.parametrize(
    "breakage,message",
    [
        ("no_meta", "meta.json' is missing"),
        ("no_label", "has no label"),
        ("no_image", "No image for 'train_00001'"),
        ("empty_split", "is empty"),
        ("size_mismatch", "Size mismatch: image .*train_00002.png' is 40x56 but label"),
        ("bad_value", r"train_00003.png' has value\(s\) \[7\] outside \[0, 5\)"),
        ("corrupt", "Cannot read image .*train_00000.png'"),
        ("truncated_jpeg", "Cannot read image .*train_00001.jpg': truncated JPEG"),
        ("truncated_label", "Cannot read label .*train_00002.png': truncated PNG"),
    ],
)
def test_bad_input_names_the_file(dataset, breakage, message):
    train = dataset / "train"
    if breakage == "no_meta":
        (dataset / "meta.json").unlink()
    elif breakage == "no_label":
        (train / "labels" / "train_00001.png").unlink()
    elif breakage == "no_image":
        (train / "images" / "train_00001.png").unlink()
    elif breakage == "empty_split":
        (dataset / "train.txt").write_text("\n")
    elif breakage == "size_mismatch":
        cv2.imwrite(str(train / "labels" / "train_00002.png"), np.zeros((20, 56), np.uint8))
    elif breakage == "bad_value":
        cv2.imwrite(str(train / "labels" / "train_00003.png"), np.full((40, 56), 7, np.uint8))
    elif breakage == "corrupt":
        (train / "images" / "train_00000.png").write_bytes(b"\x89PNG not really")
    elif breakage == "truncated_jpeg":  # OpenCV's imread used to return it half grey
        image = cv2.imread(str(train / "images" / "train_00001.png"))
        (train / "images" / "train_00001.png").unlink()
        data = cv2.imencode(".jpg", image)[1].tobytes()
        (train / "images" / "train_00001.jpg").write_bytes(data[: len(data) * 2 // 3])
    elif breakage == "truncated_label":
        data = (train / "labels" / "train_00002.png").read_bytes()
        (train / "labels" / "train_00002.png").write_bytes(data[:-12])  # no IEND chunk
    with pytest.raises(DatasetError, match=message):
        folder_dataset(dataset, "train")
    if breakage.startswith("truncated"):  # the source used by training validates the same way
        from deconvnet_tf.data.sources import open_source

        with pytest.raises(DatasetError, match=message):
            open_source(dataset).validate("train")


def test_missing_split_and_root(tmp_path, dataset):
    with pytest.raises(DatasetError, match="test.txt' not found"):
        list_examples(dataset, "test")
    with pytest.raises(DatasetError, match="is not a directory"):
        read_meta(tmp_path / "nowhere")


def test_class_statistics(dataset):
    counts, image_pixels = validate_examples(list_examples(dataset, "train"), read_meta(dataset))
    assert counts.sum() == 4 * 40 * 56
    assert np.all(image_pixels >= counts) and image_pixels[0] == 4 * 40 * 56


def test_training_pipeline_shapes_padding_and_nearest_labels(dataset):
    ds = folder_dataset(dataset, "train")
    pipe = make_pipeline(ds, mode="crop", batch_size=3, crop_size=(64, 80), training=True,
                         ignore_label=255, seed=3)
    images, labels = next(iter(pipe))
    assert images.shape == (3, 64, 80, 3) and images.dtype.name == "uint8"
    assert labels.shape == (3, 64, 80) and labels.dtype.name == "int32"
    # Crops larger than the (rescaled) image are padded with the ignore label; labels only
    # take values that exist (nearest neighbour, no interpolated classes).
    values = set(np.unique(labels.numpy()))
    assert values <= {0, 1, 2, 3, 4, 255} and 255 in values
    assert pipeline_throughput(pipe, 2) > 0


def test_eval_pipeline_and_determinism(dataset):
    ds = folder_dataset(dataset, "val")
    whole = list(make_pipeline(ds, mode="whole", batch_size=2, crop_size=(40, 56), training=False))
    assert len(whole) == 1 and whole[0][0].shape == (2, 40, 56, 3)
    ref = cv2.imread(str(dataset / "val" / "labels" / "val_00000.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(whole[0][1][0].numpy(), ref)

    def batches(seed):
        pipe = make_pipeline(folder_dataset(dataset, "train"), batch_size=2, crop_size=(32, 32),
                             deterministic=True, seed=seed)
        it = iter(pipe)
        return [next(it)[0].numpy() for _ in range(3)]

    for a, b in zip(batches(5), batches(5)):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(batches(5), batches(6)))
    with pytest.raises(ValueError, match="mode must be one of"):
        make_pipeline(ds, mode="stage9")


def test_flip_keeps_image_and_label_aligned():
    import tensorflow as tf

    from deconvnet_tf.data.augment import random_flip

    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    label = np.arange(6, dtype=np.uint8).reshape(2, 3)
    for s in range(6):
        fi, fl = random_flip(tf.constant(image), tf.constant(label), tf.constant([s, 0]))
        flipped = not np.array_equal(fl.numpy(), label)
        np.testing.assert_array_equal(fi.numpy(), image[:, ::-1] if flipped else image)
