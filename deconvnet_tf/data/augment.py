"""Augmentations on ``(image uint8 (H, W, 3), label uint8 (H, W))`` pairs, in TensorFlow ops.

The TensorFlow executor of the training augmentation (the tf.data pipeline,
:func:`deconvnet_tf.data.pipeline.make_pipeline`); :mod:`deconvnet_tf.data.augment_np` is the
NumPy executor (the PyDataset pipeline). The spec, every random parameter of it, lives in
:mod:`deconvnet_tf.data.augment_spec`: the random ops here draw their parameters from it
through ``tf.numpy_function`` and apply them with TF ops, so the same key gives the same
scale, crop window and flip as the NumPy executor (labels identical) and the same colour jitter,
tone curve and greyscale choice (images within one grey level).

Labels are only ever resampled with nearest neighbour; padding fills the image with 0 and the
label with the ignore label. Random ops take a ``seed``: a ``[2]`` integer tensor (or pair)
``(seed, index)``, the key of :func:`deconvnet_tf.data.augment_spec.as_key`; the pipelines
pass ``(pipeline seed, stream position)``.
"""

from __future__ import annotations

import numpy as np

from deconvnet_tf.data import augment_spec as spec

__all__ = ["random_scale", "resize", "pad_to_size", "random_crop", "crop_at", "center_crop",
           "random_flip", "adjust_colors", "color_jitter", "draw_params", "augment",
           "paste_classes"]


def _tf():
    import tensorflow as tf

    return tf


def _seed(seed):
    """The seed as an int64 ``[2]`` tensor (what ``tf.numpy_function`` hands to the spec)."""
    tf = _tf()
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise ValueError(f"seed must be an integer [2] tensor (seed, index), got {seed.dtype}")
    return tf.ensure_shape(tf.cast(seed, tf.int64), [2])


def _spec_call(fn, inputs, dtype, shape):
    """``fn(*inputs)`` of the spec, as a tensor of ``dtype`` and static ``shape``."""
    tf = _tf()
    np_dtype = dtype.as_numpy_dtype

    def call(*args):
        return np.asarray(fn(*args), np_dtype).reshape(shape)

    out = tf.numpy_function(call, list(inputs), dtype, stateful=False)
    return tf.ensure_shape(out, shape)


def _nearest_indices(in_size, out_size):
    """:func:`deconvnet_tf.data.augment_spec.nearest_indices` in TF integer ops (exact)."""
    tf = _tf()
    i = tf.range(tf.cast(out_size, tf.int64), dtype=tf.int64)
    return ((2 * i + 1) * tf.cast(in_size, tf.int64)) // (2 * tf.cast(out_size, tf.int64))


def _resize_float(image, label, size):
    """The image as float32 resized bilinearly (half-pixel centres, not rounded), the label
    with nearest neighbour (the spec's ``nearest_indices``)."""
    tf = _tf()
    shape = tf.shape(label)
    size = tf.convert_to_tensor(size)
    rows = _nearest_indices(shape[0], size[0])
    cols = _nearest_indices(shape[1], size[1])
    x = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear")
    return x, tf.gather(tf.gather(label, rows, axis=0), cols, axis=1)


def _to_uint8(x):
    tf = _tf()
    return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)


def resize(image, label, size):
    """Resizes both to ``size`` (``[2]`` int): image bilinear (rounded, uint8), label nearest
    (the spec's :func:`deconvnet_tf.data.augment_spec.nearest_indices`)."""
    x, label = _resize_float(image, label, size)
    return _to_uint8(x), label


def random_scale(image, label, seed, min_scale: float = 0.75, max_scale: float = 1.25):
    """Rescales both by a random factor: image bilinear, label nearest."""
    tf = _tf()
    shape = tf.shape(image)

    def size(key, height, width):
        return spec.scaled_size(key, height, width, min_scale, max_scale)

    return resize(image, label, _spec_call(size, [_seed(seed), shape[0], shape[1]], tf.int32, [2]))


def pad_to_size(image, label, height: int, width: int, ignore_label: int):
    """Pads at the bottom/right to at least ``height x width`` (image 0, label ignore)."""
    tf = _tf()
    shape = tf.shape(image)
    pad_h = tf.maximum(height - shape[0], 0)
    pad_w = tf.maximum(width - shape[1], 0)
    image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]], constant_values=0)
    label = tf.pad(label, [[0, pad_h], [0, pad_w]], constant_values=ignore_label)
    return image, label


