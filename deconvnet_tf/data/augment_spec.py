"""The training augmentation spec: every random number of the augmentation, drawn in one place.

The augmentation has two executors: :mod:`deconvnet_tf.data.augment` (TensorFlow ops, for the
tf.data pipeline :func:`deconvnet_tf.data.pipeline.make_pipeline`) and
:mod:`deconvnet_tf.data.augment_np` (NumPy/OpenCV, for the ``keras.utils.PyDataset`` pipeline
:mod:`deconvnet_tf.data.pydataset`). Neither draws random numbers of its own: both take the
parameters from this module (the TensorFlow one through ``tf.numpy_function``), so the same key
gives the same scale, crop window, flip and colour jitter in both, and both pipelines give the
example at stream position ``p`` the key ``(seed, p)``.

The spec, in order (see :func:`draw`):

1. scale: a factor uniform in ``[min_scale, max_scale)``; the image becomes
   ``max(round((H, W) * factor), 1)`` (round half to even, in float64), resampled bilinearly
   (half-pixel centres), the label with nearest neighbour (:func:`nearest_indices`);
2. crop: after padding at the bottom/right to at least the crop size, the window's top and left
   are uniform integers in ``[0, padded - crop]``;
3. flip: horizontal mirror of image and label with probability 1/2;
4. colour jitter of strength ``s``: brightness delta uniform in ``[-s, s)`` (0..1 scale),
   contrast factor and saturation factor uniform in ``[1 - s, 1 + s)``, applied in that order;
5. gamma of strength ``t`` (off by default): ``x -> x ** g`` on the 0..1 scale (clipped to
   ``[0, 1]`` first), with ``log g`` uniform in ``[-log(1 + t), log(1 + t))``: a random tone
   curve, brighter or darker in the shadows, that an affine jitter cannot make;
6. greyscale with probability ``p`` (off by default): the crop becomes its luma
   ``0.2989 R + 0.5870 G + 0.1140 B`` (the weights of ``tf.image.rgb_to_grayscale``, on the
   values clipped to ``[0, 255]``, in float before the final rounding) in all three channels.

Class-uniform crops (off by default; :func:`class_crop_offset`): with probability ``p`` the
crop window of step 2 is instead placed around one pixel drawn class-uniformly from the scaled
label (a class present in it, ignore label excluded, picked with equal chance, then one of its
pixels uniformly; the window's top and left uniform among the positions that keep that pixel
inside it). A class is then in at least about ``p / (classes in the image)`` of the crops of
an image that has it; that changes what the crops show only where a crop is small against the
rescaled image (``tools/crop_class_share.py`` measures it).

Class paste (off by default; :func:`class_paste`): a batch-level step after the crops. With
probability ``p`` (drawn from the example's key), the crop at row ``i`` of a batch receives
the pixels of a set of classes from the crop at row ``i - 1`` (the last row from the first;
both as they left steps 1-6): image and label both, wherever the other crop's label is one of
those classes. The executors are ``augment_np.paste_classes`` and ``augment.paste_classes``.

Randomness is counter based: a key is a pair of integers ``(seed, index)`` and every parameter
is a SplitMix64 hash of ``(seed, index, stream)`` with one stream per parameter. So a draw
depends on nothing but the key (not on call order, threads, workers or the NumPy version), and
the single-step draws (:func:`scaled_size`, :func:`crop_offset`, :func:`flip`,
:func:`jitter_factors`, :func:`gamma_factor`, :func:`to_grayscale`) give the same numbers as
the corresponding fields of :func:`draw`.
No TensorFlow here.

Example:

>>> params = draw((0, 17), 360, 480, crop_size=(224, 224))
>>> params.height, params.width, params.top, params.left, params.flip    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["AugmentParams", "as_key", "uniform", "randint", "scale_factor", "scaled_size",
           "crop_offset", "flip", "jitter_factors", "gamma_factor", "to_grayscale",
           "nearest_indices", "jitter_strength", "gamma_strength", "grayscale_strength",
           "class_uniform_strength", "class_crop_offset", "class_paste_strength",
           "class_paste_setting", "class_paste", "draw", "LUMA_WEIGHTS"]

# One stream per random parameter.
SCALE, CROP_TOP, CROP_LEFT, FLIP, BRIGHTNESS, CONTRAST, SATURATION, GAMMA = range(1, 9)
CLASS_CROP, CLASS_PICK, PIXEL_PICK = range(9, 12)
CLASS_PASTE = 12
GRAYSCALE = 13

# The luma weights of the greyscale step (those of ``tf.image.rgb_to_grayscale``).
LUMA_WEIGHTS = (0.2989, 0.5870, 0.1140)

# The largest gamma strength: g in [1/4, 4] (beyond, a tone curve flattens the image).
MAX_GAMMA_STRENGTH = 3.0

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _mix(z: int) -> int:
    """SplitMix64's finaliser: a bijection of 64-bit integers that mixes every bit."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def as_key(seed) -> tuple[int, int]:
    """The ``(seed, index)`` key of a seed argument.

    Args:
        seed: A pair of integers (tuple, list, array or the value of a ``[2]`` tensor), an
            integer ``s`` (the key ``(s, 0)``) or a ``numpy.random.Generator`` (a key drawn
            from it, which advances it).

    Raises:
        ValueError: For anything else.
    """
    if isinstance(seed, np.random.Generator):
        a, b = seed.integers(0, 1 << 63, size=2)
        return int(a), int(b)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(seed), 0
    values = np.asarray(seed)
    if values.shape != (2,) or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"seed must be an int, a pair of ints (seed, index) or a "
                         f"numpy.random.Generator, got {seed!r}")
    return int(values[0]), int(values[1])


