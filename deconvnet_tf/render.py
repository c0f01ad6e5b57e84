"""Turning label maps into pictures: the class palette, colour PNGs and overlays.

NumPy and OpenCV only (no TensorFlow/Keras), so every entry point, the LiteRT runtime included,
can use it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["colorize", "make_palette", "overlay", "save_png", "save_prediction", "side_by_side"]


def make_palette(num_classes: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: ``(num_classes, 3)`` uint8 RGB, class 0 black.

    Args:
        num_classes: Number of colours to return (at most 256).
    """
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        c, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[index] = (r, g, b)
    return palette[:num_classes]


def colorize(label: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """Maps a ``(H, W)`` class-index map to an ``(H, W, 3)`` uint8 RGB image."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"colorize expects a (H, W) label map, got shape {label.shape}")
    palette = make_palette() if palette is None else np.asarray(palette, np.uint8)
    return palette[np.clip(label, 0, len(palette) - 1).astype(np.intp)]


def overlay(image: np.ndarray, label: np.ndarray, alpha: float = 0.5, palette=None) -> np.ndarray:
    """Blends the colourised ``label`` over an RGB ``image`` (background class 0 left clear)."""
    image = np.asarray(image, np.uint8)
    if image.shape[:2] != np.asarray(label).shape:
        raise ValueError(f"overlay: image {image.shape[:2]} and label {np.shape(label)} differ")
    colour = colorize(label, palette).astype(np.float32)
    mixed = (1 - alpha) * image.astype(np.float32) + alpha * colour
    out = np.where((np.asarray(label) > 0)[..., None], mixed, image.astype(np.float32))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def side_by_side(*images: np.ndarray, gap: int = 4) -> np.ndarray:
    """Concatenates RGB (or 2-D grey) images of equal height horizontally with white gaps."""
    rgb = [np.repeat(im[..., None], 3, -1) if im.ndim == 2 else im for im in images]
    height = rgb[0].shape[0]
    if any(im.shape[0] != height for im in rgb):
        raise ValueError("side_by_side: images must share their height")
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts = []
    for i, im in enumerate(rgb):
        parts += ([spacer] if i else []) + [im.astype(np.uint8)]
    return np.concatenate(parts, axis=1)


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Writes an RGB (H, W, 3) or single-channel (H, W) uint8/uint16 array as PNG, atomically."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.asarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array.astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"Could not encode an array of shape {array.shape} as PNG for {path}")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, path)
    return path


def save_prediction(
    output: str | os.PathLike,
    stem: str,
    image: np.ndarray,
    label: np.ndarray,
    probabilities: np.ndarray | None = None,
    palette: np.ndarray | None = None,
) -> dict[str, Path]:
    """Writes the per-image outputs shared by ``deconvnet-predict`` and ``deconvnet-lite-predict``.

    Files (all written atomically):

    * ``<output>/<stem>.png``: the class-index label map (8-bit, pixel = class id);
    * ``<output>/<stem>_color.png``: the label map in the class palette;
    * ``<output>/<stem>_overlay.png``: the palette blended over the photo;
    * ``<output>/<stem>_probs.npy``: class probabilities ``(H, W, C)`` as float16, when given.

    Args:
        output: Output folder (created).
        stem: File name stem of the input image.
        image: RGB photo ``(H, W, 3)`` uint8.
        label: Class-index map ``(H, W)``.
        probabilities: Optional ``(H, W, C)`` class probabilities.
        palette: ``(C, 3)`` uint8 RGB colours (default: :func:`make_palette`).

    Returns:
        The paths written, keyed ``label``, ``color``, ``overlay`` and (optionally) ``probs``.
    """
    output = Path(output)
    label = np.asarray(label)
    if label.ndim != 2 or label.shape != np.asarray(image).shape[:2]:
        raise ValueError(f"save_prediction({stem!r}): label {label.shape} must be (H, W) of the "
                         f"image {np.asarray(image).shape[:2]}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(f"save_prediction({stem!r}): class ids must be in [0, 255] for an 8-bit PNG")
    paths = {
        "label": save_png(output / f"{stem}.png", label.astype(np.uint8)),
        "color": save_png(output / f"{stem}_color.png", colorize(label, palette)),
        "overlay": save_png(output / f"{stem}_overlay.png", overlay(image, label, palette=palette)),
    }
    if probabilities is not None:
        probs = np.asarray(probabilities)
        if probs.shape[:2] != label.shape:
            raise ValueError(f"save_prediction({stem!r}): probabilities {probs.shape} do not match "
                             f"the label map {label.shape}")
        path = output / f"{stem}_probs.npy"
        tmp = path.with_name(f".{path.name}.tmp.npy")
        np.save(tmp, probs.astype(np.float16))
        os.replace(tmp, path)
        paths["probs"] = path
    return paths
