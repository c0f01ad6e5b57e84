"""Segmentation loss: sparse softmax cross-entropy that ignores the void label, with optional
class weights, optional label smoothing, an optional focal modulation and an optional
Lovasz-softmax term (backend-agnostic ``keras.ops``)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

__all__ = ["SegmentationCrossEntropy", "lovasz_softmax", "median_frequency_weights", "rare_classes"]


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class SegmentationCrossEntropy(keras.losses.Loss):
    """Pixel-wise sparse softmax cross-entropy over logits, ignoring ``ignore_label`` pixels.

    The loss of an image batch is the (class-weighted) sum over labelled pixels divided by the
    sum of their weights, so void pixels change neither the numerator nor the denominator (nor
    do their scores, even NaN or infinite ones).
    A Keras ``sample_weight`` (one weight per image ``(N,)``, or per pixel ``(N, H, W)`` /
    ``(N, H, W, 1)``) multiplies each pixel's cross-entropy term in the numerator only, as
    ``keras.losses.SparseCategoricalCrossentropy(ignore_class=...)`` weights its pixels (the
    same value when there are no class weights; a Lovasz term is not weighted). Labels may
    come as ``(N, H, W)`` or
    ``(N, H, W, 1)``; eager calls check that every label is a class or ``ignore_label``.
    With ``focal_gamma > 0`` each pixel's cross-entropy is multiplied by ``(1 - p)**focal_gamma``,
    ``p`` the softmax probability of its true class (the focal loss, Lin et al. 2017: easy,
    confident pixels count less); the denominator stays the sum of the class weights.
    With ``label_smoothing = e > 0`` each pixel's target is ``1 - e`` on its class plus ``e``
    spread uniformly over all ``num_classes`` classes (Szegedy et al. 2016), i.e. its term is
    ``(1 - e) * -log p_y + e * mean_c(-log p_c)``; class weights and the focal factor (of
    ``p_y``) still multiply it.
    With ``lovasz_weight > 0`` the batch's Lovasz-softmax loss (:func:`lovasz_softmax`, a
    surrogate of 1 - mean IoU) times ``lovasz_weight`` is added.

    Args:
        num_classes: Number of classes (labels outside ``[0, num_classes)`` must be
            ``ignore_label``).
        ignore_label: Label value that contributes nothing (``None``: every pixel counts).
        class_weights: Optional per-class weights (e.g. median-frequency balancing).
        from_logits: Whether predictions are logits (the models output logits by default).
        lovasz_weight: Weight of the added Lovasz-softmax term (``0``: cross-entropy only).
        focal_gamma: Focusing parameter of the focal modulation (``0``: plain cross-entropy;
            Lin et al. use 2).
        label_smoothing: Share ``e`` in ``[0, 1)`` of each pixel's target spread uniformly
            over the classes (``0``: one-hot targets).
        name: Loss name.
        **kwargs: ``keras.losses.Loss`` arguments.

    Example:

    >>> loss = SegmentationCrossEntropy(num_classes=12, ignore_label=11)
    >>> model.compile(optimizer="sgd", loss=loss)
    """

    def __init__(
        self,
        num_classes: int,
        ignore_label: int | None = 255,
        class_weights: Sequence[float] | None = None,
        from_logits: bool = True,
        lovasz_weight: float = 0.0,
        focal_gamma: float = 0.0,
        label_smoothing: float = 0.0,
        name: str = "segmentation_cross_entropy",
        **kwargs,
    ):
        kwargs.setdefault("reduction", "sum_over_batch_size")
        super().__init__(name=name, **kwargs)
        self.num_classes = _as_int(num_classes, "num_classes")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes!r}")
        self.ignore_label = None if ignore_label is None else _as_int(ignore_label,
                                                                      "ignore_label")
        self.class_weights = _check_class_weights(class_weights)
        if self.class_weights is not None and len(self.class_weights) != self.num_classes:
            raise ValueError(
                f"class_weights has {len(self.class_weights)} values for {self.num_classes} classes"
            )
        self.from_logits = bool(from_logits)
        self.lovasz_weight = float(lovasz_weight)
        if not (np.isfinite(self.lovasz_weight) and self.lovasz_weight >= 0):
            raise ValueError(f"lovasz_weight must be a finite number >= 0, got {lovasz_weight!r}")
        self.focal_gamma = float(focal_gamma)
        if not (np.isfinite(self.focal_gamma) and self.focal_gamma >= 0):
            raise ValueError(f"focal_gamma must be a finite number >= 0, got {focal_gamma!r}")
        self.label_smoothing = float(label_smoothing)
        if not (np.isfinite(self.label_smoothing) and 0 <= self.label_smoothing < 1):
            raise ValueError(
                f"label_smoothing must be a number in [0, 1), got {label_smoothing!r}")

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Keras would multiply the per-image batch value by the sample weights; ``call`` folds
        # them into the pixel weights instead (the reference's weighting).
        inputs = y_true if sample_weight is None else (y_true, sample_weight)
        out = super().__call__(inputs, y_pred)
        if self.reduction not in (None, "none") and tuple(out.shape) == (0,):  # empty batch
            return ops.zeros((), out.dtype)  # as the reference: 0, not an empty array
        return out

    def call(self, y_true, y_pred):
        sample_weight = None
        if isinstance(y_true, tuple):  # (labels, sample weights) from __call__
            y_true, sample_weight = y_true
        y_pred = ops.cast(y_pred, "float32")
        labels = _label_map(ops.cast(y_true, "int32"), y_pred)
        if self.ignore_label is not None:
            valid = ops.not_equal(labels, self.ignore_label)
        else:
            valid = ops.ones_like(labels, dtype="bool")
        _check_label_values(labels, self.num_classes, self.ignore_label)
        safe = ops.where(valid, labels, ops.zeros_like(labels))
        # void pixels' scores count nowhere, not even as NaN or infinity (NaN * 0 is NaN)
        y_pred = ops.where(ops.expand_dims(valid, -1), y_pred, ops.ones_like(y_pred))
        pixel_loss = keras.losses.sparse_categorical_crossentropy(
            safe, y_pred, from_logits=self.from_logits
        )
        focal = _focal_factor(pixel_loss, self.focal_gamma) if self.focal_gamma > 0 else None
        if self.label_smoothing > 0:
            pixel_loss = ((1.0 - self.label_smoothing) * pixel_loss
                          + self.label_smoothing * self._uniform_cross_entropy(y_pred))
        if focal is not None:
            pixel_loss = pixel_loss * focal
        weights = ops.cast(valid, "float32")
        if self.class_weights is not None:
            table = ops.convert_to_tensor(self.class_weights, dtype="float32")
            weights = weights * ops.take(table, safe)
        denominator = ops.maximum(ops.sum(weights), 1e-6)
        total = _weighted_sum(pixel_loss * weights, sample_weight, labels)
        value = total / denominator
        if self.lovasz_weight > 0:
            probabilities = ops.softmax(y_pred, axis=-1) if self.from_logits else y_pred
            value = value + self.lovasz_weight * lovasz_softmax(
                labels, probabilities, self.num_classes, self.ignore_label)
        # Keras divides the returned per-sample values by the batch size; undo it so the
        # result is the weighted mean over labelled pixels of the whole batch.
        return ops.ones((ops.shape(y_pred)[0],), "float32") * value

    def _uniform_cross_entropy(self, y_pred):
        """``mean_c(-log p_c)`` per pixel: the cross-entropy against the uniform target."""
        if self.from_logits:
            log_p = y_pred - ops.logsumexp(y_pred, axis=-1, keepdims=True)
        else:
            probabilities = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
            log_p = ops.log(ops.clip(probabilities, keras.backend.epsilon(), 1.0))
        return -ops.mean(log_p, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "ignore_label": self.ignore_label,
                "class_weights": self.class_weights,
                "from_logits": self.from_logits,
                "lovasz_weight": self.lovasz_weight,
                "focal_gamma": self.focal_gamma,
                "label_smoothing": self.label_smoothing,
            }
        )
        return config


def _as_int(value, name: str) -> int:
    """An integer argument (an integral float too, not a bool or text), or a ``ValueError``."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)) and float(value).is_integer()
    if not ok:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _check_class_weights(class_weights) -> list[float] | None:
    """``class_weights`` as a list of finite floats >= 0 (``None`` stays ``None``)."""
    if class_weights is None:
        return None
    try:
        if isinstance(class_weights, (str, bytes)):
            raise TypeError
        weights = [float(w) for w in class_weights]
    except (TypeError, ValueError):
        weights = [float("nan")]
    if not all(np.isfinite(w) and w >= 0 for w in weights):
        raise ValueError(f"class_weights must be finite numbers >= 0, one per class, got "
                         f"{class_weights!r}")
    return weights