def crop_at(image, label, top, left, height: int, width: int, ignore_label: int):
    """Pads if needed, then crops the ``height x width`` window at ``(top, left)`` from both."""
    tf = _tf()
    image, label = pad_to_size(image, label, height, width, ignore_label)
    image = image[top : top + height, left : left + width]
    label = label[top : top + height, left : left + width]
    return tf.ensure_shape(image, (height, width, 3)), tf.ensure_shape(label, (height, width))


def random_crop(image, label, height: int, width: int, ignore_label: int, seed):
    """Pads if needed, then crops the same random ``height x width`` window from both."""
    tf = _tf()
    shape = tf.shape(image)

    def offset(key, h, w):
        return spec.crop_offset(key, h, w, height, width)

    top_left = _spec_call(offset, [_seed(seed), shape[0], shape[1]], tf.int32, [2])
    return crop_at(image, label, top_left[0], top_left[1], height, width, ignore_label)


def center_crop(image, label, height: int, width: int, ignore_label: int):
    """Pads if needed, then crops the centre ``height x width`` window from both."""
    tf = _tf()
    image, label = pad_to_size(image, label, height, width, ignore_label)
    shape = tf.shape(image)
    top, left = (shape[0] - height) // 2, (shape[1] - width) // 2
    image = image[top : top + height, left : left + width]
    label = label[top : top + height, left : left + width]
    return tf.ensure_shape(image, (height, width, 3)), tf.ensure_shape(label, (height, width))


def _flip_if(image, label, flip):
    tf = _tf()
    image = tf.cond(flip, lambda: image[:, ::-1], lambda: image)
    label = tf.cond(flip, lambda: label[:, ::-1], lambda: label)
    return image, label


def random_flip(image, label, seed):
    """Mirrors both horizontally with probability 1/2."""
    tf = _tf()
    return _flip_if(image, label, _spec_call(spec.flip, [_seed(seed)], tf.bool, []))


def _jitter_float(x, brightness=None, contrast=None, saturation=None):
    """The colour steps on a float image of 0..255 values (not rounded)."""
    tf = _tf()
    x = x / 255.0
    if brightness is not None:
        x = tf.image.adjust_brightness(x, brightness)
    if contrast is not None:
        x = tf.image.adjust_contrast(x, contrast)
    if saturation is not None:
        x = tf.image.adjust_saturation(x, saturation)
    return x * 255.0


def _gamma_float(x, gamma):
    """The tone curve ``x ** gamma`` on the 0..1 scale of a float image of 0..255 values
    (clipped to the range first; not rounded)."""
    tf = _tf()
    return tf.pow(tf.clip_by_value(x / 255.0, 0.0, 1.0), gamma) * 255.0


def _grayscale_float(x):
    """The luma ``0.2989 R + 0.5870 G + 0.1140 B`` (:data:`augment_spec.LUMA_WEIGHTS`) of a
    float image of 0..255 values (clipped to the range first; not rounded), in all three
    channels."""
    tf = _tf()
    weights = tf.constant(spec.LUMA_WEIGHTS, tf.float32)
    luma = tf.reduce_sum(tf.clip_by_value(x, 0.0, 255.0) * weights, axis=-1, keepdims=True)
    return tf.tile(luma, [1, 1, 3])


def adjust_colors(image, brightness=None, contrast=None, saturation=None):
    """Brightness delta, contrast factor, saturation factor (``None`` skips a step), in that
    order, on the 0..1 scale, then round and clip (uint8 in, uint8 out)."""
    tf = _tf()
    return _to_uint8(_jitter_float(tf.cast(image, tf.float32), brightness, contrast, saturation))


def color_jitter(image, seed, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2):
    """Random brightness/contrast/saturation of the image only (uint8 in, uint8 out).

    A range of 0 turns that step off.
    """
    tf = _tf()

    def factors(key):
        return spec.jitter_factors(key, brightness, contrast, saturation)

    f = _spec_call(factors, [_seed(seed)], tf.float32, [3])
    return adjust_colors(image, f[0] if brightness else None, f[1] if contrast else None,
                         f[2] if saturation else None)


