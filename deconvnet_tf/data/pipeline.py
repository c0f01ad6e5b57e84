"""tf.data input pipelines for training and evaluation.

Training crops are augmented by :mod:`deconvnet_tf.data.augment` (TensorFlow ops) with the
parameters of the spec :mod:`deconvnet_tf.data.augment_spec`, keyed by ``(seed, stream
position)`` like the PyDataset pipeline (:mod:`deconvnet_tf.data.pydataset`), so the two give
the same crops/flips/scales to the same example at the same position. Their shuffles differ
(a tf.data shuffle buffer here, a NumPy permutation per pass there), so which example sits at a
position differs unless the order is fixed (``shuffle_buffer=1`` here).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from deconvnet_tf.data import augment as aug
from deconvnet_tf.io import check_color_target, normalize_colors

__all__ = ["make_pipeline", "pipeline_throughput"]

MODES = ("crop", "whole")


def make_pipeline(
    dataset,
    *,
    mode: str = "crop",
    batch_size: int = 8,
    crop_size: tuple[int, int] = (224, 224),
    training: bool = True,
    ignore_label: int = 255,
    shuffle_buffer: int = 256,
    cache: bool = True,
    deterministic: bool = False,
    seed: int = 0,
    scale: tuple[float, float] | None = (0.75, 1.25),
    flip: bool = True,
    jitter: bool | float = True,
    gamma: float = 0.0,
    grayscale: float = 0.0,
    class_uniform: float = 0.0,
    class_paste: float = 0.0,
    class_paste_classes: Sequence[int] = (),
    color_target: dict | None = None,
):
    """Batches ``(image, label)`` pairs for Keras ``fit``/``evaluate``.

    Args:
        dataset: ``tf.data.Dataset`` of ``(image uint8 (H, W, 3), label uint8 (H, W))``.
        mode: ``"crop"``: training crops of ``crop_size`` (random scale, crop with padding,
            flip, colour jitter when ``training``; a centre crop otherwise). ``"whole"``: whole
            images, padded at the bottom/right to ``crop_size`` when smaller and centre-cropped
            when larger, no augmentation (evaluation at native size uses batch 1 instead).
        batch_size: Batch size (the last partial batch is kept unless training).
        crop_size: ``(height, width)`` of the batched images.
        training: Shuffle, augment and repeat.
        ignore_label: Label of padded pixels.
        shuffle_buffer: Shuffle buffer size.
        cache: Cache decoded examples in memory before the random ops.
        deterministic: Keep element order fixed (reproducible batches given ``seed``).
        seed: Seed of shuffling and augmentation.
        scale, flip, jitter, gamma: Augmentation options of ``"crop"`` training (``jitter``: a
            bool or the colour-jitter strength; ``gamma``: the strength of a random tone curve,
            0 for none; see :func:`deconvnet_tf.data.augment.augment`).
        grayscale: Probability that a ``"crop"`` training crop becomes greyscale (its luma in
            all three channels, after the tone curve; 0: never).
        class_uniform: Probability that a ``"crop"`` training window is placed around a pixel
            of a class drawn uniformly among those in the label (0: never; see
            :func:`deconvnet_tf.data.augment_spec.class_crop_offset`).
        class_paste, class_paste_classes: Probability that a ``"crop"`` training crop gets
            the pixels of the classes ``class_paste_classes`` of the previous crop of its batch
            (:func:`deconvnet_tf.data.augment.paste_classes`); 0 (default): never.
        color_target: ``{"mean": [r, g, b], "std": [r, g, b]}``: every image is first brought
            to these per-channel statistics (:func:`deconvnet_tf.io.normalize_colors`, the
            test-time colour normalisation of a Segmenter's ``color_target``), before caching
            and augmentation; ``None`` (default) leaves the images as they are.

    Returns:
        A dataset of ``(images uint8 (B, h, w, 3), labels int32 (B, h, w))``.
    """
    import tensorflow as tf

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    gamma = aug.spec.gamma_strength(gamma)  # checked here, not inside the traced map
    grayscale = aug.spec.grayscale_strength(grayscale)
    class_uniform = aug.spec.class_uniform_strength(class_uniform)
    paste = aug.spec.class_paste_setting(class_paste, class_paste_classes,
                                         mode == "crop" and training)
    ds = _examples(dataset, deterministic, color_target, cache,
                   shuffle_buffer if training else None, seed)
    # The example at stream position p is augmented with the key (seed, p), as in the
    # PyDataset pipeline (deconvnet_tf.data.pydataset): the spec is one function of the key.
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.counter()))
    augmentation = dict(scale=scale, flip=flip, jitter=jitter, gamma=gamma, grayscale=grayscale,
                        class_uniform=class_uniform) if mode == "crop" and training else None
    ds = ds.map(_transform(seed, (int(crop_size[0]), int(crop_size[1])), ignore_label,
                           augmentation, paste),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return _batched(ds.batch(batch_size, drop_remainder=training), paste,
                    deterministic).prefetch(tf.data.AUTOTUNE)


def _examples(dataset, deterministic: bool, color_target, cache: bool, shuffle_buffer, seed: int):
    """The examples before augmentation: colour-normalised, cached, and shuffled and repeated
    when ``shuffle_buffer`` is given (training)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = bool(deterministic)
    ds = dataset.with_options(options)
    if color_target is not None:
        ds = ds.map(_color_normalizer(color_target), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
    if cache:
        ds = ds.cache()
    if shuffle_buffer is not None:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
    return ds


def _batched(ds, paste, deterministic: bool):
    """The batch-level step of the spec: the class paste when ``paste`` (``(probability,
    classes)``; the batches then carry each row's draw, which this step consumes)."""
    import tensorflow as tf

    if paste is None:
        return ds
    classes = paste[1]

    def pasted_batch(images, labels, pasted):
        return aug.paste_classes(images, labels, pasted, classes)

    return ds.map(pasted_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def _transform(seed: int, crop_size: tuple[int, int], ignore_label: int, augmentation,
               paste=None):
    """The map function of ``((image, label), stream position)``: the training augmentation
    with the key ``(seed, position)`` when ``augmentation`` (its keyword arguments) is given,
    else the centre crop; labels as int32. With ``paste`` (``(probability, classes)``) a third
    element: whether the example receives the class paste (the spec's draw for its key)."""
    import tensorflow as tf

    def receives(index):
        return np.bool_(aug.spec.class_paste((seed, int(index)), paste[0]))

    height, width = crop_size

    def transform(example, index):
        image, label = example
        if augmentation is not None:
            key = tf.stack([tf.constant(seed, tf.int64), tf.cast(index, tf.int64)])
            image, label = aug.augment(image, label, key, crop_size=crop_size,
                                       ignore_label=ignore_label, **augmentation)
        else:
            image, label = aug.center_crop(image, label, height, width, ignore_label)
        if paste is not None:
            pasted = tf.numpy_function(receives, [index], tf.bool, stateful=False)
            return image, tf.cast(label, tf.int32), tf.ensure_shape(pasted, [])
        return image, tf.cast(label, tf.int32)

    return transform


def _color_normalizer(color_target):
    """A tf.data map function applying :func:`deconvnet_tf.io.normalize_colors` (the NumPy
    function itself, so training sees exactly what the runtimes compute)."""
    import tensorflow as tf

    target = check_color_target(color_target, "make_pipeline: color_target")

    def normalize(image, label):
        out = tf.numpy_function(lambda im: normalize_colors(im, target), [image], tf.uint8,
                                stateful=False)
        return tf.ensure_shape(out, [None, None, 3]), label

    return normalize


def pipeline_throughput(dataset, num_batches: int = 20) -> float:
    """Images per second a batched pipeline delivers (after one warm-up batch)."""
    iterator = iter(dataset)
    next(iterator)
    images = 0
    start = time.perf_counter()
    for _ in range(num_batches):
        batch = next(iterator)
        images += int(batch[0].shape[0])
    return images / (time.perf_counter() - start)
