"""A ``keras.utils.PyDataset`` input pipeline over the folder layout: no TensorFlow needed.

The backend-portable twin of :func:`deconvnet_tf.data.pipeline.make_pipeline`: same arguments
where they mean the same thing, same batches (``images uint8 (B, h, w, 3)``, ``labels int32
(B, h, w)``), same augmentation (the spec :mod:`deconvnet_tf.data.augment_spec`, executed by
:mod:`deconvnet_tf.data.augment_np` in NumPy/OpenCV here, by TensorFlow ops there). Keras
``fit``/``evaluate`` take it on every backend; on JAX it is how training reads a dataset
folder without TensorFlow installed.

Batches are a pure function of ``(seed, batch index)``: a training batch ``i`` holds the
examples at positions ``i * batch_size ... (i + 1) * batch_size - 1`` of an endless stream of
per-epoch permutations, each augmented with the spec's parameters for the key
``(seed, position)``. So any number of workers (threads or processes) give the same batches in
the same order, and an example at the same position of ``make_pipeline``'s stream (same seed)
gets the same crop, flip and scale there; the two shuffles differ (a NumPy permutation per pass
here, a tf.data shuffle buffer there).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence

import keras
import numpy as np

from deconvnet_tf.data import augment_np as aug
from deconvnet_tf.data.base import load_record
from deconvnet_tf.data.folder import list_examples, load_example, read_meta, validate_examples
from deconvnet_tf.io import check_color_target, normalize_colors

__all__ = ["FolderPyDataset", "make_pydataset"]

MODES = ("crop", "whole")


def _load_pair(example) -> tuple[np.ndarray, np.ndarray]:
    return load_example(*example)


class FolderPyDataset(keras.utils.PyDataset):
    """Batches of one split of a dataset folder for Keras ``fit``/``evaluate``/``predict``.

    Training datasets are endless (``num_batches`` is ``None``; pass ``steps_per_epoch`` to
    ``fit``): shuffled every pass, augmented in ``"crop"`` mode, the last partial batch of a
    pass continues into the next one. Evaluation datasets (``training=False``) hold
    ``ceil(n / batch_size)`` batches in file order, the last one possibly smaller.

    Args:
        root: Dataset root in the folder layout (see :mod:`deconvnet_tf.data.folder`);
            ignored (may be ``None``) when ``source`` is given.
        split: Split name (``<root>/<split>.txt``).
        source: Optional file-based :class:`deconvnet_tf.data.sources.Source` (folder layout
            or PASCAL VOC: anything with ``records(split)``); its records are read with
            ``deconvnet_tf.data.sources.load_record``.
        mode: ``"crop"``: training crops of ``crop_size`` (random scale, crop with padding,
            flip, colour jitter when ``training``; a centre crop otherwise). ``"whole"``: whole
            images padded at the bottom/right to ``crop_size`` when smaller and centre-cropped
            when larger, no augmentation.
        batch_size: Batch size.
        crop_size: ``(height, width)`` of the batched images.
        training: Shuffle, augment and repeat.
        ignore_label: Label of padded pixels (0..255: labels are 8-bit).
        seed: Seed of shuffling and augmentation.
        scale: ``(min, max)`` random scale factors of ``"crop"`` training, or ``None``.
        flip: Random horizontal flips in ``"crop"`` training.
        jitter: Random colour jitter in ``"crop"`` training.
        gamma: Strength of a random tone curve in ``"crop"`` training (0: none; see
            :func:`deconvnet_tf.data.augment_np.augment`).
        grayscale: Probability that a ``"crop"`` training crop becomes greyscale (its luma in
            all three channels, after the tone curve; 0: never).
        class_uniform: Probability that a ``"crop"`` training window is placed around a pixel
            of a class drawn uniformly among those in the label (0: never; see
            :func:`deconvnet_tf.data.augment_spec.class_crop_offset`).
        class_paste: Probability that a ``"crop"`` training crop receives, after the
            augmentation, the pixels of ``class_paste_classes`` from the previous crop of its
            batch (see :func:`deconvnet_tf.data.augment_np.paste_classes`); 0 (default) or no
            classes: never. The same crops receive as in ``make_pipeline``.
        class_paste_classes: The class ids pasted.
        color_target: ``{"mean": [r, g, b], "std": [r, g, b]}``: every image is first brought
            to these per-channel statistics (:func:`deconvnet_tf.io.normalize_colors`), before
            caching and augmentation; ``None`` (default) leaves the images as they are.
        cache: Keep decoded examples in memory after their first read (per worker process).
        validate: Read every example once now and fail with an error naming the file on bad
            input (unreadable, size mismatch, label values outside the classes).
        workers: Keras ``PyDataset`` workers (threads, or processes with
            ``use_multiprocessing``).
        use_multiprocessing: Use processes instead of threads for ``workers > 1``.
        max_queue_size: Batches prepared ahead by the workers.

    Raises:
        ValueError: On a bad argument (naming it).
        deconvnet_tf.data.folder.DatasetError: On a bad dataset folder (naming the file).

    Example:

    >>> ds = FolderPyDataset("data/camvid_360x480", "train", batch_size=8, crop_size=(224, 224),
    ...                      ignore_label=11)
    >>> images, labels = ds[0]        # (8, 224, 224, 3) uint8, (8, 224, 224) int32
    >>> model.fit(ds, steps_per_epoch=46, epochs=10)
    """

    def __init__(
        self,
        root: str | os.PathLike | None,
        split: str,
        *,
        source=None,
        mode: str = "crop",
        batch_size: int = 8,
        crop_size: Sequence[int] = (224, 224),
        training: bool = True,
        ignore_label: int = 255,
        seed: int = 0,
        scale: tuple[float, float] | None = (0.75, 1.25),
        flip: bool = True,
        jitter: bool | float = True,
        gamma: float = 0.0,
        grayscale: float = 0.0,
        class_uniform: float = 0.0,
        class_paste: float = 0.0,
        class_paste_classes: Sequence[int] = (),
        color_target: dict | None = None,
        cache: bool = True,
        validate: bool = True,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if len(crop_size) != 2 or min(int(s) for s in crop_size) < 1:
            raise ValueError(f"crop_size must be (height, width) with both >= 1, got {crop_size!r}")
        if not 0 <= int(ignore_label) <= 255:
            raise ValueError(f"ignore_label must be in [0, 255] (8-bit labels), got {ignore_label!r}")
        if scale is not None and not (len(scale) == 2 and 0 < scale[0] <= scale[1]):
            raise ValueError(f"scale must be None or (min, max) with 0 < min <= max, got {scale!r}")
        self.root = None if root is None else os.fspath(root)
        self.split = split
        self.mode = mode
        self.batch_size = int(batch_size)
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.training = bool(training)
        self.ignore_label = int(ignore_label)
        self.seed = int(seed)
        self.scale = None if scale is None else (float(scale[0]), float(scale[1]))
        self.flip = bool(flip)
        self.jitter = jitter if isinstance(jitter, bool) else aug.jitter_strength(jitter)
        self.gamma = aug.gamma_strength(gamma)
        self.grayscale = aug.grayscale_strength(grayscale)
        self.class_uniform = aug.spec.class_uniform_strength(class_uniform)
        # (probability, classes) or None: the same check as make_pipeline's
        self.paste = aug.spec.class_paste_setting(class_paste, class_paste_classes,
                                                  self.training and mode == "crop")
        self.color_target = check_color_target(color_target, "FolderPyDataset: color_target")
        self.cache = bool(cache)
        if source is not None:
            self.examples = list(source.records(split))
            self._loader = load_record
            if validate:
                source.validate(split)
        else:
            if root is None:
                raise ValueError("root is None: pass a dataset root or a source")
            self.examples = list_examples(root, split)
            self._loader = _load_pair
            if validate:
                validate_examples(self.examples, read_meta(root))
        self._decoded: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._orders: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    # The lock cannot be pickled (use_multiprocessing sends the dataset to worker processes).
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_lock", None)
        state["_decoded"], state["_orders"] = {}, {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def num_examples(self) -> int:
        """Examples in the split."""
        return len(self.examples)

    @property
    def num_batches(self) -> int | None:
        """``None`` (endless) when training, else ``ceil(num_examples / batch_size)``."""
        if self.training:
            return None
        return math.ceil(self.num_examples / self.batch_size)

    def steps_per_pass(self) -> int:
        """Batches of one pass over the split (``fit``'s ``steps_per_epoch`` for an epoch)."""
        return max(1, math.ceil(self.num_examples / self.batch_size))

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self.cache:
            item = self._decoded.get(index)
            if item is not None:
                return item
        item = self._loader(self.examples[index])
        if self.color_target is not None:
            item = (normalize_colors(item[0], self.color_target), item[1])
        if self.cache:
            with self._lock:
                self._decoded[index] = item
        return item

    def _order(self, epoch: int) -> np.ndarray:
        order = self._orders.get(epoch)
        if order is None:
            order = np.random.default_rng([self.seed, 0x5EED, epoch]).permutation(self.num_examples)
            with self._lock:
                if len(self._orders) > 4:  # batches only ever straddle two passes
                    self._orders.pop(min(self._orders))
                self._orders[epoch] = order
        return order

    def _example(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        height, width = self.crop_size
        if not self.training:
            image, label = self._load(position)
            return aug.center_crop(image, label, height, width, self.ignore_label)
        epoch, offset = divmod(position, self.num_examples)
        image, label = self._load(int(self._order(epoch)[offset]))
        if self.mode == "crop":
            return aug.augment(image, label, (self.seed, position), crop_size=self.crop_size,
                               ignore_label=self.ignore_label, scale=self.scale, flip=self.flip,
                               jitter=self.jitter, gamma=self.gamma, grayscale=self.grayscale,
                               class_uniform=self.class_uniform)
        return aug.center_crop(image, label, height, width, self.ignore_label)

    def __getitem__(self, index: int):
        """Batch ``index``: ``(images uint8 (B, h, w, 3), labels int32 (B, h, w))``.

        Raises:
            IndexError: For a negative index, or past the end of an evaluation dataset.
        """
        index = int(index)
        start = index * self.batch_size
        stop = start + self.batch_size
        if not self.training:
            if index < 0 or start >= self.num_examples:
                raise IndexError(f"batch {index} out of range: {self.num_batches} batches")
            stop = min(stop, self.num_examples)
        elif index < 0:
            raise IndexError(f"batch index must be >= 0, got {index}")
        height, width = self.crop_size
        images = np.empty((stop - start, height, width, 3), np.uint8)
        labels = np.empty((stop - start, height, width), np.int32)
        for row, position in enumerate(range(start, stop)):
            images[row], labels[row] = self._example(position)
        if self.paste is not None:
            probability, classes = self.paste
            pasted = [aug.spec.class_paste((self.seed, p), probability) for p in range(start, stop)]
            images, labels = aug.paste_classes(images, labels, pasted, classes)
        return images, labels


def make_pydataset(
    root: str | os.PathLike | None,
    split: str,
    *,
    deterministic: bool | None = None,
    shuffle_buffer: int | None = None,
    **kwargs,
) -> FolderPyDataset:
    """A :class:`FolderPyDataset`, with the arguments of ``make_pipeline``.

    ``deterministic`` and ``shuffle_buffer`` are accepted so that callers can pass the same
    keyword arguments as to :func:`deconvnet_tf.data.pipeline.make_pipeline`; they change
    nothing here (batches are always reproducible from ``seed``; every pass is a full
    permutation).

    Args:
        root: Dataset root in the folder layout (``None`` with ``source``).
        split: Split name.
        deterministic: Ignored (always deterministic).
        shuffle_buffer: Ignored (full shuffle).
        **kwargs: The keyword arguments of :class:`FolderPyDataset` (``source``, ``mode``,
            ``batch_size``, ``crop_size``, ``training``, ``ignore_label``, ``seed``, ``scale``,
            ``flip``, ``jitter``, ``gamma``, ``grayscale``, ``class_uniform``,
            ``color_target``, ``cache``, ``validate``, ``workers``, ``use_multiprocessing``,
            ``max_queue_size``); an unknown one is a ``TypeError`` naming it.

    Returns:
        A ``keras.utils.PyDataset`` of ``(images uint8 (B, h, w, 3), labels int32 (B, h, w))``.

    Raises:
        ValueError: On a bad argument.
        deconvnet_tf.data.folder.DatasetError: On a bad dataset folder (naming the file).

    Example:

    >>> train_ds = make_pydataset(root, "train", batch_size=8, crop_size=(224, 224),
    ...                           ignore_label=11, seed=0)
    >>> val_ds = make_pydataset(root, "val", mode="whole", training=False, batch_size=8,
    ...                         crop_size=(360, 480), ignore_label=11)
    """
    del deterministic, shuffle_buffer
    return FolderPyDataset(root, split, **kwargs)
