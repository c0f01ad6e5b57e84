"""Datasets in the folder layout of this project (and of the CamVid / Weizmann Horse copies):

    <root>/<split>/images/<stem>.(jpg|png)   RGB photograph
    <root>/<split>/labels/<stem>.png         8-bit, pixel = class index
    <root>/<split>.txt                       stems of the split, one per line
    <root>/meta.json                         {"classes": [...], "void_label" | "ignore_label": int}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from deconvnet_tf.data.base import (DatasetError, DatasetInfo, Record, load_record, records_dataset,
                                     validate_records)

__all__ = ["DatasetError", "DatasetInfo", "folder_dataset", "list_examples", "read_meta",
           "load_example", "validate_examples"]

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_meta(root: str | os.PathLike) -> DatasetInfo:
    """Reads ``<root>/meta.json`` (keys ``classes`` and ``void_label`` or ``ignore_label``)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Dataset root {str(root)!r} is not a directory")
    path = root / "meta.json"
    if not path.is_file():
        raise DatasetError(f"{str(path)!r} is missing: a dataset root needs a meta.json with "
                           "'classes' (list of names) and optionally 'void_label'")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DatasetError(f"{str(path)!r} is not valid JSON: {err}") from err
    classes = meta.get("classes")
    if not isinstance(classes, list) or not classes:
        raise DatasetError(f"{str(path)!r}: 'classes' must be a non-empty list of class names")
    ignore = meta.get("ignore_label", meta.get("void_label"))
    return DatasetInfo(root, tuple(str(c) for c in classes), None if ignore is None else int(ignore))


def list_examples(root: str | os.PathLike, split: str) -> list[tuple[Path, Path]]:
    """Returns ``(image_path, label_path)`` for every stem of ``<root>/<split>.txt``."""
    root = Path(root)
    split_file = root / f"{split}.txt"
    if not split_file.is_file():
        raise DatasetError(f"Split file {str(split_file)!r} not found (splits: "
                           f"{sorted(p.stem for p in root.glob('*.txt'))})")
    stems = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
    if not stems:
        raise DatasetError(f"Split file {str(split_file)!r} is empty: no examples in '{split}'")
    examples = []
    for stem in stems:
        image = next((root / split / "images" / f"{stem}{s}" for s in _IMAGE_SUFFIXES
                      if (root / split / "images" / f"{stem}{s}").is_file()), None)
        if image is None:
            raise DatasetError(f"No image for '{stem}' (listed in {str(split_file)!r}) in "
                               f"{str(root / split / 'images')!r} (.jpg or .png)")
        label = root / split / "labels" / f"{stem}.png"
        if not label.is_file():
            raise DatasetError(f"Image {str(image)!r} has no label: {str(label)!r} is missing")
        examples.append((image, label))
    return examples


def load_example(image_path: str | os.PathLike, label_path: str | os.PathLike):
    """Reads one example: ``(image uint8 RGB (H, W, 3), label uint8 (H, W))``.

    Both files are decoded fully (:func:`deconvnet_tf.io.read_image`), so a truncated or
    corrupt file is a :class:`DatasetError` naming it here, not a TensorFlow error later.
    The folder layout's entry to :func:`deconvnet_tf.data.base.load_record`.
    """
    return load_record(Record(Path(image_path), Path(label_path)))


def validate_examples(examples, info: DatasetInfo) -> tuple[np.ndarray, np.ndarray]:
    """Reads every example once, checks it, and returns class statistics
    (:func:`deconvnet_tf.data.base.validate_records` on the folder layout's pairs).

    Returns:
        ``(pixel_counts, image_pixels)`` per class: labelled pixels of the class, and total
        pixels of the images that contain it (what median-frequency balancing needs).

    Raises:
        DatasetError: unreadable files, size mismatch, or a label value outside
            ``[0, num_classes)`` that is not the ignore label (naming the file).
    """
    return validate_records(_records(examples), info)


def _records(examples) -> list[Record]:
    return [Record(Path(image), Path(label)) for image, label in examples]


def folder_dataset(root: str | os.PathLike, split: str, *, validate: bool = True):
    """A ``tf.data.Dataset`` of ``(image uint8 (H, W, 3), label uint8 (H, W))`` for a split
    (:func:`deconvnet_tf.data.base.records_dataset` on the folder layout's pairs).

    Args:
        root: Dataset root (see the module docstring for the layout).
        split: Split name (``<root>/<split>.txt``).
        validate: Read every example once first and fail with a clear error naming the file
            on bad input (recommended; ~2 ms an image).
    """
    info = read_meta(root)
    records = _records(list_examples(root, split))
    if validate:
        validate_records(records, info)
    return records_dataset(records)