def draw_params(seed, image, *, crop_size, scale=(0.75, 1.25), flip: bool = True,
                jitter: bool | float = True, gamma: float = 0.0, class_uniform: float = 0.0,
                label=None, ignore_label: int = 255, grayscale: float = 0.0):
    """:func:`deconvnet_tf.data.augment_spec.draw` for ``image``'s size, as tensors
    (``label`` is read only for class-uniform crops, ``class_uniform > 0``).

    Returns:
        ``(sizes, colours)``: int32 ``[height, width, top, left, flip]`` and float32
        ``[brightness delta, contrast factor, saturation factor, gamma, greyscale (1 or 0)]``.
    """
    tf = _tf()
    shape = tf.shape(image)
    class_uniform = spec.class_uniform_strength(class_uniform)

    def draw(key, height, width, *source_label):
        p = spec.draw(key, height, width, crop_size=crop_size, scale=scale, flip=flip,
                      jitter=jitter, gamma=gamma, class_uniform=class_uniform,
                      label=source_label[0] if source_label else None,
                      ignore_label=ignore_label, grayscale=grayscale)
        return (np.array([p.height, p.width, p.top, p.left, p.flip], np.int32),
                np.array([p.brightness, p.contrast, p.saturation, p.gamma, p.grayscale],
                         np.float32))

    inputs = [_seed(seed), shape[0], shape[1]]
    if class_uniform > 0:
        if label is None:
            raise ValueError("draw_params: class_uniform crops need the label")
        inputs.append(label)
    sizes, colours = tf.numpy_function(draw, inputs, (tf.int32, tf.float32), stateful=False)
    return tf.ensure_shape(sizes, [5]), tf.ensure_shape(colours, [5])


def augment(image, label, seed, *, crop_size, ignore_label: int, scale=(0.75, 1.25),
            flip: bool = True, jitter: bool | float = True, gamma: float = 0.0,
            class_uniform: float = 0.0, grayscale: float = 0.0):
    """The training augmentation: random scale, crop (with padding), flip, colour jitter,
    random gamma and random greyscale (both off by default); class-uniform crop windows (off
    by default).

    The parameters are :func:`deconvnet_tf.data.augment_spec.draw`'s, the same as
    :func:`deconvnet_tf.data.augment_np.augment` draws for the same key.

    ``jitter``: ``True`` (strength 0.2), ``False``/0 (off) or the strength (brightness delta
    and contrast/saturation ranges ``1 +- strength``). ``gamma``: the strength ``t`` of a
    random tone curve ``x ** g``, ``g`` in ``[1/(1+t), 1+t]`` (0: off). ``class_uniform``: the
    probability that the crop window is placed around a pixel of a class drawn uniformly
    among those in the label (:func:`deconvnet_tf.data.augment_spec.class_crop_offset`; 0:
    off). ``grayscale``: the probability that the crop becomes its luma in all three channels,
    after the tone curve (0: off).
    """
    tf = _tf()
    strength = spec.jitter_strength(jitter)
    gamma = spec.gamma_strength(gamma)
    grayscale = spec.grayscale_strength(grayscale)
    height, width = int(crop_size[0]), int(crop_size[1])
    sizes, colours = draw_params(seed, image, crop_size=(height, width), scale=scale, flip=flip,
                                 jitter=strength, gamma=gamma, class_uniform=class_uniform,
                                 label=label, ignore_label=ignore_label, grayscale=grayscale)
    # Float from the resize to the end, rounded once (as the NumPy executor).
    if scale is not None:
        x, label = _resize_float(image, label, sizes[:2])
    else:
        x = tf.cast(image, tf.float32)
    x, label = crop_at(x, label, sizes[2], sizes[3], height, width, ignore_label)
    if flip:
        x, label = _flip_if(x, label, sizes[4] > 0)
    if strength:
        x = _jitter_float(x, colours[0], colours[1], colours[2])
    if gamma:
        x = _gamma_float(x, colours[3])
    if grayscale:
        x = tf.cond(colours[4] > 0, lambda: _grayscale_float(x), lambda: x)
    return _to_uint8(x), label


def paste_classes(images, labels, pasted, classes):
    """The class-paste step of the spec on a batch, in TF ops (the same result as
    :func:`deconvnet_tf.data.augment_np.paste_classes`): row ``i`` with ``pasted[i]`` takes the
    pixels and labels of row ``i - 1`` (row 0: the last row) wherever that row's label is one
    of ``classes``.

    Args:
        images: ``(B, h, w, 3)`` crops.
        labels: ``(B, h, w)`` integer labels.
        pasted: ``(B,)`` booleans: which rows receive.
        classes: The class ids pasted (a Python sequence; empty pastes nothing).

    Returns:
        ``(images, labels)``.
    """
    tf = _tf()
    classes = [int(c) for c in classes]
    if not classes:
        return images, labels
    source_labels = tf.roll(labels, 1, axis=0)
    wanted = tf.constant(classes, dtype=source_labels.dtype)
    mask = tf.reduce_any(tf.equal(source_labels[..., None], wanted), axis=-1)
    mask = tf.logical_and(mask, tf.reshape(tf.cast(pasted, tf.bool), [-1, 1, 1]))
    return (tf.where(mask[..., None], tf.roll(images, 1, axis=0), images),
            tf.where(mask, source_labels, labels))
