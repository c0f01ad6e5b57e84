"""Datasets in the folder layout of this project (and of the CamVid / Weizmann Horse copies):

    <root>/<split>/images/<stem>.(jpg|png)   RGB photograph
    <root>/<split>/labels/<stem>.png         8-bit greyscale (or palette), pixel = class index
    <root>/<split>.txt                       stems of the split, one per line (UTF-8)
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

#: Image suffixes in the order they are looked for (the first file found is the image).
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")
_LABEL_SUFFIXES = (".png", ".PNG")


def _read_text(path: Path, what: str) -> str:
    """A text file as UTF-8 (a byte-order mark is dropped); an error naming it otherwise."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DatasetError(f"{what} {str(path)!r} is not UTF-8 text (byte {err.start}); "
                           "save it as UTF-8") from None


def read_meta(root: str | os.PathLike) -> DatasetInfo:
    """Reads ``<root>/meta.json`` (keys ``classes`` and ``void_label`` or ``ignore_label``).

    Raises:
        DatasetError: naming the file: no such file, not UTF-8 JSON, not an object, class
            names that are not a list of distinct strings, a ``num_classes`` other than their
            number, or an ignore label that is not an integer in ``0..255`` outside the
            classes' range ``[0, num_classes)``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Dataset root {str(root)!r} is not a directory")
    path = root / "meta.json"
    if not path.is_file():
        raise DatasetError(f"{str(path)!r} is missing: a dataset root needs a meta.json with "
                           "'classes' (list of names) and optionally 'void_label'")
    try:
        meta = json.loads(_read_text(path, "Dataset metadata"))
    except json.JSONDecodeError as err:
        raise DatasetError(f"{str(path)!r} is not valid JSON: {err}") from err
    if not isinstance(meta, dict):
        raise DatasetError(f"{str(path)!r}: expected a JSON object with 'classes', got "
                           f"{type(meta).__name__}")
    classes = _meta_classes(meta, path)
    return DatasetInfo(root, classes, _meta_ignore(meta, path, len(classes)))


def _meta_classes(meta: dict, path: Path) -> tuple[str, ...]:
    """``classes`` of a meta.json, checked (and its ``num_classes``, if given)."""
    classes = meta.get("classes")
    if not isinstance(classes, list) or not classes:
        raise DatasetError(f"{str(path)!r}: 'classes' must be a non-empty list of class names")
    bad = [c for c in classes if not isinstance(c, str)]
    if bad:
        raise DatasetError(f"{str(path)!r}: 'classes' must be a list of class names (strings), "
                           f"found {bad[0]!r}")
    twice = sorted({c for c in classes if classes.count(c) > 1})
    if twice:
        raise DatasetError(f"{str(path)!r}: 'classes' names {twice[:5]} more than once")
    count = meta.get("num_classes", len(classes))
    if count != len(classes) or isinstance(count, bool):
        raise DatasetError(f"{str(path)!r}: 'num_classes' is {count!r} but 'classes' names "
                           f"{len(classes)}")
    return tuple(classes)


def _meta_ignore(meta: dict, path: Path, num_classes: int) -> int | None:
    """The ignore label of a meta.json (``ignore_label`` or ``void_label``), checked."""
    given = {k: meta[k] for k in ("ignore_label", "void_label") if meta.get(k) is not None}
    if len(given) == 2 and given["ignore_label"] != given["void_label"]:
        raise DatasetError(f"{str(path)!r}: 'ignore_label' {given['ignore_label']!r} and "
                           f"'void_label' {given['void_label']!r} disagree; give one")
    if not given:
        return None
    key, value = next(iter(given.items()))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255:
        raise DatasetError(f"{str(path)!r}: '{key}' must be an integer in 0..255 (labels are "
                           f"8-bit), got {value!r}")
    if value < num_classes:
        raise DatasetError(f"{str(path)!r}: '{key}' {value} is one of the {num_classes} classes "
                           f"[0, {num_classes}); the ignore label must lie outside them (e.g. "
                           f"{num_classes} or 255; a void class is not listed in 'classes')")
    return value


def _first_file(folder: Path, stem: str, suffixes) -> Path | None:
    return next((folder / f"{stem}{s}" for s in suffixes if (folder / f"{stem}{s}").is_file()),
                None)


def _read_stems(split_file: Path, split: str) -> list[str]:
    """The stems of a split file: one per line, blank lines skipped; each once."""
    stems, lines = [], {}
    text = _read_text(split_file, "Split file")
    for number, line in enumerate(text.splitlines(), 1):
        stem = line.strip()
        if not stem:
            continue
        if Path(stem).is_absolute():
            raise DatasetError(f"Split file {str(split_file)!r}, line {number}: {stem!r} is an "
                               f"absolute path; expected a stem (file name without extension, "
                               f"relative to '{split}/images')")
        if stem in lines:
            raise DatasetError(f"Split file {str(split_file)!r} lists {stem!r} twice (lines "
                               f"{lines[stem]} and {number}): each example once, or it is "
                               "trained and scored twice")
        lines[stem] = number
        stems.append(stem)
    if not stems:
        raise DatasetError(f"Split file {str(split_file)!r} is empty: no examples in '{split}'")
    return stems


def list_examples(root: str | os.PathLike, split: str) -> list[tuple[Path, Path]]:
    """Returns ``(image_path, label_path)`` for every stem of ``<root>/<split>.txt``.

    Images are ``<stem>.jpg``, ``.jpeg`` or ``.png`` (the first found; upper-case suffixes
    too), labels ``<stem>.png`` (or ``.PNG``).
    """
    root = Path(root)
    split_file = root / f"{split}.txt"
    if not split_file.is_file():
        raise DatasetError(f"Split file {str(split_file)!r} not found (splits: "
                           f"{sorted(p.stem for p in root.glob('*.txt'))})")
    examples = []
    for stem in _read_stems(split_file, split):
        image = _first_file(root / split / "images", stem, _IMAGE_SUFFIXES)
        if image is None:
            hint = ("; list stems without the extension"
                    if stem.lower().endswith(_IMAGE_SUFFIXES[:3]) else "")
            raise DatasetError(f"No image for '{stem}' (listed in {str(split_file)!r}) in "
                               f"{str(root / split / 'images')!r} (.jpg, .jpeg or .png){hint}")
        label = _first_file(root / split / "labels", stem, _LABEL_SUFFIXES)
        if label is None:
            label = root / split / "labels" / f"{stem}.png"
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
