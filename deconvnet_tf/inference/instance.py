"""Instance-wise inference (Noh et al. 2015, Sec. 4.2): segment object proposals one by one and
aggregate their score maps into the image.

For each proposal box ``[x0, y0, x1, y1]`` (whole pixels; may extend past the image):

1. crop the box out of the image, padding outside the image with the model's mean colour (zero
   after its preprocessing, i.e. the paper's zero padding) and warp (bilinear resize) the crop
   to the model's input size (224 in the paper);
2. run the crops through the model in batches;
3. resize each crop's class scores back to the box's size and place them on the box;
4. aggregate overlapping boxes pixel-wise by maximum (the paper) or mean, and turn the result
   into probabilities (softmax of aggregated logits; renormalised aggregated probabilities for
   models that output probabilities).

Pixels that no box covers take the probabilities of a whole-image pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deconvnet_tf.inference.predict import (
    _resize_scores,
    as_predictor,
    check_image,
    predict_image,
)
from deconvnet_tf.inference.proposals import propose_boxes
from deconvnet_tf.inference.timing import stage
from deconvnet_tf.io import normalize_colors

__all__ = ["aggregate_boxes", "crop_box", "predict_instances", "paste_region"]


def _int_box(box) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(round(float(v))) for v in np.asarray(box).reshape(4))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"Empty box {list(np.asarray(box).reshape(4))}: need x1 > x0 and y1 > y0")
    return x0, y0, x1, y1


def crop_box(
    image: np.ndarray, box, size: tuple[int, int], pad_rgb=(0.0, 0.0, 0.0)
) -> np.ndarray:
    """Crops ``box`` from ``image`` (padding outside it) and warps the crop to ``size``.

    Args:
        image: RGB image ``(H, W, 3)``.
        box: ``[x0, y0, x1, y1]`` (rounded to whole pixels; ``x1``, ``y1`` exclusive).
        size: ``(height, width)`` of the output.
        pad_rgb: Colour of the area outside the image.

    Returns:
        ``(height, width, 3)`` float32 crop.

    Example:
        >>> crop_box(np.zeros((10, 10, 3)), [-5, -5, 5, 5], (4, 4)).shape
        (4, 4, 3)
    """
    import cv2

    image = check_image(image)
    height, width = image.shape[:2]
    x0, y0, x1, y1 = _int_box(box)
    crop = np.empty((y1 - y0, x1 - x0, 3), np.float32)
    crop[...] = np.asarray(pad_rgb, np.float32)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if ix1 > ix0 and iy1 > iy0:
        crop[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = image[iy0:iy1, ix0:ix1]
    if crop.shape[:2] == tuple(size):
        return crop
    return cv2.resize(crop, (int(size[1]), int(size[0])), interpolation=cv2.INTER_LINEAR)


def paste_region(
    scores: np.ndarray, box, image_shape
) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """The part of a box's score map that lies inside the image, at image resolution.

    Args:
        scores: ``(h, w, C)`` scores of the warped crop.
        box: ``[x0, y0, x1, y1]`` the crop came from.
        image_shape: ``(H, W, ...)`` of the image.

    Returns:
        ``((row_slice, col_slice), values)`` with ``values`` of the slices' shape + ``(C,)``, or
        ``None`` when the box lies wholly outside the image.
    """
    height, width = image_shape[:2]
    x0, y0, x1, y1 = _int_box(box)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    full = _resize_scores(scores, y1 - y0, x1 - x0)
    values = full[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
    return (slice(iy0, iy1), slice(ix0, ix1)), values


def aggregate_boxes(
    score_maps, boxes, image_shape, aggregate: str = "max"
) -> tuple[np.ndarray, np.ndarray]:
    """Places each box's score map on the image and combines overlaps pixel-wise.

    Args:
        score_maps: ``K`` arrays ``(h, w, C)`` (or one ``(K, h, w, C)`` array).
        boxes: ``(K, 4)`` boxes the maps belong to.
        image_shape: ``(H, W, ...)``.
        aggregate: ``"max"`` (the paper) or ``"mean"`` (over the boxes covering a pixel).

    Returns:
        ``(scores (H, W, C) float32, covered (H, W) bool)``; uncovered pixels hold 0.

    Raises:
        ValueError: Unknown ``aggregate`` or mismatched counts.
    """
    if aggregate not in ("max", "mean"):
        raise ValueError(f"aggregate must be 'max' or 'mean', got {aggregate!r}")
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if len(score_maps) != len(boxes):
        raise ValueError(f"{len(score_maps)} score maps for {len(boxes)} boxes")
    height, width = image_shape[:2]
    channels = np.asarray(score_maps[0]).shape[-1] if len(boxes) else 1
    fill = -np.inf if aggregate == "max" else 0.0
    total = np.full((height, width, channels), fill, np.float32)
    count = np.zeros((height, width), np.int32)
    for scores, box in zip(score_maps, boxes):
        placed = paste_region(np.asarray(scores, np.float32), box, (height, width))
        if placed is None:
            continue
        region, values = placed
        if aggregate == "max":
            np.maximum(total[region], values, out=total[region])
        else:
            total[region] += values
        count[region] += 1
    covered = count > 0
    if aggregate == "mean":
        total[covered] /= count[covered][:, None]
    total[~covered] = 0.0
    return total, covered


def _crop_scores(predictor, image, boxes, size, batch_size, timings) -> list[np.ndarray]:
    """The network's scores of every box's crop, ``batch_size`` crops per call. The crops
    come from the image the network sees: the predictor's colour normalisation of the whole
    image, as in whole-image mode (the proposals come from the image as it is)."""
    if predictor.color_target is not None:
        image = normalize_colors(image, predictor.color_target)
    score_maps = []
    for start in range(0, len(boxes), batch_size):
        with stage(timings, "crops"):
            crops = np.stack([crop_box(image, box, size, predictor.pad_rgb)
                              for box in boxes[start:start + batch_size]])
        with stage(timings, "network"):
            score_maps += list(predictor.scores(crops))
    return score_maps


def _crop_predictor(model, input_size, jit_compile):
    """The predictor of ``predict_instances`` (XLA chosen as documented there) and the crop
    size ``(height, width)`` it takes."""
    predictor = as_predictor(model)
    if jit_compile is not None:
        predictor = predictor.with_jit_compile(jit_compile)
    elif predictor.jit_compile is None and predictor.supports_jit:
        predictor = predictor.with_jit_compile(True)
    size = (int(input_size), int(input_size)) if np.isscalar(input_size) else tuple(
        int(v) for v in input_size)
    if predictor.input_size is not None:
        size = tuple(predictor.input_size)
    if min(size) < predictor.min_input_size:
        raise ValueError(f"input_size {size} is below the model's minimum input size "
                         f"{predictor.min_input_size}")
    return predictor, size


def predict_instances(
    model: Any,
    image: np.ndarray,
    boxes: np.ndarray | None = None,
    *,
    input_size: int | tuple[int, int] = 224,
    batch_size: int = 8,
    aggregate: str = "max",
    whole: np.ndarray | None = None,
    proposals: dict | None = None,
    return_coverage: bool = False,
    timings: dict | None = None,
    jit_compile: bool | None = None,
):
    """Instance-wise class probabilities of one image (see the module docstring).

    Args:
        model: A :class:`~deconvnet_tf.inference.predict.Predictor`, Keras model or model path.
        image: RGB image ``(H, W, 3)`` uint8.
        boxes: ``(K, 4)`` proposals; ``None`` computes them with
            :func:`~deconvnet_tf.inference.proposals.propose_boxes` (``proposals`` = its keyword
            arguments, e.g. ``{"top_k": 50, "edge": "hed"}``).
        input_size: Size every crop is warped to (int or ``(height, width)``); at least the
            model's minimum input size. A model with a fixed input size uses that size.
        batch_size: Crops per model call.
        aggregate: ``"max"`` or ``"mean"`` (:func:`aggregate_boxes`).
        whole: Whole-image probabilities ``(H, W, C)`` for pixels no box covers (computed with
            :func:`~deconvnet_tf.inference.predict.predict_image` when needed and not given).
        proposals: Keyword arguments of ``propose_boxes`` when ``boxes`` is ``None``.
        return_coverage: Also return the ``(H, W)`` bool map of pixels some box covers.
        timings: A dict that gets the seconds of each stage added (``edges``, ``proposals``,
            ``crops``, ``network``, ``paste``, ``whole``: :mod:`deconvnet_tf.inference.timing`);
            ``None`` measures nothing.
        jit_compile: Run a Keras network's crops XLA-compiled (TensorFlow; one compile per
            crop batch shape and process, shared by later calls). ``None`` (default): the
            predictor's own choice if it made one, else on when the network can be compiled
            (every crop has one size: one compile serves all of them; measured, the first image
            takes as long as uncompiled and later ones ~20% less in the network stage;
            :class:`~deconvnet_tf.inference.predict.KerasForward`).

    Returns:
        ``(H, W, C)`` float32 probabilities (and the coverage map if asked).

    Raises:
        ValueError: Bad sizes or arguments.

    Example:
        >>> probs = predict_instances(model, image,                     # doctest: +SKIP
        ...                           proposals={"edge": "gradient"})
    """
    predictor, size = _crop_predictor(model, input_size, jit_compile)
    image = check_image(image)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if boxes is None:
        boxes = propose_boxes(np.clip(image, 0, 255).astype(np.uint8),
                              **dict(proposals or {}, timings=timings))
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)

    score_maps = _crop_scores(predictor, image, boxes, size, batch_size, timings)
    with stage(timings, "paste"):
        if score_maps:
            scores, covered = aggregate_boxes(score_maps, boxes, image.shape, aggregate)
            probabilities = predictor.to_probabilities(scores)
        else:
            covered = np.zeros(image.shape[:2], bool)
            probabilities = None
    if not covered.all():
        if whole is None:
            with stage(timings, "whole"):
                whole = predict_image(predictor, image)
        whole = np.asarray(whole, np.float32)
        if whole.shape[:2] != image.shape[:2]:
            raise ValueError(f"whole-image probabilities {whole.shape} do not match the image "
                             f"{image.shape[:2]}")
        if probabilities is None:
            probabilities = whole.copy()
        else:
            probabilities[~covered] = whole[~covered]
    return (probabilities, covered) if return_coverage else probabilities