def _static_shape(x) -> tuple | None:
    """The static shape of a tensor as a tuple (``None`` for an unknown rank)."""
    try:
        return tuple(x.shape)
    except ValueError:  # TensorFlow: "Cannot take the length of shape with unknown rank"
        return None


def _fits(shape: tuple, wanted: tuple) -> bool:
    return len(shape) == len(wanted) and all(
        a is None or b is None or a == b for a, b in zip(shape, wanted))


def _label_map(labels, y_pred):
    """``y_true`` as ``(N, H, W)`` labels of ``(N, H, W, C)`` scores: a trailing axis of 1
    dropped, an unknown rank (a ``tf.data`` map without shapes) taken from ``y_pred``.

    Raises:
        ValueError: The static shapes do not fit (naming both).
    """
    shape, scores = _static_shape(labels), _static_shape(y_pred)
    if shape is None or scores is None:
        return ops.reshape(labels, ops.shape(y_pred)[:-1])
    if len(shape) == len(scores) and shape[-1] in (1, None):
        labels, shape = ops.squeeze(labels, -1), shape[:-1]
    if not _fits(shape, scores[:-1]):
        raise ValueError(f"y_true of shape {shape} does not fit y_pred of shape {scores}: "
                         "expected labels (N, H, W) or (N, H, W, 1) for scores (N, H, W, C)")
    return labels


