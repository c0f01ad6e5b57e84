"""Statistics of a dataset split that models record (NumPy only)."""

from __future__ import annotations

import numpy as np

__all__ = ["color_statistics"]


def color_statistics(source, split: str, *, limit: int | None = None) -> dict[str, list[float]]:
    """Per-channel mean and standard deviation of a split's images, over all their pixels
    (each image weighted by its pixel count), on the 0..255 scale.

    The usual ``color_target`` of a :class:`~deconvnet_tf.Segmenter` (test-time colour
    normalisation, :func:`deconvnet_tf.io.normalize_colors`): the statistics of the frames the
    model was trained on.

    Args:
        source: An opened dataset (:func:`deconvnet_tf.data.sources.open_source`).
        split: Split name, with an optional selector (``"train[-0001TP]"``).
        limit: Only the first ``limit`` images.

    Returns:
        ``{"mean": [r, g, b], "std": [r, g, b]}`` (floats, rounded to 3 decimals).

    Raises:
        ValueError: The split has no images.

    Example:
        >>> color_statistics(open_source("/data/camvid_180x240"), "train")  # doctest: +SKIP
        {'mean': [106.0, 109.0, 110.4], 'std': [77.7, 78.5, 77.7]}
    """
    total = np.zeros(3)
    squares = np.zeros(3)
    count = 0
    for image, _ in source.numpy_examples(split, limit=limit):
        pixels = np.asarray(image, np.float64).reshape(-1, 3)
        total += pixels.sum(axis=0)
        squares += np.square(pixels).sum(axis=0)
        count += len(pixels)
    if not count:
        raise ValueError(f"color_statistics: the split {split!r} has no images")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - np.square(mean), 0.0))
    return {"mean": [round(float(v), 3) for v in mean], "std": [round(float(v), 3) for v in std]}
