"""Segmentation loss: sparse softmax cross-entropy that ignores the void label, with optional
class weights (backend-agnostic ``keras.ops``)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

__all__ = ["SegmentationCrossEntropy", "median_frequency_weights"]


@keras.saving.register_keras_serializable(package="deconvnet_tf")
class SegmentationCrossEntropy(keras.losses.Loss):
    """Pixel-wise sparse softmax cross-entropy over logits, ignoring ``ignore_label`` pixels.

    The loss of an image batch is the (class-weighted) sum over labelled pixels divided by the
    sum of their weights, so void pixels change neither the numerator nor the denominator.

    Args:
        num_classes: Number of classes (labels outside ``[0, num_classes)`` must be
            ``ignore_label``).
        ignore_label: Label value that contributes nothing (``None``: every pixel counts).
        class_weights: Optional per-class weights (e.g. median-frequency balancing).
        from_logits: Whether predictions are logits (the models output logits by default).
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
        name: str = "segmentation_cross_entropy",
        **kwargs,
    ):
        kwargs.setdefault("reduction", "sum_over_batch_size")
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.ignore_label = None if ignore_label is None else int(ignore_label)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        if self.class_weights is not None and len(self.class_weights) != self.num_classes:
            raise ValueError(
                f"class_weights has {len(self.class_weights)} values for {self.num_classes} classes"
            )
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        labels = ops.cast(y_true, "int32")
        if len(labels.shape) == len(y_pred.shape):
            labels = ops.squeeze(labels, -1)
        if self.ignore_label is not None:
            valid = ops.not_equal(labels, self.ignore_label)
        else:
            valid = ops.ones_like(labels, dtype="bool")
        safe = ops.where(valid, labels, ops.zeros_like(labels))
        pixel_loss = keras.losses.sparse_categorical_crossentropy(
            safe, y_pred, from_logits=self.from_logits
        )
        weights = ops.cast(valid, "float32")
        if self.class_weights is not None:
            table = ops.convert_to_tensor(self.class_weights, dtype="float32")
            weights = weights * ops.take(table, safe)
        total = ops.sum(pixel_loss * weights)
        denominator = ops.maximum(ops.sum(weights), 1e-6)
        # Keras divides the returned per-sample values by the batch size; undo it so the
        # result is the weighted mean over labelled pixels of the whole batch.
        return ops.ones((ops.shape(y_pred)[0],), "float32") * (total / denominator)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "ignore_label": self.ignore_label,
                "class_weights": self.class_weights,
                "from_logits": self.from_logits,
            }
        )
        return config


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
