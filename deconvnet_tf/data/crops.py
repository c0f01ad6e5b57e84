"""The paper's object-centred training crops (Noh et al. 2015, section 4.2).

* **Stage 1**: one window per ground-truth object instance (instance masks such as VOC's
  ``SegmentationObject``, or connected components of each class where no instance masks
  exist), the box enlarged by ``box_scale``, warped to ``window_size`` (250); only the centred
  object is labelled, every other labelled pixel becomes background.
* **Stage 2**: windows from object proposals (``boxes``: precomputed per image, or a
  ``boxes_fn(image)``) or, by default, jittered ground-truth boxes, kept when they overlap a
  ground-truth object with IoU >= ``min_iou`` (0.5); the window keeps the full label.

Both pad the out-of-image area (image 0, label ignore) and are then randomly cropped to
``crop_size`` (224) and mirrored in TensorFlow. Windows are computed once, in NumPy, from the
labels (a deterministic list of ``(example index, box, object)``); the warp runs per window in
OpenCV inside ``tf.data`` (parallel ``tf.numpy_function``), cached in memory when it fits.

Example:

>>> records = open_source("/data/VOCdevkit").records("train")
>>> windows = stage1_windows(records, ignore_label=255)
>>> ds = make_window_pipeline(records, windows, stage="stage1", batch_size=8, ignore_label=255)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from deconvnet_tf.data import augment as aug
from deconvnet_tf.data.base import load_record

__all__ = ["ObjectBox", "Windows", "object_boxes", "object_mask", "box_iou", "enlarge_box",
           "jitter_boxes", "stage1_windows", "stage2_windows", "warp_window", "window_example",
           "make_window_pipeline", "STAGES"]

STAGES = ("stage1", "stage2")
_INSTANCE, _COMPONENT = 0, 1


@dataclass(frozen=True)
class ObjectBox:
    """A ground-truth object: ``box`` ``(x0, y0, x1, y1)`` in pixels (exclusive end), its class,
    and how to find its mask again (``kind`` 0: ``instances == object_id``; 1: connected
    component ``object_id`` of the class)."""

    box: tuple[float, float, float, float]
    class_id: int
    kind: int
    object_id: int


@dataclass
class Windows:
    """Training windows: ``index`` (example), ``boxes`` ``(N, 4)`` float32 ``x0, y0, x1, y1``
    (may extend outside the image), and for stage 1 the object (``class_id``, ``kind``,
    ``object_id``; -1 in stage 2)."""

    index: np.ndarray
    boxes: np.ndarray
    class_id: np.ndarray
    kind: np.ndarray
    object_id: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def concat(cls, rows: list[tuple[int, Sequence[float], int, int, int]]) -> Windows:
        if not rows:
            return cls(np.zeros(0, np.int32), np.zeros((0, 4), np.float32), np.zeros(0, np.int32),
                       np.zeros(0, np.int32), np.zeros(0, np.int32))
        index, boxes, cls_, kind, obj = zip(*rows)
        return cls(np.array(index, np.int32), np.array(boxes, np.float32).reshape(-1, 4),
                   np.array(cls_, np.int32), np.array(kind, np.int32), np.array(obj, np.int32))


def _components(label: np.ndarray, class_id: int):
    import cv2

    return cv2.connectedComponentsWithStats((label == class_id).astype(np.uint8), connectivity=8)


def object_boxes(label: np.ndarray, instances: np.ndarray | None = None, *, ignore_label: int | None = 255,
                 background: int = 0, min_pixels: int = 16) -> list[ObjectBox]:
    """Ground-truth objects of one label map.

    Args:
        label: ``(H, W)`` class indices.
        instances: ``(H, W)`` instance ids (0 = none) or ``None``: then every connected
            component (8-connected) of each non-background class is an object.
        ignore_label: Ignored label value (never an object).
        background: The background class (never an object).
        min_pixels: Objects with fewer pixels are skipped.

    Returns:
        Objects in a deterministic order (instance id, or class then component).
    """
    objects = []
    if instances is not None and np.any(instances > 0):
        for inst in np.unique(instances[instances > 0]):
            mask = instances == inst
            values = label[mask]
            values = values[(values != background) & (values != (ignore_label if ignore_label is not None else -1))]
            if values.size < min_pixels:
                continue
            class_id = int(np.bincount(values).argmax())
            ys, xs = np.nonzero(mask)
            objects.append(ObjectBox((float(xs.min()), float(ys.min()), float(xs.max() + 1),
                                      float(ys.max() + 1)), class_id, _INSTANCE, int(inst)))
        return objects
    for class_id in np.unique(label):
        class_id = int(class_id)
        if class_id == background or class_id == ignore_label:
            continue
        count, _, stats, _ = _components(label, class_id)
        for comp in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[comp])
            if area >= min_pixels:
                objects.append(ObjectBox((float(x), float(y), float(x + w), float(y + h)),
                                         class_id, _COMPONENT, comp))
    return objects


def object_mask(label: np.ndarray, instances: np.ndarray | None, kind: int, object_id: int,
                class_id: int) -> np.ndarray:
    """The boolean mask of an object found by :func:`object_boxes`."""
    if kind == _INSTANCE:
        if instances is None:
            raise ValueError("an instance object needs the instance map")
        return instances == object_id
    _, components, _, _ = _components(label, class_id)
    return components == object_id


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(N, M)`` of boxes ``(N, 4)`` and ``(M, 4)`` in ``x0, y0, x1, y1``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def enlarge_box(box, scale: float) -> tuple[float, float, float, float]:
    """Scales a box about its centre (``scale`` 1.2: 20% larger each side length)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * scale / 2, (y1 - y0) * scale / 2
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def jitter_boxes(boxes: np.ndarray, rng: np.random.Generator, per_box: int = 4,
                 shift: float = 0.15, scale: tuple[float, float] = (0.8, 1.25)) -> np.ndarray:
    """Random boxes around each box: centre shifted by up to ``shift`` of the size, sides scaled
    log-uniformly in ``scale`` (a stand-in for object proposals)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes) or per_box < 1:
        return np.zeros((0, 4), np.float32)
    b = np.repeat(boxes, per_box, axis=0)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx = (b[:, 0] + b[:, 2]) / 2 + rng.uniform(-shift, shift, len(b)) * w
    cy = (b[:, 1] + b[:, 3]) / 2 + rng.uniform(-shift, shift, len(b)) * h
    w = w * np.exp(rng.uniform(*np.log(scale), len(b)))
    h = h * np.exp(rng.uniform(*np.log(scale), len(b)))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).astype(np.float32)


def _labels_of(records, need_image: bool = False):
    for index, record in enumerate(records):
        image, label, inst = load_record(record, instances=True)
        yield index, (image if need_image else None), label, inst


def stage1_windows(records, *, ignore_label: int | None = 255, background: int = 0,
                   box_scale: float = 1.2, min_pixels: int = 16) -> Windows:
    """One window per ground-truth object (instances, or connected components per class).

    Args:
        records: :class:`deconvnet_tf.data.sources.Record` list (instance masks are used when
            a record has them).
        ignore_label: Ignored label value.
        background: Background class.
        box_scale: Enlargement of the object's box about its centre.
        min_pixels: Skip smaller objects.

    Returns:
        :class:`Windows` in record order.
    """
    rows = []
    for index, _, label, inst in _labels_of(records):
        for obj in object_boxes(label, inst, ignore_label=ignore_label, background=background,
                                min_pixels=min_pixels):
            rows.append((index, enlarge_box(obj.box, box_scale), obj.class_id, obj.kind, obj.object_id))
    return Windows.concat(rows)


def stage2_windows(
    records,
    *,
    boxes: dict[int, np.ndarray] | Sequence[np.ndarray] | None = None,
    boxes_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    ignore_label: int | None = 255,
    background: int = 0,
    min_iou: float = 0.5,
    per_object: int = 4,
    box_scale: float = 1.2,
    min_pixels: int = 16,
    seed: int = 0,
) -> Windows:
    """Windows that overlap a ground-truth object with IoU >= ``min_iou``.

    Candidates per image, in order of preference: ``boxes[index]`` (precomputed proposals),
    ``boxes_fn(image)`` (e.g. ``deconvnet_tf.inference.proposals.propose_boxes``), or
    ``per_object`` jittered copies of each ground-truth box (seeded). Images where no
    candidate qualifies fall back to their ground-truth boxes, so every object is seen.

    Returns:
        :class:`Windows` (boxes enlarged by ``box_scale``; object fields -1).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for index, image, label, inst in _labels_of(records, need_image=boxes is None and boxes_fn is not None):
        objects = object_boxes(label, inst, ignore_label=ignore_label, background=background,
                               min_pixels=min_pixels)
        if not objects:
            continue
        gt = np.array([o.box for o in objects], np.float32)
        if boxes is not None:
            candidates = np.asarray(boxes[index], np.float32).reshape(-1, 4)
        elif boxes_fn is not None:
            candidates = np.asarray(boxes_fn(image), np.float32).reshape(-1, 4)
        else:
            candidates = jitter_boxes(gt, rng, per_object)
        keep = candidates[box_iou(candidates, gt).max(1) >= min_iou] if len(candidates) else candidates
        if not len(keep):
            keep = gt
        for box in keep:
            rows.append((index, enlarge_box(box, box_scale), -1, -1, -1))
    return Windows.concat(rows)


