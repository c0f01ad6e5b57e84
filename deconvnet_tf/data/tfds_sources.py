"""TensorFlow Datasets sources: ``(image uint8 (H, W, 3), label uint8 (H, W))`` from TFDS.

Supported names (``TFDS_DATASETS``):

* ``oxford_iiit_pet``: the trimap becomes classes background (0), cat (1), dog (2) from the
  species label; the trimap's border pixels are ignored (255).
* ``cityscapes/semantic_segmentation``: built by TFDS from the official zips in a manual dir;
  ``labelIds`` become the 19 ``trainIds`` (others 255).
* ``camvid_segmentation`` and ``voc2012_segmentation``: this project's builders
  (:mod:`deconvnet_tf.data.tfds_builders`), built offline from a manual dir.

Nothing downloads unless ``download=True``; a dataset that is not prepared and cannot be built
from a manual dir fails with an error that says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deconvnet_tf.data.base import DatasetError, DatasetInfo, Source
from deconvnet_tf.data.voc import VOC_CLASSES

__all__ = ["TFDS_DATASETS", "CITYSCAPES_CLASSES", "TFDSSource",
           "cityscapes_train_ids"]

CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
                      "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
                      "truck", "bus", "train", "motorcycle", "bicycle")
_CITYSCAPES_TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                        24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def cityscapes_train_ids() -> np.ndarray:
    """Lookup table ``labelId (0..255) -> trainId`` (255 for ignored ids)."""
    table = np.full(256, 255, np.uint8)
    for label_id, train_id in _CITYSCAPES_TRAIN_ID.items():
        table[label_id] = train_id
    return table


@dataclass(frozen=True)
class _Spec:
    classes: tuple[str, ...]
    ignore_label: int
    image_key: str
    label_key: str
    convert: str  # "pet" | "cityscapes" | "identity"
    ours: bool = False


def _specs() -> dict[str, _Spec]:
    camvid = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
              "Pedestrian", "Bicyclist")
    return {
        "oxford_iiit_pet": _Spec(("background", "cat", "dog"), 255, "image", "segmentation_mask", "pet"),
        "cityscapes/semantic_segmentation": _Spec(CITYSCAPES_CLASSES, 255, "image_left",
                                                  "segmentation_label", "cityscapes"),
        "camvid_segmentation": _Spec(camvid, 11, "image", "segmentation_mask", "identity", True),
        "voc2012_segmentation": _Spec(VOC_CLASSES, 255, "image", "segmentation_mask", "identity", True),
    }


TFDS_DATASETS = ("oxford_iiit_pet", "cityscapes/semantic_segmentation", "camvid_segmentation",
                 "voc2012_segmentation")


def _base_name(name: str) -> str:
    """``"oxford_iiit_pet:4.0.0"`` -> ``"oxford_iiit_pet"`` (config kept, version dropped)."""
    return name.split(":")[0]


class TFDSSource(Source):
    """A TensorFlow Datasets source (see the module docstring for the names).

    Args:
        name: TFDS name (optionally with ``:version``).
        data_dir: TFDS data directory (default: TFDS's).
        manual_dir: Manual directory for builders that build from local files.
        download: Let TFDS download and prepare missing data.

    Raises:
        DatasetError: unknown name, or data neither prepared nor buildable here.
    """

    def __init__(self, name: str, *, data_dir: str | None = None, manual_dir: str | None = None,
                 download: bool = False):
        specs = _specs()
        base = _base_name(name)
        if base not in specs:
            raise DatasetError(f"TFDS dataset {name!r} is not supported; supported: "
                               f"{', '.join(TFDS_DATASETS)}")
        self.spec = specs[base]
        self.name = f"tfds:{name}"
        self.tfds_name = name
        self.data_dir = data_dir
        self.manual_dir = manual_dir
        self.download = download
        self.info = DatasetInfo(Path(data_dir or "~/tensorflow_datasets").expanduser(),
                                self.spec.classes, self.spec.ignore_label)
        self._builder = None

    # ----------------------------------------------------------------------------------
    def builder(self):
        """The TFDS builder, prepared (built from ``manual_dir`` when one is given)."""
        if self._builder is not None:
            return self._builder
        import tensorflow_datasets as tfds

        if self.spec.ours:
            # optional: tensorflow_datasets (importing the module registers the builders)
            from deconvnet_tf.data import tfds_builders  # noqa: F401
        builder = tfds.builder(self.tfds_name, data_dir=self.data_dir)
        if self.manual_dir is not None or self.download:
            if self.manual_dir is not None and not Path(self.manual_dir).is_dir():
                raise DatasetError(f"TFDS manual dir {self.manual_dir!r} is not a directory")
            config = tfds.download.DownloadConfig(manual_dir=self.manual_dir)
            builder.download_and_prepare(download_config=config)
        self._builder = builder
        return builder

    def _raw(self, split: str):
        builder = self.builder()
        try:
            return builder.as_dataset(split=split, shuffle_files=False)
        except (AssertionError, ValueError, FileNotFoundError) as err:
            hint = ("pass its manual dir (tfds_manual_dir / --set tfds_manual_dir=DIR)"
                    if self.spec.ours or self.spec.convert == "cityscapes"
                    else "prepare it once with `tfds build oxford_iiit_pet` or set tfds_download=true")
            raise DatasetError(f"TFDS dataset {self.tfds_name!r} split {split!r} is not available "
                               f"in {self.data_dir or 'the default data dir'}: {hint} "
                               f"({err.__class__.__name__}: {str(err)[:200]})") from err

    def _convert(self, example):
        import tensorflow as tf

        image = example[self.spec.image_key]
        mask = example[self.spec.label_key]
        if mask.shape.rank == 3:
            mask = mask[..., 0]
        mask = tf.cast(mask, tf.int32)
        if self.spec.convert == "pet":
            species = tf.cast(example["species"], tf.int32)
            label = tf.where(mask == 1, species + 1, tf.where(mask == 2, 0, 255))
        elif self.spec.convert == "cityscapes":
            label = tf.gather(tf.constant(cityscapes_train_ids(), tf.int32), tf.clip_by_value(mask, 0, 255))
        else:
            label = mask
        label = tf.cast(label, tf.uint8)
        image = tf.cast(image, tf.uint8)
        tf.debugging.assert_equal(
            tf.shape(image)[:2], tf.shape(label),
            message=f"{self.name}: an example's image and label sizes differ")
        return tf.ensure_shape(image, (None, None, 3)), tf.ensure_shape(label, (None, None))

    # ----------------------------------------------------------------------------------
    def dataset(self, split):
        import tensorflow as tf

        return self._raw(split).map(self._convert, num_parallel_calls=tf.data.AUTOTUNE,
                                    deterministic=True)

    def num_examples(self, split):
        import tensorflow as tf

        n = int(self._raw(split).cardinality())
        if n >= 0:
            return n
        if n == int(tf.data.UNKNOWN_CARDINALITY):
            return sum(1 for _ in self._raw(split))
        raise DatasetError(f"{self.name}: split {split!r} is infinite")

    def numpy_examples(self, split, limit=None):
        ds = self.dataset(split)
        if limit is not None:
            ds = ds.take(limit)
        for image, label in ds.as_numpy_iterator():
            yield image, label
