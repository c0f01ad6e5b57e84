"""A few validation predictions as TensorBoard images, at each validation.

:class:`PredictionImages` is a Keras callback: after every epoch that ran validation (its logs
hold ``val_*`` values) it predicts a fixed handful of validation images at their native size
and writes one picture per image, ``image | ground truth | prediction`` with column titles and
the labels in the dataset's palette (void pixels white), as an image summary
(``tf.summary.image``) into its own log folder. TensorBoard shows them under the *Images* tab
with a step slider (step = the 0-based epoch, as Keras' TensorBoard callback counts it, so
the pictures line up with the ``epoch_*`` scalars).

It needs TensorFlow (``tf.summary``); on another Keras backend (JAX) it does nothing after one
log line.

    callback = PredictionImages.from_source("runs/x/tensorboard/val_images", source, "val")
    model.fit(..., validation_data=val_ds, callbacks=[callback])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from deconvnet_tf.data.folder import list_examples, load_example, read_meta
from deconvnet_tf.evaluation.evaluate import predict_native
from deconvnet_tf.render import colorize, figure_grid, make_palette

__all__ = ["PredictionImages"]


def _shrink(image: np.ndarray, max_side: int, nearest: bool) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


class PredictionImages(keras.callbacks.Callback):
    """Logs ``image | ground truth | prediction`` for a few validation images to TensorBoard.

    Args:
        log_dir: Folder for the event file (created); e.g. ``<run>/tensorboard/val_images``
            next to the folders of Keras' TensorBoard callback.
        images: RGB images ``(H, W, 3)`` uint8 (sizes may differ), raw as the model takes them.
        labels: Their ground-truth class-index maps ``(H, W)``.
        class_names: Names of the classes (index order), for the colour key.
        palette: ``(C, 3)`` uint8 RGB class colours (default: the package's VOC palette).
        every: Log every N-th validated epoch.
        max_side: Pictures are shrunk so that each panel's longer side is at most this.
        tag: Name of the image summary.
        only_validation_epochs: Log only after epochs whose logs hold ``val_*`` values (the
            epochs that ran validation); ``False`` logs after every epoch.

    Raises:
        ValueError: No images, or images and labels that do not pair up.
    """

    def __init__(self, log_dir: str | os.PathLike, images: Sequence[np.ndarray],
                 labels: Sequence[np.ndarray], class_names: Sequence[str], *, palette=None,
                 every: int = 1, max_side: int = 256, tag: str = "val_predictions",
                 only_validation_epochs: bool = True):
        super().__init__()
        images, labels = [np.asarray(i, np.uint8) for i in images], [np.asarray(l) for l in labels]
        if not images or len(images) != len(labels):
            raise ValueError(f"PredictionImages: need as many labels as images (>= 1), got "
                             f"{len(images)} images and {len(labels)} labels")
        for image, label in zip(images, labels):
            if image.ndim != 3 or label.shape != image.shape[:2]:
                raise ValueError(f"PredictionImages: label {label.shape} does not match image "
                                 f"{image.shape}")
        self.log_dir = Path(log_dir)
        self.images, self.labels = images, labels
        self.class_names = [str(n) for n in class_names]
        self.palette = (make_palette(max(len(self.class_names), 1)) if palette is None
                        else np.asarray(palette, np.uint8))
        self.every = max(1, int(every))
        self.max_side = int(max_side)
        self.tag = tag
        self.only_validation_epochs = only_validation_epochs
        self._writer = None
        self._validated = 0
        self._disabled = keras.backend.backend() != "tensorflow"
        self._told = False

    @classmethod
    def from_source(cls, log_dir, source, split: str = "val", num_images: int = 3, **kwargs):
        """The first ``num_images`` examples of ``split`` of a data source
        (:mod:`deconvnet_tf.data.sources`: folder layout, VOC, TFDS), with its class names."""
        pairs = list(source.numpy_examples(split, limit=num_images))[:num_images]
        return cls(log_dir, [p[0] for p in pairs], [p[1] for p in pairs],
                   source.info.class_names, **kwargs)

    @classmethod
    def from_folder(cls, log_dir, root, split: str = "val", num_images: int = 3, **kwargs):
        """The first ``num_images`` examples of ``split`` of a dataset in the folder layout."""
        pairs = [load_example(*ex) for ex in list_examples(root, split)[:num_images]]
        return cls(log_dir, [p[0] for p in pairs], [p[1] for p in pairs],
                   read_meta(root).class_names, **kwargs)

    # ------------------------------------------------------------------ drawing
    def pictures(self) -> list[np.ndarray]:
        """One uint8 RGB picture per image: titles over ``image | ground truth | prediction``
        and the colour key below (the current model's predictions)."""
        num_classes = len(self.class_names)
        out = []
        for image, label in zip(self.images, self.labels):
            pred = predict_native(self.model, image).argmax(-1)
            truth = colorize(label, self.palette)
            void = label >= num_classes
            truth[void] = 255
            panels = [_shrink(image, self.max_side, False), _shrink(truth, self.max_side, True),
                      _shrink(colorize(pred, self.palette), self.max_side, True)]
            out.append(figure_grid([panels], ["image", "ground truth", "prediction"],
                                   class_names=self.class_names,
                                   palette=self.palette[:num_classes],
                                   extra_legend=[("void", (255, 255, 255))] if void.any() else ()))
        return out

    # ------------------------------------------------------------------ callback
    def on_epoch_end(self, epoch, logs=None):
        if self._disabled:
            if not self._told:
                print(f"PredictionImages: skipped (TensorBoard images need the TensorFlow "
                      f"backend, not {keras.backend.backend()})")
                self._told = True
            return
        if self.only_validation_epochs and not any(str(k).startswith("val_") for k in (logs or {})):
            return
        self._validated += 1
        if (self._validated - 1) % self.every:
            return
        import tensorflow as tf

        pictures = self.pictures()
        height = max(p.shape[0] for p in pictures)
        width = max(p.shape[1] for p in pictures)
        batch = np.full((len(pictures), height, width, 3), 255, np.uint8)
        for i, p in enumerate(pictures):
            batch[i, : p.shape[0], : p.shape[1]] = p
        if self._writer is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._writer = tf.summary.create_file_writer(str(self.log_dir))
        with self._writer.as_default():
            tf.summary.image(self.tag, batch, step=int(epoch), max_outputs=len(pictures),
                             description="image | ground truth | prediction (validation)")
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