def warp_window(image: np.ndarray, label: np.ndarray, box, size: int, ignore_label: int):
    """Warps the box ``(x0, y0, x1, y1)`` of both to ``size x size`` (image bilinear, label
    nearest); outside the image: image 0, label ``ignore_label``."""
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    sx, sy = size / max(x1 - x0, 1e-6), size / max(y1 - y0, 1e-6)
    # Pixel centres: output centre u + 0.5 = (x + 0.5 - x0) * sx.
    matrix = np.array([[sx, 0, (0.5 - x0) * sx - 0.5], [0, sy, (0.5 - y0) * sy - 0.5]], np.float64)
    out_image = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    out_label = cv2.warpAffine(label, matrix, (size, size), flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=int(ignore_label))
    return out_image, out_label


def window_example(records, windows: Windows, i: int, *, stage: str, size: int = 250,
                   ignore_label: int = 255, background: int = 0):
    """The warped ``(image (size, size, 3), label (size, size))`` of window ``i``.

    Stage 1 keeps only the window's object labelled (other labelled pixels -> ``background``,
    ignored pixels stay ignored); stage 2 keeps the full label.
    """
    record = records[int(windows.index[i])]
    if stage == "stage1":
        image, label, inst = load_record(record, instances=True)
        mask = object_mask(label, inst, int(windows.kind[i]), int(windows.object_id[i]),
                           int(windows.class_id[i]))
        label = np.where(mask | (label == ignore_label), label, np.uint8(background)).astype(np.uint8)
    else:
        image, label = load_record(record)
    return warp_window(image, label, windows.boxes[i], size, ignore_label)