def _check_label_values(labels, num_classes: int, ignore_label: int | None) -> None:
    """In eager calls, a ``ValueError`` for a label that is neither a class nor the ignore
    label (compiled steps leave it to the backend: TensorFlow raises, on the CPU)."""
    try:
        values = np.asarray(ops.convert_to_numpy(labels))
    except Exception:  # a symbolic tensor (tf.function, jax.jit): no values to check
        return
    bad = (values < 0) | (values >= num_classes)
    if ignore_label is not None:
        bad &= values != ignore_label
    if bad.any():
        found = sorted(set(values[bad].tolist()))
        raise ValueError(f"y_true holds label(s) {found[:5]} outside the classes "
                         f"0..{num_classes - 1} (ignore_label={ignore_label})")


def _weighted_sum(pixel_terms, sample_weight, labels):
    """``sum(pixel_terms)``, each term times its Keras sample weight when there are some: a
    scalar, one per image ``(N,)`` / ``(N, 1)``, or one per pixel ``(N, H, W)`` /
    ``(N, H, W, 1)``.

    Raises:
        ValueError: ``sample_weight`` of another shape (static shapes).
    """
    if sample_weight is None:
        return ops.sum(pixel_terms)
    weights = ops.cast(sample_weight, "float32")
    shape, wanted = _static_shape(weights), _static_shape(labels)
    if shape == ():
        return ops.sum(pixel_terms) * weights
    if shape is not None and wanted is not None and not any(
            _fits(shape, form) for form in (wanted[:1], wanted[:1] + (1,), wanted,
                                             wanted + (1,))):
        raise ValueError(f"sample_weight of shape {shape} does not fit labels of shape "
                         f"{wanted}: expected (N,), (N, H, W) or (N, H, W, 1)")
    # per image: (N, 1) or (N, H*W) weights against (N, H*W) terms
    n = ops.shape(pixel_terms)[0]
    return ops.sum(_per_image(pixel_terms, n) * _per_image(weights, n))


