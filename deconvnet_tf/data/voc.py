"""PASCAL VOC 2012 segmentation (optionally with the SBD-augmented training lists).

VOC layout (``<root>`` is ``VOCdevkit/VOC2012`` or a folder holding it)::

    <root>/JPEGImages/<stem>.jpg
    <root>/SegmentationClass/<stem>.png      palette PNG, index = class, 255 = ignore (boundary)
    <root>/SegmentationObject/<stem>.png     palette PNG, index = instance id, 255 = boundary
    <root>/ImageSets/Segmentation/{train,val,trainval}.txt

SBD (Hariharan et al. 2011, ``benchmark_RELEASE``) adds ``<sbd>/dataset/{img,cls,inst}`` with
MATLAB label files and ``<sbd>/dataset/{train,val}.txt``. With ``sbd_root`` the split
``"train_aug"`` is the usual 10,582 images: SBD train + SBD val + VOC train, minus VOC val;
a VOC label is used when one exists, the SBD ``.mat`` otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

from deconvnet_tf.data.base import (
    DatasetError,
    DatasetInfo,
    Record,
    read_index_png,
    read_sbd_mat,
    records_dataset,
    validate_records,
)

__all__ = ["VOC_CLASSES", "VOC_IGNORE_LABEL", "find_voc_root", "is_voc_root", "voc_info",
           "voc_records", "read_index_png", "read_sbd_mat", "voc_dataset"]

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")
VOC_IGNORE_LABEL = 255


def is_voc_root(path: str | os.PathLike) -> bool:
    """Whether ``path`` has ``JPEGImages/`` and ``SegmentationClass/``."""
    path = Path(path)
    return (path / "JPEGImages").is_dir() and (path / "SegmentationClass").is_dir()


def find_voc_root(path: str | os.PathLike) -> Path | None:
    """``path`` itself, or ``path/VOC2012``, ``path/VOCdevkit/VOC2012`` when those are VOC roots."""
    path = Path(path)
    for candidate in (path, path / "VOC2012", path / "VOCdevkit" / "VOC2012"):
        if is_voc_root(candidate):
            return candidate
    return None


def voc_info(root: str | os.PathLike) -> DatasetInfo:
    """Class names and ignore label of VOC 2012 (21 classes, 255 ignored)."""
    return DatasetInfo(Path(root), VOC_CLASSES, VOC_IGNORE_LABEL)


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"Split file {str(path)!r} not found")
    stems = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not stems:
        raise DatasetError(f"Split file {str(path)!r} is empty")
    return stems


def voc_records(root: str | os.PathLike, split: str, *, sbd_root: str | os.PathLike | None = None):
    """The examples of a VOC split as :class:`deconvnet_tf.data.sources.Record` objects.

    Args:
        root: VOC root (see :func:`find_voc_root`).
        split: ``train``, ``val``, ``trainval`` (any file of ``ImageSets/Segmentation``), or
            ``train_aug`` (needs ``sbd_root``).
        sbd_root: SBD ``benchmark_RELEASE`` folder (or its ``dataset/`` folder).

    Raises:
        DatasetError: missing split file, image without label (naming the file), empty split.
    """

    found = find_voc_root(root)
    if found is None:
        raise DatasetError(f"{str(root)!r} is not a PASCAL VOC root (needs JPEGImages/ and "
                           "SegmentationClass/)")
    root = found
    lists = root / "ImageSets" / "Segmentation"
    sbd = None
    if sbd_root is not None:
        sbd = Path(sbd_root)
        sbd = sbd / "dataset" if (sbd / "dataset").is_dir() else sbd
        if not (sbd / "cls").is_dir():
            raise DatasetError(f"SBD folder {str(sbd)!r} has no cls/ folder of .mat labels")
    if split == "train_aug":
        if sbd is None:
            raise DatasetError("split 'train_aug' needs the SBD folder (sbd_root)")
        val = set(_read_list(lists / "val.txt"))
        stems = []
        for name in (sbd / "train.txt", sbd / "val.txt", lists / "train.txt"):
            stems += [s for s in _read_list(name) if s not in val]
        stems = list(dict.fromkeys(stems))
    else:
        stems = _read_list(lists / f"{split}.txt")
    records = []
    for stem in stems:
        image = root / "JPEGImages" / f"{stem}.jpg"
        if not image.is_file() and sbd is not None and (sbd / "img" / f"{stem}.jpg").is_file():
            image = sbd / "img" / f"{stem}.jpg"
        label = root / "SegmentationClass" / f"{stem}.png"
        objects = root / "SegmentationObject" / f"{stem}.png"
        if label.is_file():
            records.append(Record(image, label, "index_png",
                                  objects if objects.is_file() else None, "index_png"))
        elif sbd is not None and (sbd / "cls" / f"{stem}.mat").is_file():
            inst = sbd / "inst" / f"{stem}.mat"
            records.append(Record(image, sbd / "cls" / f"{stem}.mat", "sbd_mat",
                                  inst if inst.is_file() else None, "sbd_mat"))
        else:
            raise DatasetError(f"Image {str(image)!r} (split '{split}') has no label: "
                               f"{str(label)!r} is missing")
        if not image.is_file():
            raise DatasetError(f"No image for '{stem}': {str(image)!r} is missing")
    return records


def voc_dataset(root: str | os.PathLike, split: str, *, sbd_root=None, validate: bool = True):
    """A ``tf.data.Dataset`` of ``(image uint8 (H, W, 3), label uint8 (H, W))`` for a VOC split.

    Example:

    >>> ds = voc_dataset("VOCdevkit/VOC2012", "val")
    """

    records = voc_records(root, split, sbd_root=sbd_root)
    if validate:
        validate_records(records, voc_info(root))
    return records_dataset(records)