def _warped_windows(records, windows: Windows, *, stage: str, window_size: int,
                    ignore_label: int, background: int, deterministic: bool):
    """A dataset of the warped ``(image, label)`` of each window, in window order (the warp
    runs in OpenCV through a parallel ``tf.numpy_function``)."""
    import tensorflow as tf

    def load(i):
        return window_example(records, windows, int(i), stage=stage, size=window_size,
                              ignore_label=ignore_label, background=background)

    def load_tf(i):
        image, label = tf.numpy_function(load, [i], (tf.uint8, tf.uint8), stateful=False)
        return (tf.ensure_shape(image, (window_size, window_size, 3)),
                tf.ensure_shape(label, (window_size, window_size)))

    options = tf.data.Options()
    options.deterministic = bool(deterministic)
    ds = tf.data.Dataset.range(len(windows)).with_options(options)
    return ds.map(load_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _crop_transform(height: int, width: int, *, training: bool, ignore_label: int, seed: int,
                    flip: bool, jitter: bool):
    """``transform((image, label), index)``: a random crop, mirror and colour jitter seeded by
    the element index when ``training``, else a centre crop; labels int32."""
    import tensorflow as tf

    def transform(example, index):
        image, label = example
        if training:
            seeds = tf.random.experimental.stateless_split(
                tf.stack([tf.cast(index, tf.int32), tf.constant(seed, tf.int32)]), 3)
            image, label = aug.random_crop(image, label, height, width, ignore_label, seeds[0])
            if flip:
                image, label = aug.random_flip(image, label, seeds[1])
            if jitter:
                image = aug.color_jitter(image, seeds[2])
        else:
            image, label = aug.center_crop(image, label, height, width, ignore_label)
        return image, tf.cast(label, tf.int32)

    return transform


def make_window_pipeline(
    records,
    windows: Windows,
    *,
    stage: str,
    batch_size: int = 8,
    crop_size: tuple[int, int] = (224, 224),
    window_size: int = 250,
    training: bool = True,
    ignore_label: int = 255,
    background: int = 0,
    shuffle_buffer: int = 1024,
    cache: bool | str = "auto",
    cache_limit_bytes: int = 2**30,
    deterministic: bool = False,
    seed: int = 0,
    flip: bool = True,
    jitter: bool = False,
):
    """Batches stage-1/stage-2 windows for Keras ``fit``.

    Args:
        records: The records the windows index.
        windows: From :func:`stage1_windows` / :func:`stage2_windows`.
        stage: ``"stage1"`` or ``"stage2"``.
        batch_size: Batch size.
        crop_size: Random crop of the warped window (paper: 224 of 250).
        window_size: Warp size (paper: 250).
        training: Shuffle, random crop, mirror, repeat (else a centre crop, one pass).
        ignore_label: Label of padding.
        background: Background class (stage 1).
        shuffle_buffer: Shuffle buffer size.
        cache: ``True``, ``False`` or ``"auto"`` (cache warped windows when they need less
            than ``cache_limit_bytes``).
        cache_limit_bytes: Memory limit of ``"auto"``.
        deterministic: Fixed element order (reproducible given ``seed``).
        seed: Seed of shuffling and the random crops.
        flip: Random horizontal mirror.
        jitter: Colour jitter.

    Returns:
        A dataset of ``(images uint8 (B, h, w, 3), labels int32 (B, h, w))``.

    Raises:
        ValueError: unknown stage, no windows, or a crop larger than the window.
    """
    import tensorflow as tf

    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    if len(windows) == 0:
        raise ValueError(f"{stage}: no training windows (no objects of at least min_pixels pixels "
                         "in the split)")
    height, width = int(crop_size[0]), int(crop_size[1])
    if height > window_size or width > window_size:
        raise ValueError(f"crop_size {crop_size} is larger than window_size {window_size}")

    ds = _warped_windows(records, windows, stage=stage, window_size=window_size,
                         ignore_label=ignore_label, background=background,
                         deterministic=deterministic)
    if cache == "auto":
        cache = len(windows) * window_size * window_size * 4 <= cache_limit_bytes
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(min(shuffle_buffer, len(windows)), seed=seed,
                        reshuffle_each_iteration=True).repeat()
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.counter(start=seed * 1_000_003)))
    transform = _crop_transform(height, width, training=training, ignore_label=ignore_label,
                                seed=seed, flip=flip, jitter=jitter)
    ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)
