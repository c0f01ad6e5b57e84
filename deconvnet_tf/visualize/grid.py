"""Drawing projections: display normalisation and Figure-2-style grids (NumPy + OpenCV only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["CONTRASTS", "projection_to_image", "square_tile", "top_k_grid"]

_GREY = 128


CONTRASTS = ("symmetric", "per_sign")


def projection_to_image(projection: np.ndarray, scale: float | None = None, *,
                        contrast: str = "symmetric") -> np.ndarray:
    """Contrast-normalises one signed projection for display, as in Zeiler & Fergus' figures:
    each projection is scaled on its own to the full 0..255 range, with zero at mid-grey (128).

    Args:
        projection: ``(H, W, C)`` or ``(H, W)`` float array (e.g. a crop of :func:`project`'s
            output). One or three channels; all channels share the scale.
        scale: The magnitude shown at full contrast; default: the largest ``|value|`` of this
            projection (so each projection uses the full range independently).
        contrast: ``"symmetric"`` (default): one scale for both signs, ``v -> 127.5 + 127.5 *
            v / scale`` rounded, so ``-scale -> 0``, ``0 -> 128``, ``+scale -> 255`` and the
            relative size of positive and negative parts is kept. ``"per_sign"``: positive
            values are scaled by the largest positive value (to 128..255) and negative ones by
            the largest negative magnitude (to 0..128), so both ends of the range are used
            whenever both signs occur (``scale`` is ignored).

    Returns:
        uint8 array of the same shape (all 128 when the projection is zero).
    """
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast must be one of {CONTRASTS}, got {contrast!r}")
    p = np.nan_to_num(np.asarray(projection, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if contrast == "per_sign":
        top, bottom = float(max(p.max(initial=0.0), 0.0)), float(max(-p.min(initial=0.0), 0.0))
        out = np.full(p.shape, 128.0, np.float32)
        if top > 0:
            out = np.where(p > 0, 128.0 + 127.0 * p / top, out)
        if bottom > 0:
            out = np.where(p < 0, 128.0 + 128.0 * p / bottom, out)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    scale = float(np.abs(p).max(initial=0.0)) if scale is None else float(scale)
    if scale <= 0 or not np.isfinite(scale):
        return np.full(p.shape, _GREY, np.uint8)
    # 127.5 + 127.5 * 0 = 127.5 rounds (half to even) to 128; tiny negatives go to 127.
    out = np.rint(127.5 + 127.5 * np.clip(p / scale, -1.0, 1.0))
    return np.clip(out, 0, 255).astype(np.uint8)


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image[..., :3].astype(np.uint8)


def square_tile(image: np.ndarray, size: int) -> np.ndarray:
    """Pads ``image`` to a square (grey, centred) and resizes it to ``size x size`` RGB uint8."""
    import cv2

    image = _rgb(image)
    h, w = image.shape[:2]
    side = max(h, w, 1)
    canvas = np.full((side, side, 3), _GREY, np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top:top + h, left:left + w] = image
    if side == size:
        return canvas
    interp = cv2.INTER_NEAREST if size > side else cv2.INTER_AREA
    return cv2.resize(canvas, (size, size), interpolation=interp)


def _label(text: str, width: int, height: int = 14) -> np.ndarray:
    import cv2

    strip = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(strip, text, (2, height - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1,
                cv2.LINE_AA)
    return strip


def top_k_grid(
    rows: Sequence,
    *,
    columns: int | None = None,
    tile: int | None = None,
    labels: bool = True,
    gap: int = 2,
    contrast: str = "symmetric",
) -> np.ndarray:
    """Draws top-k results like Zeiler & Fergus' Figure 2: each projection beside its patch.

    Args:
        rows: One entry per channel: an object with ``channel``, ``layer`` and ``items``
            (each item with ``projection`` (float crop) and ``patch`` (uint8 crop)), e.g. the
            :class:`~deconvnet_tf.visualize.topk.ChannelTopK` list from
            :func:`~deconvnet_tf.visualize.topk.top_k`.
        columns: Pairs per line. Default: ``ceil(sqrt(k))`` for one channel (3x3 for k=9), all
            k on one line when there are several channels.
        tile: Side of each square tile in pixels; default: the largest receptive field,
            clipped to 48..112.
        labels: Write ``layer ch N`` above each channel's block.
        gap: Pixels between a projection and its patch (pairs are ``3 * gap`` apart).
        contrast: How each projection is normalised (independently of the others): see
            :func:`projection_to_image`.

    Returns:
        The grid, RGB uint8 ``(H, W, 3)``.

    Raises:
        ValueError: No rows, or no items at all.
    """
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast must be one of {CONTRASTS}, got {contrast!r}")
    rows = list(rows)
    if not rows or not any(r.items for r in rows):
        raise ValueError("top_k_grid: nothing to draw (no channels or no items)")
    k = max(len(r.items) for r in rows)
    if columns is None:
        columns = int(np.ceil(np.sqrt(k))) if len(rows) == 1 else k
    columns = max(1, min(columns, k))
    if tile is None:
        biggest = max(max(it.patch.shape[:2]) for r in rows for it in r.items)
        tile = int(np.clip(biggest, 48, 112))
    pair_w = 2 * tile + gap
    width = columns * pair_w + (columns - 1) * 3 * gap
    blocks = []
    for row in rows:
        lines = []
        for start in range(0, max(len(row.items), 1), columns):
            pairs = []
            for j in range(columns):
                idx = start + j
                if idx < len(row.items):
                    it = row.items[idx]
                    proj = square_tile(projection_to_image(it.projection, contrast=contrast), tile)
                    patch = square_tile(it.patch, tile)
                    pair = np.concatenate(
                        [proj, np.full((tile, gap, 3), 255, np.uint8), patch], axis=1)
                else:
                    pair = np.full((tile, pair_w, 3), 255, np.uint8)
                if j:
                    pairs.append(np.full((tile, 3 * gap, 3), 255, np.uint8))
                pairs.append(pair)
            lines.append(np.concatenate(pairs, axis=1))
            lines.append(np.full((3 * gap, width, 3), 255, np.uint8))
        block = np.concatenate(lines, axis=0)
        if labels:
            text = f"{row.layer} ch {row.channel}"
            if getattr(row, "mean_activation", None) is not None:
                text += f"  (mean {row.mean_activation:.3g})"
            block = np.concatenate([_label(text, width), block], axis=0)
        blocks.append(block)
    grid = np.concatenate(blocks, axis=0)
    border = 4
    return np.pad(grid, ((border, border), (border, border), (0, 0)), constant_values=255)
