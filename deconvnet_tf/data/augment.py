"""Augmentations on ``(image uint8 (H, W, 3), label uint8 (H, W))`` pairs, in TensorFlow ops.

Labels are only ever resampled with nearest neighbour; padding fills the image with 0 and the
label with the ignore label. Random ops take a stateless ``seed`` (shape ``[2]`` int32) so the
pipeline is reproducible.
"""

from __future__ import annotations

__all__ = ["random_scale", "pad_to_size", "random_crop", "center_crop", "random_flip",
           "color_jitter", "augment"]


def _tf():
    import tensorflow as tf

    return tf


def random_scale(image, label, seed, min_scale: float = 0.75, max_scale: float = 1.25):
    """Rescales both by a random factor: image bilinear, label nearest."""
    tf = _tf()
    scale = tf.random.stateless_uniform([], seed, min_scale, max_scale)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), 1)
    image = tf.image.resize(image, size, method="bilinear")
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    label = tf.image.resize(label[..., None], size, method="nearest")[..., 0]
    return image, label


def pad_to_size(image, label, height: int, width: int, ignore_label: int):
    """Pads at the bottom/right to at least ``height x width`` (image 0, label ignore)."""
    tf = _tf()
    shape = tf.shape(image)
    pad_h = tf.maximum(height - shape[0], 0)
    pad_w = tf.maximum(width - shape[1], 0)
    image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]], constant_values=0)
    label = tf.pad(label, [[0, pad_h], [0, pad_w]], constant_values=ignore_label)
    return image, label


def random_crop(image, label, height: int, width: int, ignore_label: int, seed):
    """Pads if needed, then crops the same random ``height x width`` window from both."""
    tf = _tf()
    image, label = pad_to_size(image, label, height, width, ignore_label)
    shape = tf.shape(image)
    top = tf.random.stateless_uniform([], seed, 0, shape[0] - height + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], seed + 1, 0, shape[1] - width + 1, dtype=tf.int32)
    image = image[top : top + height, left : left + width]
    label = label[top : top + height, left : left + width]
    return tf.ensure_shape(image, (height, width, 3)), tf.ensure_shape(label, (height, width))


def center_crop(image, label, height: int, width: int, ignore_label: int):
    """Pads if needed, then crops the centre ``height x width`` window from both."""
    tf = _tf()
    image, label = pad_to_size(image, label, height, width, ignore_label)
    shape = tf.shape(image)
    top, left = (shape[0] - height) // 2, (shape[1] - width) // 2
    image = image[top : top + height, left : left + width]
    label = label[top : top + height, left : left + width]
    return tf.ensure_shape(image, (height, width, 3)), tf.ensure_shape(label, (height, width))


def random_flip(image, label, seed):
    """Mirrors both horizontally with probability 1/2."""
    tf = _tf()
    flip = tf.random.stateless_uniform([], seed) < 0.5
    image = tf.cond(flip, lambda: image[:, ::-1], lambda: image)
    label = tf.cond(flip, lambda: label[:, ::-1], lambda: label)
    return image, label


def color_jitter(image, seed, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2):
    """Random brightness/contrast/saturation of the image only (uint8 in, uint8 out).

    A range of 0 turns that step off.
    """
    tf = _tf()
    x = tf.cast(image, tf.float32) / 255.0
    if brightness:
        x = tf.image.stateless_random_brightness(x, brightness, seed)
    if contrast:
        x = tf.image.stateless_random_contrast(x, 1 - contrast, 1 + contrast, seed + 2)
    if saturation:
        x = tf.image.stateless_random_saturation(x, 1 - saturation, 1 + saturation, seed + 3)
    return tf.cast(tf.clip_by_value(tf.round(x * 255.0), 0, 255), tf.uint8)


def augment(image, label, seed, *, crop_size, ignore_label: int, scale=(0.75, 1.25),
            flip: bool = True, jitter: bool | float = True):
    """The training augmentation: random scale, crop (with padding), flip, colour jitter.

    ``jitter``: ``True`` (strength 0.2), ``False``/0 (off) or the strength (brightness delta
    and contrast/saturation ranges ``1 +- strength``).
    """
    from deconvnet_tf.data.augment_np import jitter_strength

    tf = _tf()
    strength = jitter_strength(jitter)
    seeds = tf.random.experimental.stateless_split(seed, 4)
    if scale is not None:
        image, label = random_scale(image, label, seeds[0], *scale)
    image, label = random_crop(image, label, crop_size[0], crop_size[1], ignore_label, seeds[1])
    if flip:
        image, label = random_flip(image, label, seeds[2])
    if strength:
        image = color_jitter(image, seeds[3], strength, strength, strength)
    return image, label