def _bits(key: tuple[int, int], stream: int) -> int:
    seed, index = key
    h = _mix((seed & _MASK) ^ 0x243F6A8885A308D3)
    h = _mix(h ^ (index & _MASK))
    return _mix(h ^ ((stream * _GOLDEN) & _MASK))


def uniform(key: tuple[int, int], stream: int, low: float = 0.0, high: float = 1.0) -> float:
    """A float64 uniform in ``[low, high)`` (exactly ``low`` when ``low == high``)."""
    u = (_bits(key, stream) >> 11) * 2.0**-53
    return float(low) + (float(high) - float(low)) * u


def randint(key: tuple[int, int], stream: int, n: int) -> int:
    """An integer uniform in ``[0, n)`` (``n >= 1``), exact (no float rounding)."""
    if n < 1:
        raise ValueError(f"randint needs n >= 1, got {n}")
    return (_bits(key, stream) * int(n)) >> 64


def scale_factor(key, min_scale: float = 0.75, max_scale: float = 1.25) -> float:
    """The random scale factor, uniform in ``[min_scale, max_scale)``."""
    return uniform(as_key(key), SCALE, min_scale, max_scale)


def scaled_size(key, height: int, width: int, min_scale: float = 0.75,
                max_scale: float = 1.25) -> tuple[int, int]:
    """``max(round((height, width) * factor), 1)`` for the key's :func:`scale_factor`."""
    factor = scale_factor(key, min_scale, max_scale)
    return (max(int(round(int(height) * factor)), 1), max(int(round(int(width) * factor)), 1))


def crop_offset(key, height: int, width: int, crop_height: int, crop_width: int
                ) -> tuple[int, int]:
    """``(top, left)`` of the crop window in the image padded to at least the crop size.

    ``height``/``width`` are the image's size before padding.
    """
    key = as_key(key)
    top = randint(key, CROP_TOP, max(int(height), int(crop_height)) - int(crop_height) + 1)
    left = randint(key, CROP_LEFT, max(int(width), int(crop_width)) - int(crop_width) + 1)
    return top, left


def flip(key) -> bool:
    """Whether to mirror horizontally (probability 1/2)."""
    return uniform(as_key(key), FLIP) < 0.5


_flip = flip  # ``draw``'s ``flip`` argument shadows the function