def _per_image(x, n):
    """``x`` as ``(n, values per image)``, without ``-1`` (``n`` may be 0)."""
    shape = _static_shape(x)
    if shape is not None and None not in shape:
        return ops.reshape(x, (shape[0], int(np.prod(shape[1:], dtype=np.int64))))
    return ops.reshape(x, (n, ops.size(x) // ops.maximum(n, 1)))  # dynamic shapes (graph)


def _focal_factor(cross_entropy, gamma: float):
    """``(1 - p)**gamma`` of pixels whose cross-entropy is ``-log p``: ``1 - p`` as
    ``-expm1(-cross_entropy)`` (exact for confident pixels), floored at 1e-12 so that
    ``gamma < 1`` keeps a finite gradient where ``p`` rounds to 1."""
    one_minus_p = ops.maximum(-ops.expm1(-cross_entropy), 1e-12)
    return ops.power(one_minus_p, gamma)


def lovasz_softmax(labels, probabilities, num_classes: int, ignore_label: int | None = None):
    """The Lovasz-softmax loss (Berman, Triki, Blaschko, CVPR 2018) of a whole batch.

    A convex surrogate of ``1 - IoU`` per class, averaged over the classes present in
    ``labels`` (their ``classes="present"``, ``per_image=False``): for class ``c`` the errors
    ``|[label == c] - p_c|`` of all labelled pixels are sorted in decreasing order and dotted
    with the gradient of the Lovasz extension of the Jaccard loss at that order. Pixels labelled
    ``ignore_label`` (or outside ``[0, num_classes)``) count nowhere.

    Args:
        labels: Integer labels ``(N, H, W)``.
        probabilities: ``(N, H, W, C)`` class probabilities (softmax outputs).
        num_classes: ``C``.
        ignore_label: The void label, or ``None``.

    Returns:
        A float32 scalar in ``[0, 1]``; ``0`` when no pixel is labelled.
    """
    probabilities = ops.reshape(ops.cast(probabilities, "float32"), (-1, num_classes))
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    valid = ops.logical_and(ops.greater_equal(labels, 0), ops.less(labels, num_classes))
    if ignore_label is not None:
        valid = ops.logical_and(valid, ops.not_equal(labels, ignore_label))
    valid = ops.cast(valid, "float32")
    # (C, P): foreground indicator and error per class; void pixels get error 0 and sort last,
    # where they add nothing (their error is 0 and they come after every positive error).
    foreground = ops.transpose(ops.one_hot(ops.where(valid > 0, labels, 0), num_classes))
    foreground = foreground * valid[None, :]
    errors = ops.abs(foreground - ops.transpose(probabilities)) * valid[None, :]
    order = ops.argsort(-ops.stop_gradient(errors), axis=-1)
    errors_sorted = ops.take_along_axis(errors, order, axis=-1)
    fg_sorted = ops.take_along_axis(foreground, order, axis=-1)
    valid_sorted = ops.take_along_axis(ops.broadcast_to(valid[None, :], ops.shape(errors)),
                                       order, axis=-1)
    gts = ops.sum(fg_sorted, axis=-1, keepdims=True)
    intersection = gts - ops.cumsum(fg_sorted, axis=-1)
    union = gts + ops.cumsum((1.0 - fg_sorted) * valid_sorted, axis=-1)
    jaccard = 1.0 - intersection / ops.maximum(union, 1e-12)
    grad = ops.concatenate([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=-1)
    per_class = ops.sum(errors_sorted * ops.stop_gradient(grad), axis=-1)
    present = ops.cast(ops.greater(gts[:, 0], 0), "float32")
    return ops.sum(per_class * present) / ops.maximum(ops.sum(present), 1.0)


def median_frequency_weights(
    pixel_counts: Sequence[int] | np.ndarray, image_counts: Sequence[int] | np.ndarray | None = None,
    power: float = 1.0,
) -> np.ndarray:
    """Median-frequency class balancing (Eigen & Fergus 2015, as used by SegNet).

    ``freq(c) = pixels of c / total pixels of the images where c is present`` and
    ``weight(c) = (median(freq) / freq(c)) ** power``. Classes never seen get weight 0.
    ``power=0.5`` (``class_weighting="sqrt_median_frequency"``) is the milder balancing between
    none (``power=0``: every seen class 1) and SegNet's (``power=1``).

    Args:
        pixel_counts: Pixels per class over the training set.
        image_counts: Per class, the total pixels of the images that contain it. ``None``
            uses the total pixel count for every class (plain frequency).
        power: Exponent applied to the ratio (``>= 0``).

    Returns:
        float32 weights, one per class.
    """
    pixels = np.asarray(pixel_counts, np.float64)
    if pixels.ndim != 1 or pixels.size == 0 or np.any(pixels < 0):
        raise ValueError("pixel_counts must be a non-empty 1-D array of non-negative counts")
    if not (np.isfinite(power) and power >= 0):
        raise ValueError(f"power must be a finite number >= 0, got {power!r}")
    totals = (
        np.full_like(pixels, pixels.sum()) if image_counts is None
        else np.asarray(image_counts, np.float64)
    )
    seen = (pixels > 0) & (totals > 0)
    freq = np.zeros_like(pixels)
    freq[seen] = pixels[seen] / totals[seen]
    weights = np.zeros_like(pixels)
    weights[seen] = (np.median(freq[seen]) / freq[seen]) ** power
    return weights.astype(np.float32)


def rare_classes(pixel_counts: Sequence[int] | np.ndarray,
                 image_counts: Sequence[int] | np.ndarray | None = None) -> list[int]:
    """The classes rarer than the median class: those whose median-frequency weight
    (:func:`median_frequency_weights`, ``power=1``) is above 1, i.e. seen and with a pixel
    frequency below the median of the seen classes' (the default of ``class_paste_classes``).

    Args:
        pixel_counts: Pixels per class over the training set.
        image_counts: Per class, the total pixels of the images that contain it (``None``:
            plain frequency).

    Returns:
        Sorted class ids.
    """
    weights = median_frequency_weights(pixel_counts, image_counts, power=1.0)
    return [int(c) for c in np.flatnonzero(weights > 1)]
