"""EDeconvNet: DeconvNet (instance-wise) ensembled with FCN-8s (whole image), Noh et al. 2015
Sec. 4.3.

The paper's text averages the two class-probability maps (``"mean"``); the released code
multiplies them (``"product"``, renormalised per pixel).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deconvnet_tf.inference.instance import predict_instances
from deconvnet_tf.inference.predict import predict_image

__all__ = ["ENSEMBLE_METHODS", "combine_probabilities", "predict_edeconvnet"]

ENSEMBLE_METHODS = ("mean", "product")


def combine_probabilities(
    maps: Sequence[np.ndarray], method: str = "mean", weights: Sequence[float] | None = None
) -> np.ndarray:
    """Combines class-probability maps of several models pixel-wise.

    Args:
        maps: Probability maps of equal shape ``(H, W, C)``.
        method: ``"mean"`` (weighted arithmetic mean) or ``"product"`` (the product of the
            probabilities, each raised to its weight, renormalised per pixel).
        weights: One weight per map (default: all 1): mixing weights for ``"mean"`` (scaled to
            sum to 1), exponents for ``"product"``.

    Returns:
        ``(H, W, C)`` float32 probabilities that sum to 1 per pixel.

    Raises:
        ValueError: Unknown method, no maps, mismatched shapes or weights.

    Example:
        >>> a = np.full((2, 2, 2), 0.5); b = np.stack([np.ones((2, 2)), np.zeros((2, 2))], -1)
        >>> combine_probabilities([a, b], "mean")[0, 0].tolist()
        [0.75, 0.25]
    """
    if method not in ENSEMBLE_METHODS:
        raise ValueError(f"ensemble method must be one of {ENSEMBLE_METHODS}, got {method!r}")
    if not maps:
        raise ValueError("combine_probabilities needs at least one probability map")
    arrays = [np.asarray(m, np.float32) for m in maps]
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError(f"probability maps differ in shape: {[a.shape for a in arrays]} (the "
                         "models must predict the same classes at the image's size)")
    weights = np.ones(len(arrays)) if weights is None else np.asarray(weights, np.float64)
    if weights.shape != (len(arrays),) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"weights must be {len(arrays)} non-negative numbers, not all 0")
    if method == "mean":
        weights = weights / weights.sum()
        out = sum(float(w) * a for w, a in zip(weights, arrays))
    else:  # prod_i p_i ** w_i, renormalised (in log space)
        log = sum(float(w) * np.log(np.maximum(a, 1e-12)) for w, a in zip(weights, arrays))
        log -= log.max(-1, keepdims=True)
        out = np.exp(log)
    out = np.asarray(out, np.float32)
    return out / np.maximum(out.sum(-1, keepdims=True), 1e-12)


def predict_edeconvnet(
    deconvnet: Any,
    fcn: Any,
    image: np.ndarray,
    *,
    method: str = "mean",
    boxes: np.ndarray | None = None,
    proposals: dict | None = None,
    input_size: int = 224,
    batch_size: int = 8,
    aggregate: str = "max",
) -> np.ndarray:
    """EDeconvNet probabilities of one image: instance-wise DeconvNet combined with a
    whole-image FCN.

    Args:
        deconvnet: DeconvNet (predictor, Keras model or path), run instance-wise.
        fcn: FCN (predictor, Keras model or path), run on the whole image.
        image: RGB image ``(H, W, 3)`` uint8.
        method: ``"mean"`` or ``"product"`` (:func:`combine_probabilities`).
        boxes, proposals, input_size, batch_size, aggregate: As in
            :func:`~deconvnet_tf.inference.instance.predict_instances`.

    Returns:
        ``(H, W, C)`` float32 probabilities.
    """
    instance = predict_instances(deconvnet, image, boxes, input_size=input_size,
                                 batch_size=batch_size, aggregate=aggregate, proposals=proposals)
    whole = predict_image(fcn, image)
    return combine_probabilities([instance, whole], method)
