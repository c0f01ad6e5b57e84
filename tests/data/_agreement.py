"""Shared checks that the augmentation's two executors (TensorFlow ops, NumPy) and its two
pipelines (tf.data, PyDataset) agree for one option of the spec (gamma, class-uniform crops)."""

from __future__ import annotations

import numpy as np

IGNORE = 255
# Keys of the spec's draws: small, negative and beyond-32-bit seeds and stream positions.
KEYS = [(0, 0), (0, 1), (3, 1000), (12345, 42), (-1, 5), (2**40, 2**33)]


def random_pair(height: int = 23, width: int = 31, seed: int = 0, num_classes: int = 11):
    """A random uint8 ``(height, width, 3)`` image and ``(height, width)`` label with classes
    ``0 .. num_classes - 1`` (an odd default size, so that crops and resizes round)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    label = rng.integers(0, num_classes, (height, width)).astype(np.uint8)
    return image, label


def executors_worst_difference(make_pair, keys, cases, options) -> int:
    """For every key and ``((height, width), crop)`` case, the labels of both executors are
    identical; returns the largest image difference in grey levels."""
    import tensorflow as tf

    from deconvnet_tf.data import augment, augment_np

    worst = 0
    for key in keys:
        for (height, width), crop in cases:
            image, label = make_pair(height, width, seed=key[1] % 97)
            kwargs = dict(crop_size=crop, ignore_label=IGNORE, **options)
            np_image, np_label = augment_np.augment(image, label, key, **kwargs)
            tf_image, tf_label = (np.asarray(t) for t in augment.augment(
                tf.constant(image), tf.constant(label), tf.constant(key, tf.int64), **kwargs))
            np.testing.assert_array_equal(tf_label, np_label)
            worst = max(worst, int(np.abs(tf_image.astype(int) - np_image.astype(int)).max()))
    return worst


def pipelines_agree(tmp_path, monkeypatch, kwargs, off) -> bool:
    """The first three batches of ``make_pipeline`` and ``make_pydataset`` with ``kwargs`` on
    a generated 37x45 dataset: labels identical, images within one grey level. Returns
    whether the option reached the batches: whether any batch differs from the PyDataset's
    with ``off`` (the option switched off) merged into ``kwargs``."""
    from deconvnet_tf.data.folder import folder_dataset
    from deconvnet_tf.data.pipeline import make_pipeline
    from deconvnet_tf.data.pydataset import make_pydataset
    from deconvnet_tf.data.synthetic import write_synthetic_dataset

    root = write_synthetic_dataset(tmp_path / "data", num_train=4, num_val=1, height=37, width=45)
    pipe = make_pipeline(folder_dataset(root, "train"), shuffle_buffer=1, deterministic=True,
                         **kwargs)
    pyds = make_pydataset(root, "train", **kwargs)
    plain = make_pydataset(root, "train", **{**kwargs, **off})
    for dataset in (pyds, plain):
        monkeypatch.setattr(dataset, "_order", lambda epoch, n=dataset.num_examples: np.arange(n))
    reached = False
    for index, (tf_images, tf_labels) in zip(range(3), pipe):
        np_images, np_labels = pyds[index]
        np.testing.assert_array_equal(tf_labels.numpy(), np_labels)
        assert np.abs(tf_images.numpy().astype(int) - np_images.astype(int)).max() <= 1
        off_images, off_labels = plain[index]
        reached |= bool((np_images != off_images).any() or (np_labels != off_labels).any())
    return reached


def assert_pipelines_refuse(tmp_path, option: str, bad_values, message: str) -> None:
    """Both pipeline constructors raise ``ValueError`` matching ``message`` for each bad value
    of ``option``, before any tracing or data reading."""
    import pytest
    import tensorflow as tf

    from deconvnet_tf.data.pipeline import make_pipeline
    from deconvnet_tf.data.pydataset import make_pydataset

    ds = tf.data.Dataset.from_tensors((tf.zeros((20, 20, 3), tf.uint8),
                                       tf.zeros((20, 20), tf.uint8)))
    for bad in bad_values:
        with pytest.raises(ValueError, match=message):
            make_pipeline(ds, crop_size=(16, 16), **{option: bad})
        with pytest.raises(ValueError, match=message):
            make_pydataset(tmp_path, "train", **{option: bad})