def jitter_factors(key, brightness: float = 0.2, contrast: float = 0.2,
                   saturation: float = 0.2) -> tuple[float, float, float]:
    """``(brightness delta, contrast factor, saturation factor)``.

    Uniform in ``[-brightness, brightness)``, ``[1 - contrast, 1 + contrast)`` and
    ``[1 - saturation, 1 + saturation)``; a range of 0 gives the neutral value (0, 1, 1),
    and the executors skip that step.
    """
    key = as_key(key)
    return (uniform(key, BRIGHTNESS, -brightness, brightness),
            uniform(key, CONTRAST, 1 - contrast, 1 + contrast),
            uniform(key, SATURATION, 1 - saturation, 1 + saturation))


def gamma_factor(key, strength: float = 0.0) -> float:
    """The exponent ``g`` of the gamma step: ``log g`` uniform in
    ``[-log(1 + strength), log(1 + strength))``; exactly 1 for a strength of 0."""
    strength = gamma_strength(strength)
    if strength == 0:
        return 1.0
    bound = float(np.log1p(strength))
    return float(np.exp(uniform(as_key(key), GAMMA, -bound, bound)))


def to_grayscale(key, probability: float = 0.0) -> bool:
    """Whether the crop becomes greyscale (probability ``probability``; never for 0, and then
    nothing is drawn)."""
    probability = grayscale_strength(probability)
    return probability > 0 and uniform(as_key(key), GRAYSCALE) < probability


def nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """Source rows (or columns) of nearest-neighbour resampling ``in_size -> out_size``.

    Half-pixel centres, exactly: output pixel ``i`` reads source pixel
    ``floor((i + 0.5) * in_size / out_size)``, in integers (no float ties, so both executors
    pick the same label pixels; OpenCV's and TensorFlow's own nearest modes disagree on ties).
    """
    i = np.arange(int(out_size), dtype=np.int64)
    return ((2 * i + 1) * int(in_size)) // (2 * int(out_size))


def jitter_strength(jitter: bool | float) -> float:
    """The colour-jitter strength of an ``augment(jitter=...)`` argument (``True``: 0.2)."""
    if jitter is True:
        return 0.2
    strength = float(jitter)
    if not 0 <= strength < 1:
        raise ValueError(f"jitter must be a bool or a strength in [0, 1), got {jitter!r}")
    return strength


def gamma_strength(gamma: float) -> float:
    """The gamma strength of an ``augment(gamma=...)`` argument, checked: a number in
    ``[0, 3]`` (0: off)."""
    number = isinstance(gamma, (int, float, np.integer, np.floating)) and not isinstance(
        gamma, (bool, np.bool_))
    strength = float(gamma) if number else float("nan")
    if not 0 <= strength <= MAX_GAMMA_STRENGTH:
        raise ValueError(f"gamma must be a number in [0, {MAX_GAMMA_STRENGTH:g}] (the strength "
                         f"t of a tone curve x ** g, g in [1/(1+t), 1+t]), got {gamma!r}")
    return strength


