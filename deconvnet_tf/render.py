"""Turning label maps into pictures: the class palette, colour PNGs and overlays, and the
per-image prediction files (names, checks before any work, atomic writing).

NumPy and OpenCV only (no TensorFlow/Keras), so every entry point, the LiteRT runtime included,
can use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from deconvnet_tf.io import (
    OutputError,
    check_pixels,
    list_images,
    mark_png,
    save_npy,
    write_bytes,
)

__all__ = ["PREDICTION_SUFFIXES", "TITLE_HEIGHT", "check_outputs", "colorize", "figure_grid",
           "legend", "make_palette", "overlay", "plan_predictions", "prediction_paths",
           "save_png", "save_prediction", "side_by_side", "text_strip", "title_row"]


def make_palette(num_classes: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: ``(num_classes, 3)`` uint8 RGB, class 0 black.

    Args:
        num_classes: Number of colours to return (at most 256).

    Raises:
        ValueError: ``num_classes`` is not an integer >= 0.
    """
    if isinstance(num_classes, (bool, np.bool_)) or not isinstance(
            num_classes, (int, np.integer)) or num_classes < 0:
        raise ValueError(f"make_palette: num_classes must be an integer >= 0, got "
                         f"{num_classes!r}")
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
    """Maps a ``(H, W)`` class-index map to an ``(H, W, 3)`` uint8 RGB image (ids below 0 take
    the first colour, ids past the palette its last).

    Raises:
        ValueError: ``label`` is not a ``(H, W)`` map of finite numbers, or ``palette`` is not
            ``(K, 3)`` colours, ``K >= 1``.
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"colorize expects a (H, W) label map, got shape {label.shape}")
    if label.dtype.kind not in "biuf" or (label.dtype.kind == "f"
                                          and not np.isfinite(label).all()):
        raise ValueError(f"colorize: label must hold finite class ids, got dtype {label.dtype}"
                         + (" with NaN or infinite values" if label.dtype.kind == "f" else ""))
    palette = make_palette() if palette is None else np.asarray(palette, np.uint8)
    if palette.ndim != 2 or palette.shape[1] != 3 or len(palette) < 1:
        raise ValueError(f"colorize: palette must be (K, 3) RGB colours, got shape "
                         f"{palette.shape}")
    return palette[np.clip(label, 0, len(palette) - 1).astype(np.intp)]


def overlay(image: np.ndarray, label: np.ndarray, alpha: float = 0.5, palette=None) -> np.ndarray:
    """Blends the colourised ``label`` over an RGB ``image`` (background class 0 left clear).

    Raises:
        ValueError: ``image`` is not ``(H, W, 3)`` pixel values 0..255
            (:func:`deconvnet_tf.io.check_pixels`; floats are rounded), ``label`` not of its
            size, or ``alpha`` not in ``[0, 1]``.
    """
    image = check_pixels(image, "overlay: image")
    if image.dtype != np.uint8:
        image = np.clip(np.round(image.astype(np.float32)), 0, 255).astype(np.uint8)
    label = np.asarray(label)
    if image.shape[:2] != label.shape:
        raise ValueError(f"overlay: image {image.shape[:2]} and label {np.shape(label)} differ")
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(
            alpha, (int, float, np.integer, np.floating)) or not 0 <= alpha <= 1:
        raise ValueError(f"overlay: alpha must be a number in [0, 1], got {alpha!r}")
    out = image.copy()
    rows = max(1, (1 << 20) // max(1, image.shape[1]))  # strips of ~1M pixels: bounded memory
    for top in range(0, image.shape[0], rows):
        part, lab = image[top:top + rows], label[top:top + rows]
        colour = colorize(lab, palette).astype(np.float32)
        mixed = (1 - alpha) * part.astype(np.float32) + alpha * colour
        mixed = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
        out[top:top + rows] = np.where((lab > 0)[..., None], mixed, part)
    return out


def side_by_side(*images: np.ndarray, gap: int = 4) -> np.ndarray:
    """Concatenates RGB (or 2-D grey) images of equal height horizontally with white gaps.

    Raises:
        ValueError: No image, an image neither ``(H, W)`` nor ``(H, W, 3)``, heights that
            differ, or ``gap`` not an integer >= 0.
    """
    if not images:
        raise ValueError("side_by_side: no images")
    if isinstance(gap, (bool, np.bool_)) or not isinstance(gap, (int, np.integer)) or gap < 0:
        raise ValueError(f"side_by_side: gap must be an integer >= 0, got {gap!r}")
    images = tuple(np.asarray(im) for im in images)
    for i, im in enumerate(images):
        if im.ndim not in (2, 3) or (im.ndim == 3 and im.shape[-1] != 3):
            raise ValueError(f"side_by_side: image {i} must be (H, W, 3) or (H, W), got shape "
                             f"{im.shape}")
    rgb = [np.repeat(im[..., None], 3, -1) if im.ndim == 2 else im for im in images]
    height = rgb[0].shape[0]
    if any(im.shape[0] != height for im in rgb):
        raise ValueError("side_by_side: images must share their height")
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts = []
    for i, im in enumerate(rgb):
        parts += ([spacer] if i else []) + [im.astype(np.uint8)]
    return np.concatenate(parts, axis=1)


#: Height in pixels of the column-title strip that :func:`figure_grid` puts above the rows.
TITLE_HEIGHT = 20
_FONT_SCALE, _MIN_FONT_SCALE = 0.45, 0.32


def _fit_text(text: str, width: int, scale: float = _FONT_SCALE) -> tuple[str, float, int]:
    """Shrinks (down to a minimum) and then shortens ``text`` until it fits ``width`` pixels.

    Returns ``(text, font scale, text width)``."""
    import cv2

    font = cv2.FONT_HERSHEY_SIMPLEX
    text = str(text)
    size = cv2.getTextSize(text, font, scale, 1)[0][0]
    while size > width and scale > _MIN_FONT_SCALE:
        scale = max(_MIN_FONT_SCALE, scale - 0.03)
        size = cv2.getTextSize(text, font, scale, 1)[0][0]
    while size > width and len(text) > 1:
        text = text[:-2] + "." if len(text) > 2 else text[:1]
        size = cv2.getTextSize(text, font, scale, 1)[0][0]
    return text, scale, size


def text_strip(text: str, width: int, height: int = TITLE_HEIGHT, *,
               align: str = "center") -> np.ndarray:
    """A white ``(height, width, 3)`` uint8 strip with ``text`` in black (OpenCV's Hershey font),
    shrunk and then shortened to fit.

    Args:
        text: The text (ASCII).
        width, height: Size of the strip in pixels.
        align: ``"center"`` or ``"left"``.
    """
    import cv2

    strip = np.full((max(1, height), max(1, width), 3), 255, np.uint8)
    if not text or width < 4:
        return strip
    text, scale, size = _fit_text(text, width - 2)
    x = max(1, (width - size) // 2) if align == "center" else 1
    baseline = (height + int(round(22 * scale))) // 2
    cv2.putText(strip, text, (x, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                cv2.LINE_AA)
    return strip


def title_row(titles, widths, *, gap: int = 4, height: int = TITLE_HEIGHT) -> np.ndarray:
    """Column titles over columns of ``widths`` pixels separated by ``gap`` (as
    :func:`side_by_side` lays them out): a white uint8 RGB strip."""
    titles, widths = list(titles), [int(w) for w in widths]
    if len(titles) != len(widths):
        raise ValueError(f"title_row: {len(titles)} titles for {len(widths)} columns")
    parts = []
    for i, (title, width) in enumerate(zip(titles, widths)):
        if i:
            parts.append(np.full((height, gap, 3), 255, np.uint8))
        parts.append(text_strip(title, width, height))
    return np.concatenate(parts, axis=1)


def legend(class_names, palette=None, width: int = 400, *, extra=(), swatch: int = 12,
           line_height: int = 18) -> np.ndarray:
    """A colour key: one swatch (in the palette, with a grey border) and name per class, laid
    out left to right and wrapped to ``width`` pixels.

    Args:
        class_names: Names in class-index order (class ``i`` gets ``palette[i]``).
        palette: ``(C, 3)`` uint8 RGB colours (default :func:`make_palette`).
        width: Width of the key in pixels.
        extra: Further ``(name, (r, g, b))`` entries, e.g. ``("void", (255, 255, 255))``.
        swatch: Side of a colour swatch in pixels.
        line_height: Pixels per line.

    Returns:
        uint8 RGB ``(lines * line_height + 4, width, 3)``, white background.
    """
    import cv2

    names = [str(n) for n in class_names]
    palette = make_palette(max(len(names), 1)) if palette is None else np.asarray(palette, np.uint8)
    if len(palette) < len(names):
        raise ValueError(f"legend: {len(names)} classes but only {len(palette)} colours")
    entries = [(n, tuple(int(v) for v in palette[i])) for i, n in enumerate(names)]
    entries += [(str(n), tuple(int(v) for v in c)) for n, c in extra]
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    width = max(int(width), swatch + 8)
    placed, x, line = [], 4, 0
    for name, colour in entries:
        text, _, text_w = _fit_text(name, width - swatch - 14, scale)
        need = swatch + 4 + text_w + 12
        if x > 4 and x + need > width:
            x, line = 4, line + 1
        placed.append((x, line, text, colour))
        x += need
    canvas = np.full(((line + 1) * line_height + 4, width, 3), 255, np.uint8)
    for x, line, text, colour in placed:
        top = 2 + line * line_height + (line_height - swatch) // 2
        cv2.rectangle(canvas, (x, top), (x + swatch - 1, top + swatch - 1), colour, -1)
        cv2.rectangle(canvas, (x, top), (x + swatch - 1, top + swatch - 1), (128, 128, 128), 1)
        cv2.putText(canvas, text, (x + swatch + 4, top + swatch - 2), font, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return canvas


def figure_grid(rows, titles=None, *, class_names=None, palette=None, extra_legend=(),
                gap: int = 4) -> np.ndarray:
    """A labelled figure: optional column titles, one row of images per example, and an
    optional class legend in the palette below.

    Args:
        rows: A list of rows, each a list of images (RGB uint8 or 2-D grey) of one height;
            every row has the same number of columns. Columns are as wide as their widest
            image (narrower ones are padded with white on the right).
        titles: One title per column (``None``: no title strip), e.g.
            ``["image", "ground truth", "prediction", "overlay"]``.
        class_names: Class names for the legend (``None``: no legend).
        palette: Colours of the classes (default :func:`make_palette`).
        extra_legend: Further legend entries ``(name, (r, g, b))``, e.g. the void colour.
        gap: White pixels between columns, between rows and around the title and legend.

    Returns:
        uint8 RGB ``(H, W, 3)``. Without titles and legend it equals the rows joined by
        :func:`side_by_side` and stacked with ``gap`` white rows between them; with titles
        everything moves down by :data:`TITLE_HEIGHT` pixels.
    """
    rows = [[np.asarray(im) for im in row] for row in rows]
    if not rows or not rows[0]:
        raise ValueError("figure_grid: nothing to draw")
    columns = len(rows[0])
    if any(len(r) != columns for r in rows):
        raise ValueError("figure_grid: every row needs the same number of columns")
    widths = [max(r[c].shape[1] for r in rows) for c in range(columns)]

    def pad(im, w):
        im = np.repeat(im[..., None], 3, -1) if im.ndim == 2 else im
        if im.shape[1] == w:
            return im.astype(np.uint8)
        out = np.full((im.shape[0], w, 3), 255, np.uint8)
        out[:, : im.shape[1]] = im
        return out

    lines = [side_by_side(*[pad(im, w) for im, w in zip(row, widths)], gap=gap) for row in rows]
    width = lines[0].shape[1]
    parts = []
    if titles is not None:
        parts.append(title_row(titles, widths, gap=gap))
    for n, line in enumerate(lines):
        if n:
            parts.append(np.full((gap, width, 3), 255, np.uint8))
        parts.append(line)
    if class_names is not None:
        parts.append(np.full((gap, width, 3), 255, np.uint8))
        parts.append(legend(class_names, palette, width, extra=extra_legend))
    return np.concatenate(parts, axis=0)


def save_png(path: str | os.PathLike, image: np.ndarray, *, overwrite: bool = True,
             mark: bool = False) -> Path:
    """Writes an RGB (H, W, 3) or single-channel (H, W) uint8/uint16 array as PNG, atomically.

    Args:
        path: Target file (its folder is created).
        image: The pixels.
        overwrite: Replace an existing file; ``False`` raises
            :class:`~deconvnet_tf.io.OutputError` naming it instead.
        mark: Tag the PNG as an output of this project (:func:`deconvnet_tf.io.mark_png`), so
            that folder inputs skip it when the output folder is read again.

    Raises:
        ValueError: ``image`` is empty or neither ``(H, W)`` nor ``(H, W, 3)``.
    """
    import cv2

    path = Path(path)
    array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3) or not array.size:
        raise ValueError(f"save_png({str(path)!r}): expected a non-empty (H, W, 3) or (H, W) "
                         f"image, got shape {array.shape}")
    if array.ndim == 3:  # 16-bit RGB stays 16-bit (a cast would wrap it)
        array = cv2.cvtColor(array if array.dtype in (np.uint8, np.uint16)
                             else array.astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"Could not encode an array of shape {array.shape} as PNG for {path}")
    data = data.tobytes()
    return write_bytes(path, mark_png(data) if mark else data, overwrite=overwrite)


#: File name suffixes of the per-image outputs (after the input's stem).
PREDICTION_SUFFIXES = {
    "label": "_labels.png",
    "color": "_color.png",
    "overlay": "_overlay.png",
    "probs": "_probs.npy",
}


def prediction_paths(output: str | os.PathLike, stem: str, *,
                     probabilities: bool = False) -> dict[str, Path]:
    """The files :func:`save_prediction` writes for ``stem``, keyed like its result."""
    keys = ["label", "color", "overlay"] + (["probs"] if probabilities else [])
    return {key: Path(output) / f"{stem}{PREDICTION_SUFFIXES[key]}" for key in keys}


def check_outputs(outputs: Iterable[str | os.PathLike], *,
                  inputs: Iterable[str | os.PathLike] = (), overwrite: bool = False) -> None:
    """Checks planned output files before any work.

    Raises:
        OutputError: An output would replace one of ``inputs`` (even with ``overwrite``), is a
            folder, or already exists and ``overwrite`` is false; the message names the file.
    """
    outputs = [Path(p) for p in outputs]
    by_path, by_inode = {}, {}
    for item in inputs:
        item = Path(item)
        by_path[item.resolve()] = item
        try:
            stat = item.stat()
        except OSError:
            continue
        by_inode[(stat.st_dev, stat.st_ino)] = item
    existing = []
    for out in outputs:
        source = by_path.get(out.resolve())
        if source is None and out.exists():
            stat = out.stat()
            source = by_inode.get((stat.st_dev, stat.st_ino))
        if source is not None:
            raise OutputError(f"output {str(out)!r} would replace the input {str(source)!r}; "
                              "write the outputs to another folder")
        if out.is_dir():
            raise OutputError(f"output {str(out)!r} is a folder; cannot write a file there")
        if os.path.lexists(out):
            existing.append(out)
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputError(f"output {str(existing[0])!r} already exists{more}; pass --overwrite "
                          "to replace the outputs of an earlier run")


def plan_predictions(
    inputs,
    output: str | os.PathLike,
    *,
    probabilities: bool = False,
    overwrite: bool = False,
    other_inputs: Iterable[str | os.PathLike] = (),
) -> list[tuple[Path, dict[str, Path]]]:
    """Lists the input images and plans and checks their outputs, before any work.

    Args:
        inputs: Image files and/or folders (:func:`deconvnet_tf.io.list_images`).
        output: Output folder.
        probabilities: ``<stem>_probs.npy`` will be written too.
        overwrite: Existing outputs may be replaced.
        other_inputs: Further input files that must not be replaced (e.g. probability files).

    Returns:
        ``(image path, {key: output path})`` per image, in input order.

    Raises:
        FileNotFoundError, ValueError: Missing inputs, a folder without images, two inputs
            with the same stem (their outputs would collide).
        deconvnet_tf.io.OutputError: See :func:`check_outputs`.
    """
    paths = list_images(inputs)
    stems: dict[str, Path] = {}
    for path in paths:
        if path.stem in stems:
            raise ValueError(f"Two inputs share the stem {path.stem!r} ({str(stems[path.stem])!r}"
                             f" and {str(path)!r}); their outputs would overwrite each other")
        stems[path.stem] = path
    planned = [(path, prediction_paths(output, path.stem, probabilities=probabilities))
               for path in paths]
    check_outputs([p for _, names in planned for p in names.values()],
                  inputs=[*paths, *other_inputs], overwrite=overwrite)
    return planned


def save_prediction(
    output: str | os.PathLike,
    stem: str,
    image: np.ndarray,
    label: np.ndarray,
    probabilities: np.ndarray | None = None,
    palette: np.ndarray | None = None,
    *,
    overwrite: bool = True,
) -> dict[str, Path]:
    """Writes the per-image outputs of ``deconvnet-predict``, ``deconvnet-lite-predict`` and
    ``deconvnet-crf``.

    Files (each written atomically through a unique temporary file; the PNGs are tagged as
    outputs of this project, so a folder input skips them):

    * ``<output>/<stem>_labels.png``: the class-index label map (8-bit, pixel = class id);
    * ``<output>/<stem>_color.png``: the label map in the class palette;
    * ``<output>/<stem>_overlay.png``: the palette blended over the photo;
    * ``<output>/<stem>_probs.npy``: class probabilities ``(H, W, C)`` as float16, when given.

    The suffixes keep outputs from colliding with an input ``<stem>.png`` in the same folder.

    Args:
        output: Output folder (created).
        stem: File name stem of the input image.
        image: RGB photo ``(H, W, 3)`` uint8.
        label: Class-index map ``(H, W)``.
        probabilities: Optional ``(H, W, C)`` class probabilities.
        palette: ``(C, 3)`` uint8 RGB colours (default: :func:`make_palette`).
        overwrite: Replace existing files; ``False`` raises
            :class:`~deconvnet_tf.io.OutputError` naming the first that exists.

    Returns:
        The paths written, keyed ``label``, ``color``, ``overlay`` and (optionally) ``probs``.
    """
    label = np.asarray(label)
    if label.ndim != 2 or label.shape != np.asarray(image).shape[:2]:
        raise ValueError(f"save_prediction({stem!r}): label {label.shape} must be (H, W) of the "
                         f"image {np.asarray(image).shape[:2]}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(f"save_prediction({stem!r}): class ids must be in [0, 255] for an 8-bit PNG")
    if probabilities is not None and np.shape(probabilities)[:2] != label.shape:
        raise ValueError(f"save_prediction({stem!r}): probabilities {np.shape(probabilities)} do "
                         f"not match the label map {label.shape}")
    names = prediction_paths(output, stem, probabilities=probabilities is not None)
    paths = {
        "label": save_png(names["label"], label.astype(np.uint8), overwrite=overwrite, mark=True),
        "color": save_png(names["color"], colorize(label, palette), overwrite=overwrite,
                          mark=True),
        "overlay": save_png(names["overlay"], overlay(image, label, palette=palette),
                            overwrite=overwrite, mark=True),
    }
    if probabilities is not None:
        paths["probs"] = save_npy(names["probs"], np.asarray(probabilities).astype(np.float16),
                                  overwrite=overwrite)
    return paths
