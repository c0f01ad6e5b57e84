"""Post-processing of class probabilities that uses what is known of the scenes: one object of
a class per image (every Weizmann Horse image shows one horse).

:func:`keep_largest_component` keeps, for each named class, only the largest 8-connected
region of the pixels labelled with it; the pixels of its other regions go to their next most
probable class. It runs after the dense CRF in :func:`deconvnet_tf.inference.pipeline.infer`
(``InferenceOptions.largest_component``) and, as a Segmenter's ``largest_component`` setting,
in ``deconvnet-predict`` (``--no-largest-component`` skips it). Measured on three Horse dev
folds in ``docs/results.md`` ("One horse per image"): +0.0 to +1.1 horse IoU after the CRF,
below the bar for a default, so ``horse_compact`` does not use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["check_component_classes", "keep_largest_component"]


def check_component_classes(classes, num_classes: int | None = None,
                            what: str = "largest_component") -> tuple[int, ...]:
    """``classes`` as a sorted tuple of distinct class indices.

    Raises:
        ValueError: Not a sequence of integers, a negative index, a repeated index, or (with
            ``num_classes``) an index outside ``0..num_classes-1``; the message names ``what``.
    """
    if classes is None:
        return ()
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence):
        raise ValueError(f"{what}: expected a list of class indices, got {classes!r}")
    out = []
    for value in classes:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{what}: expected class indices (integers), got {value!r}")
        if value < 0 or (num_classes is not None and value >= num_classes):
            bound = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
            raise ValueError(f"{what}: class index {int(value)} outside {bound}")
        out.append(int(value))
    if len(set(out)) != len(out):
        raise ValueError(f"{what}: repeated class index in {out}")
    return tuple(sorted(out))


def keep_largest_component(probabilities: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """For each class in ``classes``, only its largest connected region survives.

    The label map is the argmax of ``probabilities``; for each listed class, every
    8-connected region of its pixels except the largest (ties: the first in row-major order)
    has that class's probability set to zero and the pixel's probabilities renormalised, so
    those pixels take their next most probable class. Classes are processed in index order,
    each on the label map left by the previous ones.

    Args:
        probabilities: ``(H, W, C)`` class probabilities (finite, >= 0).
        classes: Class indices to reduce to one region (e.g. ``[1]``: the horse).

    Returns:
        ``(H, W, C)`` float32 probabilities (a copy; the input is not changed). With no classes
        or no pixel of a listed class, the same values.

    Raises:
        ValueError: Not ``(H, W, C)``, non-finite or negative values, or a class outside
            ``0..C-1``.

    Example:
        >>> p = np.zeros((1, 5, 2), np.float32); p[..., 0] = 1
        >>> p[0, [0, 1, 3], 1] = 2                      # two regions of class 1: sizes 2 and 1
        >>> keep_largest_component(p / p.sum(-1, keepdims=True), [1]).argmax(-1)
        array([[1, 1, 0, 0, 0]])
    """
    import cv2

    probs = np.array(probabilities, dtype=np.float32)
    if probs.ndim != 3 or probs.shape[-1] < 1 or probs.shape[0] < 1 or probs.shape[1] < 1:
        raise ValueError(f"keep_largest_component: expected (H, W, C) probabilities, got shape "
                         f"{probs.shape}")
    if not np.all(np.isfinite(probs)) or np.any(probs < 0):
        raise ValueError("keep_largest_component: probabilities must be finite and >= 0")
    classes = check_component_classes(
        classes.tolist() if isinstance(classes, np.ndarray) else classes, probs.shape[-1],
        "keep_largest_component: classes")
    for cls in classes:
        mask = probs.argmax(-1) == cls
        count, regions, stats, _ = cv2.connectedComponentsWithStats(
            mask.astype(np.uint8), connectivity=8)
        if count <= 2:  # no region, or one
            continue
        keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        drop = mask & (regions != keep)
        rest = probs[drop]
        rest[:, cls] = 0.0
        total = rest.sum(-1, keepdims=True)
        uniform = np.full_like(rest, 1.0 / (probs.shape[-1] - 1))  # C >= 2: there are 2 regions
        uniform[:, cls] = 0.0
        probs[drop] = np.where(total > 0, rest / np.maximum(total, 1e-30), uniform)
    return probs