def _probability(value, name: str, meaning: str) -> float:
    """``value`` as a float in ``[0, 1]``, else ``ValueError("<name> must be a probability in
    [0, 1] (<meaning>), got ...")`` (bools and strings included)."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))
    checked = float(value) if number else float("nan")
    if not 0 <= checked <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1] ({meaning}), got {value!r}")
    return checked


def grayscale_strength(probability: float) -> float:
    """The probability of a greyscale crop (``augment(grayscale=...)``, config
    ``grayscale_prob``), checked: a number in ``[0, 1]`` (0: off)."""
    return _probability(probability, "grayscale", "the share of crops turned to greyscale")


def class_uniform_strength(probability: float) -> float:
    """The probability of a class-uniform crop (``augment(class_uniform=...)``), checked: a
    number in ``[0, 1]`` (0: off)."""
    return _probability(probability, "class_uniform", "the share of crops placed around a "
                        "pixel of a class-uniformly drawn class")


def class_paste_strength(probability: float) -> float:
    """The probability of a class paste (``class_paste``, config ``class_paste``), checked:
    a number in ``[0, 1]`` (0: off)."""
    return _probability(probability, "class_paste", "the share of crops that receive the "
                        "chosen classes' pixels of the previous crop of their batch")


def class_paste_setting(probability, classes, applies: bool) -> tuple[float, list[int]] | None:
    """``(probability, sorted class ids)`` of the class-paste step of a pipeline, checked, or
    ``None`` when it does not run (probability 0, no classes, or ``applies`` false: not
    ``"crop"`` training).

    Raises:
        ValueError: On a probability outside ``[0, 1]`` or a class id outside ``[0, 255]``.
    """
    probability = class_paste_strength(probability)
    try:
        items = list(classes)
    except TypeError:
        items = None
    if items is None or isinstance(classes, (str, bytes)) or not all(
            isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_))
            for c in items):
        raise ValueError(f"class_paste_classes must be a sequence of integer class ids, got "
                         f"{classes!r}")
    ids = [int(c) for c in items]
    if any(c < 0 or c > 255 for c in ids):
        raise ValueError(f"class_paste_classes must be class ids in [0, 255] (8-bit labels), "
                         f"got {classes!r}")
    if not applies or probability == 0 or not ids:
        return None
    return probability, sorted(set(ids))


def class_paste(key, probability: float) -> bool:
    """Whether the example with ``key`` receives the previous crop's class pixels (the spec's
    class-paste step; ``probability`` 0 never, 1 always)."""
    return uniform(as_key(key), CLASS_PASTE) < class_paste_strength(probability)


def class_crop_offset(key, label: np.ndarray, height: int, width: int, crop_height: int,
                      crop_width: int, ignore_label: int) -> tuple[int, int] | None:
    """``(top, left)`` of a crop window around a class-uniformly drawn pixel, or ``None``.

    Args:
        key: The example's key.
        label: The source label ``(H, W)``; the window is placed in it resampled to
            ``height x width`` with nearest neighbour (:func:`nearest_indices`), as the
            executors resample it, then padded at the bottom/right to at least the crop size.
        height, width: The scaled size.
        crop_height, crop_width: The crop size.
        ignore_label: A label value that is never drawn.

    Returns:
        ``None`` when the scaled label holds no class but ``ignore_label``; otherwise a class
        present in it is drawn with equal chance, one of its pixels ``(y, x)`` uniformly, and
        ``top`` uniformly among ``max(0, y - crop_height + 1) .. min(y, padded - crop_height)``
        (``left`` likewise), so the window holds that pixel.
    """
    key = as_key(key)
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must have shape (H, W), got {label.shape}")
    rows = nearest_indices(label.shape[0], height)
    cols = nearest_indices(label.shape[1], width)
    scaled = np.take(np.take(label, rows, axis=0), cols, axis=1).astype(np.int64).ravel()
    counts = np.bincount(scaled, minlength=max(int(ignore_label) + 1, 0))
    if 0 <= ignore_label:
        counts[int(ignore_label)] = 0
    classes = np.flatnonzero(counts)
    if classes.size == 0:
        return None
    chosen = classes[randint(key, CLASS_PICK, classes.size)]
    where = np.flatnonzero(scaled == chosen)
    y, x = divmod(int(where[randint(key, PIXEL_PICK, where.size)]), int(width))
    return (_window_start(key, CROP_TOP, y, int(height), int(crop_height)),
            _window_start(key, CROP_LEFT, x, int(width), int(crop_width)))


def _window_start(key, stream: int, position: int, size: int, crop: int) -> int:
    """A window start uniform among those that keep ``position`` inside a ``crop`` window of
    an axis of ``size`` padded to at least ``crop``."""
    low = max(0, position - crop + 1)
    high = min(position, max(size, crop) - crop)
    return low + randint(key, stream, high - low + 1)


@dataclass(frozen=True)
class AugmentParams:
    """The parameters of one example's training augmentation (see :func:`draw`).

    Attributes:
        scale: Scale factor (1.0 without scaling).
        height, width: Size after scaling (the source size without scaling).
        top, left: Crop window in the scaled image padded to at least the crop size.
        flip: Mirror horizontally after cropping.
        jitter: Whether colour jitter applies (strength > 0).
        brightness: Brightness delta (0..1 scale; 0 without jitter).
        contrast: Contrast factor (1 without jitter).
        saturation: Saturation factor (1 without jitter).
        gamma: Exponent of the tone curve ``x ** gamma`` on the 0..1 scale (1: off).
        grayscale: Replace the crop by its luma in all three channels, after the gamma step.
    """

    scale: float
    height: int
    width: int
    top: int
    left: int
    flip: bool
    jitter: bool
    brightness: float
    contrast: float
    saturation: float
    gamma: float = 1.0
    grayscale: bool = False


def draw(key, height: int, width: int, *, crop_size: Sequence[int],
         scale: tuple[float, float] | None = (0.75, 1.25), flip: bool = True,
         jitter: bool | float = True, gamma: float = 0.0, class_uniform: float = 0.0,
         label: np.ndarray | None = None, ignore_label: int = 255,
         grayscale: float = 0.0) -> AugmentParams:
    """All parameters of the training augmentation of one ``height x width`` example.

    Args:
        key: The example's key (see :func:`as_key`): ``(seed, stream position)`` in both
            pipelines.
        height, width: Source image size.
        crop_size: ``(height, width)`` of the output.
        scale: ``(min, max)`` scale factors, or ``None`` for no rescaling.
        flip: Random horizontal flips.
        jitter: ``True`` (strength 0.2), ``False``/0 (off) or the strength.
        gamma: Strength ``t`` of the random tone curve (0, the default: off; see
            :func:`gamma_factor`).
        class_uniform: Probability of a class-uniform crop window (0, the default: off; see
            :func:`class_crop_offset`); needs ``label``.
        label: The example's source label ``(height, width)`` (read only for class-uniform
            crops).
        ignore_label: The label value class-uniform crops never draw.
        grayscale: Probability of a greyscale crop (0, the default: off; see
            :func:`to_grayscale`).

    Returns:
        The :class:`AugmentParams`.

    Raises:
        ValueError: On a bad strength or probability, or for ``class_uniform > 0`` without a
            ``label`` of the source size.
    """
    key = as_key(key)
    crop_h, crop_w = int(crop_size[0]), int(crop_size[1])
    strength = jitter_strength(jitter)
    if scale is not None:
        factor = scale_factor(key, *scale)
        size = scaled_size(key, height, width, *scale)
    else:
        factor, size = 1.0, (int(height), int(width))
    top, left = _crop_window(key, size, (crop_h, crop_w), (int(height), int(width)),
                             class_uniform_strength(class_uniform), label, ignore_label)
    mirrored = _flip(key) if flip else False
    delta, contrast, saturation = jitter_factors(key, strength, strength, strength)
    return AugmentParams(scale=factor, height=size[0], width=size[1], top=top, left=left,
                         flip=bool(mirrored), jitter=strength > 0, brightness=delta,
                         contrast=contrast, saturation=saturation,
                         gamma=gamma_factor(key, gamma),
                         grayscale=to_grayscale(key, grayscale))


def _crop_window(key, size, crop, source, class_uniform, label, ignore_label):
    """``draw``'s crop window: class-uniform with probability ``class_uniform`` (when the
    label has a class to draw), else uniform (:func:`crop_offset`)."""
    if class_uniform > 0 and uniform(key, CLASS_CROP) < class_uniform:
        if label is None or np.shape(label) != tuple(source):
            raise ValueError(f"class_uniform crops need the source label of shape {source}, "
                             f"got {None if label is None else np.shape(label)}")
        window = class_crop_offset(key, label, size[0], size[1], crop[0], crop[1],
                                   ignore_label)
        if window is not None:
            return window
    return crop_offset(key, size[0], size[1], crop[0], crop[1])
