"""One interface over the data sources: folder layout, PASCAL VOC (+SBD) and TensorFlow Datasets.

Every source gives, per split, a ``tf.data.Dataset`` of ``(image uint8 (H, W, 3), label uint8
(H, W))``, NumPy examples (for evaluation at native resolution), a validation pass with class
statistics (for median-frequency weights) and, for file-based sources, :class:`Record` lists
with instance masks (for the paper's stage-1/stage-2 object crops).

The primitives (``Record``, ``Source``, ``load_record``, split selectors...) live in
:mod:`deconvnet_tf.data.base` and are re-exported here; this module only opens sources, so that
the folder, VOC and TFDS modules import ``base`` and nothing imports back.

Example:

>>> source = open_source("/data/camvid_360x480")          # folder layout
>>> source = open_source("/data/VOCdevkit", sbd_root="/data/benchmark_RELEASE")
>>> source = open_source(tfds="oxford_iiit_pet")
>>> ds = source.dataset("train")
"""

from __future__ import annotations

import os
from pathlib import Path

from deconvnet_tf.data.base import (  # re-exported: the primitives live in data.base
    DatasetError,
    DatasetInfo,
    Record,
    RecordSource,
    Source,
    label_statistics,
    load_record,
    parse_split,
    records_dataset,
    select_records,
    split_union,
    validate_records,
)
from deconvnet_tf.data import voc
from deconvnet_tf.data.folder import list_examples, read_meta
from deconvnet_tf.data.tfds_sources import TFDSSource

__all__ = ["DatasetError", "DatasetInfo", "Record", "RecordSource", "Source", "label_statistics",
           "load_record", "open_source", "parse_split", "records_dataset", "select_records",
           "split_union", "validate_records"]


def _folder_records(root: Path, split: str) -> list[Record]:
    records = []
    for image, label in list_examples(root, split):
        # the instances of stem "a/b" are instances/a/b.png (not instances/b.png)
        stem = label.relative_to(root / split / "labels").with_suffix("")
        inst = next((p for p in (root / split / "instances" / f"{stem}{suffix}"
                                 for suffix in (".png", ".PNG")) if p.is_file()), None)
        records.append(Record(image, label, "png", inst, "png16"))
    return records


def open_source(
    data: str | os.PathLike | None = None,
    *,
    tfds: str | None = None,
    sbd_root: str | os.PathLike | None = None,
    tfds_data_dir: str | None = None,
    manual_dir: str | None = None,
    download: bool = False,
) -> Source:
    """Opens a data source.

    Args:
        data: A folder-layout root (with ``meta.json``) or a PASCAL VOC root (``VOCdevkit``,
            ``VOC2012``); mutually exclusive with ``tfds``.
        tfds: A TensorFlow Datasets name (see :mod:`deconvnet_tf.data.tfds_sources`).
        sbd_root: SBD folder for VOC's ``train_aug`` split.
        tfds_data_dir: TFDS data directory.
        manual_dir: TFDS manual directory (Cityscapes, CamVid, VOC builders).
        download: Allow TFDS to download (off by default: nothing downloads at run time).

    Raises:
        DatasetError: neither or both of ``data``/``tfds``, or an unrecognised folder.
    """
    if (data is None) == (tfds is None):
        raise DatasetError("give exactly one of a dataset folder (data) or a TFDS name (tfds)")
    if tfds is not None:
        return TFDSSource(tfds, data_dir=tfds_data_dir, manual_dir=manual_dir, download=download)
    root = Path(data)
    if not root.is_dir():
        raise DatasetError(f"Dataset root {str(root)!r} is not a directory")
    voc_root = voc.find_voc_root(root)
    if voc_root is not None and not (root / "meta.json").is_file():
        return RecordSource(voc.voc_info(voc_root),
                            lambda split: voc.voc_records(voc_root, split, sbd_root=sbd_root),
                            f"VOC {voc_root}")
    info = read_meta(root)
    return RecordSource(info, lambda split: _folder_records(root, split), str(root))
