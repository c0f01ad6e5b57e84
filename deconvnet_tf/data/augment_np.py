"""Augmentations on ``(image uint8 (H, W, 3), label uint8 (H, W))`` pairs in NumPy/OpenCV.

The NumPy twin of :mod:`deconvnet_tf.data.augment` (TensorFlow ops) for input pipelines that
must run without TensorFlow (``keras.utils.PyDataset`` on the JAX backend). Same operations,
same parameters, same rules: images are resampled bilinearly, labels only with nearest
neighbour (so a label value is always one of the source's values or the ignore label);
padding goes at the bottom/right with image 0 and label ``ignore_label``; a flip mirrors image
and label together; colour jitter touches the image only. Random draws come from a
``numpy.random.Generator`` instead of TensorFlow's stateless seeds, so the two pipelines draw
different (equally distributed) crops.

Example:

>>> rng = np.random.default_rng(0)
>>> image, label = augment(image, label, rng, crop_size=(224, 224), ignore_label=255)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["random_scale", "pad_to_size", "random_crop", "center_crop", "random_flip",
           "adjust_brightness", "adjust_contrast", "adjust_saturation", "color_jitter", "jitter_strength", "augment"]


def _check_pair(image: np.ndarray, label: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    if label.shape != image.shape[:2]:
        raise ValueError(f"label must have the image's (H, W) = {image.shape[:2]}, got {label.shape}")


def random_scale(image: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                 min_scale: float = 0.75, max_scale: float = 1.25):
    """Rescales both by a factor drawn uniformly from ``[min_scale, max_scale)``.

    Args:
        image: ``uint8 (H, W, 3)``.
        label: ``uint8 (H, W)``.
        rng: Random generator.
        min_scale: Smallest factor.
        max_scale: Largest factor.

    Returns:
        ``(image, label)`` of size ``max(round((H, W) * factor), 1)``: the image bilinear
        (rounded, clipped to uint8), the label nearest neighbour.
    """
    import cv2

    _check_pair(image, label)
    factor = rng.uniform(min_scale, max_scale)
    height = max(int(round(image.shape[0] * factor)), 1)
    width = max(int(round(image.shape[1] * factor)), 1)
    if (height, width) == image.shape[:2]:
        return image, label
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    label = cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    return image, label


def pad_to_size(image: np.ndarray, label: np.ndarray, height: int, width: int, ignore_label: int):
    """Pads at the bottom/right to at least ``height x width`` (image 0, label ignore)."""
    pad_h, pad_w = max(height - image.shape[0], 0), max(width - image.shape[1], 0)
    if pad_h == 0 and pad_w == 0:
        return image, label
    image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), constant_values=0)
    label = np.pad(label, ((0, pad_h), (0, pad_w)), constant_values=ignore_label)
    return image, label


def random_crop(image: np.ndarray, label: np.ndarray, height: int, width: int,
                ignore_label: int, rng: np.random.Generator):
    """Pads if needed, then crops the same random ``height x width`` window from both."""
    image, label = pad_to_size(image, label, height, width, ignore_label)
    top = int(rng.integers(0, image.shape[0] - height + 1))
    left = int(rng.integers(0, image.shape[1] - width + 1))
    return (image[top : top + height, left : left + width],
            label[top : top + height, left : left + width])


def center_crop(image: np.ndarray, label: np.ndarray, height: int, width: int, ignore_label: int):
    """Pads if needed, then crops the centre ``height x width`` window from both."""
    image, label = pad_to_size(image, label, height, width, ignore_label)
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return (image[top : top + height, left : left + width],
            label[top : top + height, left : left + width])


def random_flip(image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
    """Mirrors both horizontally with probability 1/2."""
    if rng.uniform() < 0.5:
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


def color_jitter(image: np.ndarray, rng: np.random.Generator, brightness: float = 0.2,
                 contrast: float = 0.2, saturation: float = 0.2) -> np.ndarray:
    """Random brightness/contrast/saturation of the image only (uint8 in, uint8 out).

    As ``tf.image``'s ``random_brightness`` (add a delta in ``[-b, b]`` on the 0..1 scale),
    ``random_contrast`` (scale each channel about its image mean by a factor in
    ``[1 - c, 1 + c]``) and ``random_saturation`` (scale HSV saturation by a factor in
    ``[1 - s, 1 + s]``), in that order, then round and clip.
    """
    x = image.astype(np.float32) / 255.0
    x = adjust_brightness(x, rng.uniform(-brightness, brightness))
    x = adjust_contrast(x, rng.uniform(1 - contrast, 1 + contrast))
    x = adjust_saturation(x, rng.uniform(1 - saturation, 1 + saturation))
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def jitter_strength(jitter: bool | float) -> float:
    """The colour-jitter strength of an ``augment(jitter=...)`` argument (``True``: 0.2)."""
    if jitter is True:
        return 0.2
    strength = float(jitter)
    if not 0 <= strength < 1:
        raise ValueError(f"jitter must be a bool or a strength in [0, 1), got {jitter!r}")
    return strength


def augment(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, *,
            crop_size: Sequence[int], ignore_label: int,
            scale: tuple[float, float] | None = (0.75, 1.25), flip: bool = True,
            jitter: bool | float = True):
    """The training augmentation: random scale, crop (with padding), flip, colour jitter.

    Args:
        image: ``uint8 (H, W, 3)`` RGB.
        label: ``uint8 (H, W)`` class indices.
        rng: Random generator (one per example makes batches reproducible in any order).
        crop_size: ``(height, width)`` of the output.
        ignore_label: Label of padded pixels.
        scale: ``(min, max)`` scale factors, or ``None`` for no rescaling.
        flip: Random horizontal flips.
        jitter: Random colour jitter: ``True`` (strength 0.2), ``False``/0 (off) or the
            strength (brightness delta and contrast/saturation ranges ``1 +- strength``).

    Returns:
        ``(image uint8 (h, w, 3), label uint8 (h, w))``, contiguous.

    Raises:
        ValueError: If the image/label shapes do not match.
    """
    _check_pair(image, label)
    if scale is not None:
        image, label = random_scale(image, label, rng, *scale)
    image, label = random_crop(image, label, int(crop_size[0]), int(crop_size[1]), ignore_label, rng)
    if flip:
        image, label = random_flip(image, label, rng)
    strength = jitter_strength(jitter)
    if strength:
        image = color_jitter(image, rng, strength, strength, strength)
    return np.ascontiguousarray(image), np.ascontiguousarray(label)
