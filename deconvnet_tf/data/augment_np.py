"""Augmentations on ``(image uint8 (H, W, 3), label uint8 (H, W))`` pairs in NumPy/OpenCV.

The NumPy executor of the training augmentation, for input pipelines that must run without
TensorFlow (``keras.utils.PyDataset`` on the JAX backend); :mod:`deconvnet_tf.data.augment` is
the TensorFlow executor (tf.data). The spec, every random parameter of it, lives in
:mod:`deconvnet_tf.data.augment_spec`: both executors draw from it, so the same key gives the
same scale, crop window and flip (labels identical) and the same colour jitter (images within
one grey level: OpenCV's fixed-point bilinear resize and float reductions round differently
from ``tf.image``). Same rules in both: images are resampled bilinearly, labels only with
nearest neighbour (so a label value is always one of the source's values or the ignore label);
padding goes at the bottom/right with image 0 and label ``ignore_label``; a flip mirrors image
and label together; colour jitter touches the image only.

The random functions take a ``seed``: a key ``(seed, index)`` (what the pipelines pass: the
pipeline seed and the example's stream position), an int ``s`` (the key ``(s, 0)``) or a
``numpy.random.Generator`` (a key is drawn from it); see
:func:`deconvnet_tf.data.augment_spec.as_key`.

Example:

>>> image, label = augment(image, label, (0, 17), crop_size=(224, 224), ignore_label=255)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deconvnet_tf.data import augment_spec as spec
from deconvnet_tf.data.augment_spec import gamma_strength, grayscale_strength, jitter_strength

__all__ = ["random_scale", "resize", "pad_to_size", "random_crop", "crop_at", "center_crop",
           "random_flip", "adjust_brightness", "adjust_contrast", "adjust_saturation",
           "adjust_colors", "color_jitter", "jitter_strength", "gamma_strength",
           "grayscale_strength", "apply_params", "augment", "paste_classes"]


def _check_pair(image: np.ndarray, label: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    if label.shape != image.shape[:2]:
        raise ValueError(f"label must have the image's (H, W) = {image.shape[:2]}, got {label.shape}")


def _resize_float(image: np.ndarray, label: np.ndarray, height: int, width: int):
    """The image as float32 resized bilinearly (half-pixel centres, not rounded), the label
    with nearest neighbour (:func:`deconvnet_tf.data.augment_spec.nearest_indices`)."""
    import cv2

    x = image.astype(np.float32)
    if (height, width) == image.shape[:2]:
        return x, label
    rows = spec.nearest_indices(image.shape[0], height)
    cols = spec.nearest_indices(image.shape[1], width)
    x = cv2.resize(x, (width, height), interpolation=cv2.INTER_LINEAR).reshape(height, width, -1)
    return x, np.take(np.take(label, rows, axis=0), cols, axis=1)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def resize(image: np.ndarray, label: np.ndarray, height: int, width: int):
    """Resizes both to ``height x width``: the image bilinear (rounded, uint8), the label
    nearest neighbour (:func:`deconvnet_tf.data.augment_spec.nearest_indices`); unchanged
    when already that size."""
    if (height, width) == image.shape[:2]:
        return image, label
    x, label = _resize_float(image, label, height, width)
    return _to_uint8(x), label


def random_scale(image: np.ndarray, label: np.ndarray, seed,
                 min_scale: float = 0.75, max_scale: float = 1.25):
    """Rescales both by a factor drawn uniformly from ``[min_scale, max_scale)``.

    Args:
        image: ``uint8 (H, W, 3)``.
        label: ``uint8 (H, W)``.
        seed: Key, int or generator (see the module docstring).
        min_scale: Smallest factor.
        max_scale: Largest factor.

    Returns:
        ``(image, label)`` of size ``max(round((H, W) * factor), 1)``: the image bilinear
        (rounded, clipped to uint8), the label nearest neighbour.
    """
    _check_pair(image, label)
    height, width = spec.scaled_size(spec.as_key(seed), image.shape[0], image.shape[1],
                                     min_scale, max_scale)
    return resize(image, label, height, width)


def pad_to_size(image: np.ndarray, label: np.ndarray, height: int, width: int, ignore_label: int):
    """Pads at the bottom/right to at least ``height x width`` (image 0, label ignore)."""
    pad_h, pad_w = max(height - image.shape[0], 0), max(width - image.shape[1], 0)
    if pad_h == 0 and pad_w == 0:
        return image, label
    image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), constant_values=0)
    label = np.pad(label, ((0, pad_h), (0, pad_w)), constant_values=ignore_label)
    return image, label


def crop_at(image: np.ndarray, label: np.ndarray, top: int, left: int, height: int, width: int,
            ignore_label: int):
    """Pads if needed, then crops the ``height x width`` window at ``(top, left)`` from both."""
    image, label = pad_to_size(image, label, height, width, ignore_label)
    return (image[top : top + height, left : left + width],
            label[top : top + height, left : left + width])


def random_crop(image: np.ndarray, label: np.ndarray, height: int, width: int,
                ignore_label: int, seed):
    """Pads if needed, then crops the same random ``height x width`` window from both."""
    top, left = spec.crop_offset(spec.as_key(seed), image.shape[0], image.shape[1], height, width)
    return crop_at(image, label, top, left, height, width, ignore_label)


def center_crop(image: np.ndarray, label: np.ndarray, height: int, width: int, ignore_label: int):
    """Pads if needed, then crops the centre ``height x width`` window from both."""
    image, label = pad_to_size(image, label, height, width, ignore_label)
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return (image[top : top + height, left : left + width],
            label[top : top + height, left : left + width])


def random_flip(image: np.ndarray, label: np.ndarray, seed):
    """Mirrors both horizontally with probability 1/2."""
    if spec.flip(spec.as_key(seed)):
        return image[:, ::-1], label[:, ::-1]
    return image, label


def adjust_brightness(x: np.ndarray, delta: float) -> np.ndarray:
    """``tf.image.adjust_brightness`` on float images: adds ``delta``."""
    return x + np.float32(delta)


def adjust_contrast(x: np.ndarray, factor: float) -> np.ndarray:
    """``tf.image.adjust_contrast``: scales each channel about its mean over the image."""
    mean = x.mean(axis=(-3, -2), keepdims=True)
    return (x - mean) * np.float32(factor) + mean


def adjust_saturation(x: np.ndarray, factor: float) -> np.ndarray:
    """``tf.image.adjust_saturation`` on float RGB: HSV saturation times ``factor``, clipped to
    1, hue and value kept.

    With hue and value fixed, scaling the saturation moves every channel towards (or away
    from) the largest one, ``V``: ``c' = V - (V - c) * f``, where ``f`` is capped at
    ``V / (V - min)`` (saturation 1). Pixels with ``V <= 0`` have no saturation to change.
    """
    value = x.max(axis=-1, keepdims=True)
    spread = value - x.min(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        cap = np.where(spread > 0, value / np.maximum(spread, 1e-12), np.inf)
    f = np.where(value > 0, np.minimum(np.float32(factor), cap), 1.0).astype(np.float32)
    return value - (value - x) * f


def _jitter_float(x: np.ndarray, brightness: float | None, contrast: float | None,
                  saturation: float | None) -> np.ndarray:
    """The colour steps on a float image of 0..255 values (not rounded)."""
    x = x / np.float32(255.0)
    if brightness is not None:
        x = adjust_brightness(x, brightness)
    if contrast is not None:
        x = adjust_contrast(x, contrast)
    if saturation is not None:
        x = adjust_saturation(x, saturation)
    return x * np.float32(255.0)


def _gamma_float(x: np.ndarray, gamma: float) -> np.ndarray:
    """The tone curve ``x ** gamma`` on the 0..1 scale of a float image of 0..255 values
    (clipped to the range first; not rounded)."""
    return np.power(np.clip(x / np.float32(255.0), 0, 1), np.float32(gamma)) * np.float32(255.0)


def _grayscale_float(x: np.ndarray) -> np.ndarray:
    """The luma ``0.2989 R + 0.5870 G + 0.1140 B`` (:data:`augment_spec.LUMA_WEIGHTS`) of a
    float image of 0..255 values (clipped to the range first; not rounded), in all three
    channels."""
    weights = np.asarray(spec.LUMA_WEIGHTS, np.float32)
    luma = (np.clip(x, 0, 255).astype(np.float32) * weights).sum(axis=-1, keepdims=True)
    return np.repeat(luma, 3, axis=-1)


def adjust_colors(image: np.ndarray, brightness: float | None, contrast: float | None,
                  saturation: float | None) -> np.ndarray:
    """Brightness delta, contrast factor, saturation factor (``None`` skips a step), in that
    order, on the 0..1 scale, then round and clip (uint8 in, uint8 out)."""
    return _to_uint8(_jitter_float(image.astype(np.float32), brightness, contrast, saturation))


def color_jitter(image: np.ndarray, seed, brightness: float = 0.2,
                 contrast: float = 0.2, saturation: float = 0.2) -> np.ndarray:
    """Random brightness/contrast/saturation of the image only (uint8 in, uint8 out).

    As ``tf.image``'s ``random_brightness`` (add a delta in ``[-b, b]`` on the 0..1 scale),
    ``random_contrast`` (scale each channel about its image mean by a factor in
    ``[1 - c, 1 + c]``) and ``random_saturation`` (scale HSV saturation by a factor in
    ``[1 - s, 1 + s]``), in that order, then round and clip. A range of 0 turns that step off.
    """
    delta, c, s = spec.jitter_factors(spec.as_key(seed), brightness, contrast, saturation)
    return adjust_colors(image, delta if brightness else None, c if contrast else None,
                         s if saturation else None)


def apply_params(image: np.ndarray, label: np.ndarray, params: spec.AugmentParams, *,
                 crop_size: Sequence[int], ignore_label: int):
    """The augmentation with drawn parameters: resize, crop (with padding), flip, jitter,
    gamma, greyscale.

    The image stays float from the resize to the end and is rounded once, as in
    :func:`deconvnet_tf.data.augment.augment` (so the executors differ by at most one grey
    level: float rounding, never a compounded intermediate rounding).
    """
    x, label = _resize_float(image, label, params.height, params.width)
    x, label = crop_at(x, label, params.top, params.left, int(crop_size[0]), int(crop_size[1]),
                       ignore_label)
    if params.flip:
        x, label = x[:, ::-1], label[:, ::-1]
    if params.jitter:
        x = _jitter_float(x, params.brightness, params.contrast, params.saturation)
    if params.gamma != 1.0:
        x = _gamma_float(x, params.gamma)
    if params.grayscale:
        x = _grayscale_float(x)
    return _to_uint8(x), np.ascontiguousarray(label)


def augment(image: np.ndarray, label: np.ndarray, seed, *,
            crop_size: Sequence[int], ignore_label: int,
            scale: tuple[float, float] | None = (0.75, 1.25), flip: bool = True,
            jitter: bool | float = True, gamma: float = 0.0, class_uniform: float = 0.0,
            grayscale: float = 0.0):
    """The training augmentation: random scale, crop (with padding), flip, colour jitter,
    random gamma and random greyscale (both off by default); class-uniform crop windows (off
    by default).

    The parameters are :func:`deconvnet_tf.data.augment_spec.draw`'s, the same as
    :func:`deconvnet_tf.data.augment.augment` draws for the same key.

    Args:
        image: ``uint8 (H, W, 3)`` RGB.
        label: ``uint8 (H, W)`` class indices.
        seed: Key ``(seed, index)`` (one per example makes batches reproducible in any
            order), int or ``numpy.random.Generator`` (see the module docstring).
        crop_size: ``(height, width)`` of the output.
        ignore_label: Label of padded pixels.
        scale: ``(min, max)`` scale factors, or ``None`` for no rescaling.
        flip: Random horizontal flips.
        jitter: Random colour jitter: ``True`` (strength 0.2), ``False``/0 (off) or the
            strength (brightness delta and contrast/saturation ranges ``1 +- strength``).
        gamma: Strength ``t`` of a random tone curve ``x ** g`` on the 0..1 scale, ``g`` in
            ``[1/(1+t), 1+t]`` (0, the default: off).
        class_uniform: Probability that the crop window is placed around a pixel of a class
            drawn uniformly among those in the label
            (:func:`deconvnet_tf.data.augment_spec.class_crop_offset`; 0, the default: off).
        grayscale: Probability that the crop becomes its luma ``0.2989 R + 0.5870 G +
            0.1140 B`` in all three channels, after the tone curve (0, the default: off).

    Returns:
        ``(image uint8 (h, w, 3), label uint8 (h, w))``, contiguous.

    Raises:
        ValueError: If the image/label shapes do not match, or on a bad
            ``jitter``/``gamma``/``class_uniform``/``grayscale``/``seed``.
    """
    _check_pair(image, label)
    params = spec.draw(spec.as_key(seed), image.shape[0], image.shape[1], crop_size=crop_size,
                       scale=scale, flip=flip, jitter=jitter, gamma=gamma,
                       class_uniform=class_uniform, label=label, ignore_label=ignore_label,
                       grayscale=grayscale)
    return apply_params(image, label, params, crop_size=crop_size, ignore_label=ignore_label)


def paste_classes(images: np.ndarray, labels: np.ndarray, pasted,
                  classes) -> tuple[np.ndarray, np.ndarray]:
    """The class-paste step of the spec on a batch
    (:func:`deconvnet_tf.data.augment_spec.class_paste`).

    Row ``i`` with ``pasted[i]`` takes, wherever the label of row ``i - 1`` (row 0: the last
    row) is one of ``classes``, that row's pixels and labels; the sources are the rows as
    given (a row pasted onto is not a source of its changed pixels).

    Args:
        images: ``(B, h, w, 3)`` crops.
        labels: ``(B, h, w)`` integer labels.
        pasted: ``(B,)`` booleans: which rows receive.
        classes: The class ids pasted (an empty set pastes nothing).

    Returns:
        New ``(images, labels)`` (the inputs are not changed).

    Raises:
        ValueError: On mismatched shapes.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    pasted = np.asarray(pasted, dtype=bool).reshape(-1)
    if images.ndim != 4 or labels.shape != images.shape[:3] or pasted.shape != images.shape[:1]:
        raise ValueError(f"paste_classes needs images (B, h, w, 3), labels (B, h, w) and pasted "
                         f"(B,), got {images.shape}, {labels.shape} and {pasted.shape}")
    source_labels = np.roll(labels, 1, axis=0)
    mask = np.isin(source_labels, np.asarray(list(classes), dtype=np.int64))
    mask &= pasted[:, None, None]
    return (np.where(mask[..., None], np.roll(images, 1, axis=0), images),
            np.where(mask, source_labels, labels))
