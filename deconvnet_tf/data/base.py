"""The bottom of the data layer: errors, dataset info, records on disk, label decoding, the
``Source`` interface and split selectors. Everything else in :mod:`deconvnet_tf.data` builds on
this module; it imports nothing from the package but :mod:`deconvnet_tf.io`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deconvnet_tf.io import ImageReadError, read_image

__all__ = ["DatasetError", "DatasetInfo", "Record", "RecordSource", "Source", "label_statistics",
           "load_record", "parse_split", "read_index_png", "read_sbd_mat", "records_dataset",
           "select_records", "split_union", "validate_records"]


class DatasetError(ValueError):
    """Bad dataset input; the message names the file and what was expected."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset's ``meta.json`` says.

    Attributes:
        root: Dataset root folder.
        class_names: Names of the classes, index order.
        ignore_label: Label value to ignore (void), or ``None`` when every pixel is labelled.
    """

    root: Path
    class_names: tuple[str, ...]
    ignore_label: int | None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def read_index_png(path: str | os.PathLike) -> np.ndarray:
    """Reads a palette or greyscale PNG as its raw indices (``uint8 (H, W)``).

    Raises:
        DatasetError: unreadable file, or an RGB PNG (indices cannot be recovered).
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L", "I;16", "I"):
                raise DatasetError(f"Label {str(path)!r} is a {im.mode} image: expected a palette "
                                   "or greyscale PNG of class indices")
            array = np.asarray(im)
    except DatasetError:
        raise
    except Exception as err:  # PIL raises many types for corrupt files
        raise DatasetError(f"Cannot read label {str(path)!r}: missing, corrupt or not a PNG "
                           f"({err.__class__.__name__})") from err
    return array.astype(np.uint8) if array.dtype != np.uint8 else array


def read_sbd_mat(path: str | os.PathLike, key: str = "GTcls") -> np.ndarray:
    """Reads an SBD label file (``cls/*.mat``: ``key="GTcls"``, ``inst/*.mat``: ``"GTinst"``)."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
        return np.asarray(mat[key]["Segmentation"][0][0], np.uint8)
    except Exception as err:
        raise DatasetError(f"Cannot read SBD label {str(path)!r}: expected a MATLAB file with "
                           f"{key}.Segmentation ({err.__class__.__name__}: {err})") from err


_LABEL_FORMATS = ("png", "index_png", "sbd_mat")
_INSTANCE_FORMATS = ("png16", "index_png", "sbd_mat")


@dataclass(frozen=True)
class Record:
    """One example on disk.

    Attributes:
        image: Image file (JPEG/PNG, RGB after decoding).
        label: Label file.
        label_format: ``"png"`` (8-bit greyscale class indices; a palette PNG is read as its
            indices, any other PNG or file is an error naming it), ``"index_png"`` (palette or
            greyscale PNG read as raw indices, e.g. VOC) or ``"sbd_mat"`` (SBD ``GTcls``).
        instances: Instance-id file or ``None`` (0 = no instance).
        instances_format: ``"png16"`` (8/16-bit greyscale ids), ``"index_png"`` (VOC
            ``SegmentationObject``; 255 = boundary, read as 0) or ``"sbd_mat"`` (``GTinst``).
    """

    image: Path
    label: Path
    label_format: str = "png"
    instances: Path | None = None
    instances_format: str = "png16"


def _read_image(path: Path) -> np.ndarray:
    """Decodes an image fully (a truncated or corrupt file is an error naming it), and checks
    that tf.data would decode it to the same pixels (:func:`_check_image_file`)."""
    try:
        image = read_image(path)
    except ImageReadError as err:
        raise DatasetError(str(err)) from None
    _check_image_file(path)
    return image


#: What ``tf.io.decode_image`` reads (PIL's names; MPO: a camera JPEG with a preview).
_TF_IMAGE_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP")
_ORIENTATIONS = {2: "mirrored", 3: "turned 180 degrees", 4: "flipped upside down",
                 5: "transposed", 6: "turned 90 degrees", 7: "transversed",
                 8: "turned 270 degrees"}


def _check_image_file(path: Path) -> None:
    """Raises for an image that OpenCV (this reader, evaluation) and TensorFlow (the training
    pipeline) would decode differently: a format TensorFlow does not read (TIFF...), or an EXIF
    orientation (OpenCV turns the image, TensorFlow does not). Reads the header only."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            kind, exif = im.format, im.info.get("exif")
    except Exception:  # a format PIL does not know either
        kind, exif = None, None
    if kind not in _TF_IMAGE_FORMATS:
        raise DatasetError(f"Image {str(path)!r} is {f'a {kind}' if kind else 'not a JPEG or PNG'}"
                           " file: expected a JPEG or PNG image (TensorFlow's decoder reads "
                           "JPEG, PNG, GIF, BMP and WebP)")
    orientation = 1
    if exif:
        tags = Image.Exif()
        try:
            tags.load(exif)
            orientation = int(tags.get(0x0112, 1))
        except Exception:  # an unreadable EXIF block: OpenCV ignores it too
            orientation = 1
    if orientation in _ORIENTATIONS:
        raise DatasetError(f"Image {str(path)!r} has EXIF orientation {orientation} (shown "
                           f"{_ORIENTATIONS[orientation]}): it is ambiguous whether its label "
                           "matches the stored or the shown pixels; save the image as shown "
                           "without the tag (PIL.ImageOps.exif_transpose) and its label to match")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOURS = {0: "greyscale", 2: "RGB", 3: "palette", 4: "greyscale+alpha", 6: "RGBA"}


def _read_label_png(path: Path, what: str) -> np.ndarray:
    """A label PNG of the folder layout as class indices: an 8-bit greyscale PNG as stored, a
    palette PNG as its raw indices (as VOC's); any other file is an error naming it (decoders
    would turn it into other values: colours, 16 or 1-bit depth, JPEG artefacts)."""
    try:
        array = read_image(path, what=what, unchanged=True)
        with open(path, "rb") as file:
            head = file.read(26)
    except ImageReadError as err:
        raise DatasetError(str(err)) from None
    name = f"{what.capitalize()} {str(path)!r}"
    if head[:8] != _PNG_SIGNATURE:
        kind = "a JPEG" if head[:2] == b"\xff\xd8" else "not a PNG"
        raise DatasetError(f"{name} is {kind}: expected a PNG of class indices (lossless: JPEG "
                           "compression changes the values along every edge)")
    depth, colour = head[24], head[25]
    if colour == 3:
        return read_index_png(path)
    if colour == 0 and depth == 8:
        return array
    hint = (" (a colour-coded label? map its colours to class indices)" if colour in (2, 6)
            else " (its values decode scaled; save it with 8 bits, e.g. PIL mode 'L')"
            if colour == 0 else "")
    article = "an" if depth == 8 else "a"
    raise DatasetError(f"{name} is {article} {depth}-bit {_PNG_COLOURS.get(colour, '?')} PNG: "
                       f"expected 8-bit greyscale (or palette) class indices{hint}")


def _read_indices(path: Path, fmt: str, what: str) -> np.ndarray:
    if fmt == "index_png":
        return read_index_png(path)
    if fmt == "sbd_mat":
        return read_sbd_mat(path, "GTcls" if what == "label" else "GTinst")
    if fmt == "png":
        return _read_label_png(path, what)
    try:
        array = read_image(path, what=what, unchanged=True)
    except ImageReadError as err:
        raise DatasetError(str(err)) from None
    if array.ndim != 2:
        raise DatasetError(f"{what.capitalize()} {str(path)!r} has shape {array.shape}: expected "
                           "a single-channel PNG of indices")
    return array


def load_record(record: Record, *, instances: bool = False):
    """Reads one record: ``(image uint8 RGB (H, W, 3), label uint8 (H, W))``, plus
    ``instances int32 (H, W)`` (or ``None``) when ``instances``.

    Raises:
        DatasetError: unreadable file or a size mismatch, naming the files.
    """
    image = _read_image(record.image)
    label = _read_indices(record.label, record.label_format, "label")
    if label.shape != image.shape[:2]:
        raise DatasetError(f"Size mismatch: image {str(record.image)!r} is "
                           f"{image.shape[0]}x{image.shape[1]} but label {str(record.label)!r} is "
                           f"{label.shape[0]}x{label.shape[1]}")
    label = label.astype(np.uint8)
    if not instances:
        return image, label
    inst = None
    if record.instances is not None:
        inst = _read_indices(record.instances, record.instances_format, "instances").astype(np.int32)
        if record.instances_format == "index_png":
            inst[inst == 255] = 0  # VOC object boundaries
        if inst.shape != label.shape:
            raise DatasetError(f"Size mismatch: instances {str(record.instances)!r} is "
                               f"{inst.shape[0]}x{inst.shape[1]} but label {str(record.label)!r} is "
                               f"{label.shape[0]}x{label.shape[1]}")
    return image, label, inst


def label_statistics(label: np.ndarray, info: DatasetInfo, name: str = "label"):
    """Class pixel counts of one label; raises naming ``name`` on out-of-range values."""
    values = np.bincount(label.ravel(), minlength=256)
    bad = [int(v) for v in np.flatnonzero(values) if v >= info.num_classes and v != info.ignore_label]
    if bad:
        raise DatasetError(f"Label {name!r} has value(s) {bad[:5]} outside [0, {info.num_classes}) "
                           f"that are not the ignore label ({info.ignore_label})")
    counts = values[: info.num_classes]
    return counts, (counts > 0) * label.size


def validate_records(records: list[Record], info: DatasetInfo) -> tuple[np.ndarray, np.ndarray]:
    """Reads every record once, checks it (naming the file) and returns ``(pixel_counts,
    image_pixels)`` per class (what median-frequency balancing needs)."""
    if not records:
        raise DatasetError(f"No examples in {str(info.root)!r}: the split is empty")
    counts = np.zeros(info.num_classes, np.int64)
    image_pixels = np.zeros(info.num_classes, np.int64)
    for record in records:
        _, label = load_record(record)
        c, p = label_statistics(label, info, str(record.label))
        counts += c
        image_pixels += p
    return counts, image_pixels


def records_dataset(records: list[Record]):
    """``tf.data.Dataset`` of ``(image uint8 (H, W, 3), label uint8 (H, W))`` over records.

    8-bit greyscale PNG labels decode in TensorFlow; any other label file (palette PNG,
    ``.mat``, or a file :func:`load_record` refuses) goes through the NumPy reader in parallel
    ``tf.numpy_function`` calls, so labels are the values validation saw (or its error). An
    image and label of different sizes stop the pipeline with an error naming both files.
    """
    import tensorflow as tf

    if not records:
        raise DatasetError("No examples: the split is empty")
    images = tf.constant([str(r.image) for r in records])
    labels = tf.constant([str(r.label) for r in records])
    formats = {r.label_format for r in records}

    def read_label_np(path, fmt):
        return _read_indices(Path(path.decode()), fmt.decode(), "label").astype(np.uint8)

    def read_label(label_path, fmt):
        def numpy():
            return tf.numpy_function(read_label_np, [label_path, fmt], tf.uint8, stateful=False)

        if formats != {"png"}:
            return numpy()
        data = tf.io.read_file(label_path)
        head = tf.strings.join([tf.strings.substr(data, 0, 26), b"\0" * 26])
        plain = tf.logical_and(tf.equal(tf.strings.substr(head, 0, 8), _PNG_SIGNATURE),
                               tf.equal(tf.strings.substr(head, 24, 2), b"\x08\x00"))
        return tf.cond(plain, lambda: tf.io.decode_png(data, channels=1)[..., 0], numpy)

    def decode(image_path, label_path, fmt):
        image = tf.io.decode_image(tf.io.read_file(image_path), channels=3, expand_animations=False)
        image = tf.ensure_shape(image, (None, None, 3))
        label = tf.ensure_shape(read_label(label_path, fmt), (None, None))
        same = tf.debugging.Assert(tf.reduce_all(tf.equal(tf.shape(image)[:2], tf.shape(label))),
                                   ["Size mismatch: image", image_path, "label", label_path])
        with tf.control_dependencies([same]):
            return tf.identity(image), tf.identity(label)

    fmts = tf.constant([r.label_format for r in records])
    return tf.data.Dataset.from_tensor_slices((images, labels, fmts)).map(
        decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class Source:
    """A segmentation data source (base class). ``info`` has class names and the ignore label."""

    info: DatasetInfo
    name: str = "source"

    def records(self, split: str) -> list[Record]:
        """Examples on disk (file-based sources only; needed by stage-1/stage-2 crops)."""
        raise DatasetError(f"{self.name}: object crops (stage1/stage2) need a file-based source "
                           "(--data: folder layout or PASCAL VOC)")

    def num_examples(self, split: str) -> int:
        raise NotImplementedError

    def dataset(self, split: str):
        """``tf.data.Dataset`` of ``(image uint8 (H, W, 3), label uint8 (H, W))``."""
        raise NotImplementedError

    def numpy_examples(self, split: str, limit: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(image, label)`` NumPy pairs, in split order."""
        raise NotImplementedError

    def validate(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Checks every example of ``split`` (clear errors) and returns class statistics."""
        counts = np.zeros(self.info.num_classes, np.int64)
        image_pixels = np.zeros(self.info.num_classes, np.int64)
        n = 0
        for i, (_, label) in enumerate(self.numpy_examples(split)):
            c, p = label_statistics(label, self.info, f"{self.name}:{split}[{i}]")
            counts += c
            image_pixels += p
            n += 1
        if n == 0:
            raise DatasetError(f"{self.name}: split '{split}' is empty")
        return counts, image_pixels


_SELECTOR = re.compile(r"^(?P<split>[^\[\]]+)\[(?P<negate>-?)(?P<body>[^\[\]]+)\]$")


def parse_split(split: str) -> tuple[str, str | None]:
    """``"train[-0001TP]"`` -> ``("train", "-0001TP")``; ``"val"`` -> ``("val", None)``."""
    match = _SELECTOR.match(split.strip())
    if match is None:
        if "[" in split or "]" in split:
            raise DatasetError(f"split {split!r}: expected NAME, NAME[PREFIXES], NAME[-PREFIXES], "
                               "NAME[K/N] or NAME[-K/N]")
        return split, None
    return match["split"], match["negate"] + match["body"]


def select_records(records: list[Record], selector: str | None, split: str = "") -> list[Record]:
    """The records a split selector keeps (the dev-split protocol).

    Selectors (in brackets after a split name, e.g. ``--set val_split=train[0001TP]``):

    - ``PREFIXES``: records whose image file name starts with one of the comma-separated
      prefixes (CamVid's prefix is the sequence: ``0001TP``, ``0006R0``, ``0016E5``, ``Seq05VD``);
      ``-PREFIXES``: all the others.
    - ``K/N``: fold ``K`` of ``N`` (``0 <= K < N``): every ``N``-th record of the split in file
      name order, starting at the ``K``-th; ``-K/N``: the other folds.

    Raises:
        DatasetError: a malformed selector, or one that keeps no record or every record.
    """
    if selector is None:
        return records
    negate = selector.startswith("-")
    body = selector[1:] if negate else selector
    fold = re.fullmatch(r"(\d+)/(\d+)", body)
    if fold:
        k, n = int(fold[1]), int(fold[2])
        if not 0 <= k < n:
            raise DatasetError(f"split {split!r}: fold {k}/{n} needs 0 <= K < N")
        order = sorted(range(len(records)), key=lambda i: records[i].image.name)
        chosen = {i for rank, i in enumerate(order) if rank % n == k}
    else:
        prefixes = tuple(p.strip() for p in body.split(",") if p.strip())
        if not prefixes:
            raise DatasetError(f"split {split!r}: empty prefix list")
        chosen = {i for i, r in enumerate(records) if r.image.name.startswith(prefixes)}
    kept = [r for i, r in enumerate(records) if (i in chosen) != negate]
    if not kept or len(kept) == len(records):
        raise DatasetError(f"split {split!r} keeps {len(kept)} of {len(records)} examples: the "
                           "selector must keep some and leave out some")
    return kept


def split_union(split: str) -> list[str]:
    """``"train[-0/5]+val"`` -> ``["train[-0/5]", "val"]``: the parts of a union of splits
    (``+`` outside brackets, as in TFDS split names); a plain split gives itself.

    Raises:
        DatasetError: an empty part (``"train+"``, ``"+val"``, ``"train++val"``).
    """
    parts, depth, start = [], 0, 0
    for i, char in enumerate(split):
        depth += (char == "[") - (char == "]")
        if char == "+" and depth == 0:
            parts.append(split[start:i])
            start = i + 1
    parts.append(split[start:])
    parts = [p.strip() for p in parts]
    if len(parts) > 1 and not all(parts):
        raise DatasetError(f"split {split!r}: expected NAME+NAME (a union of splits, each "
                           "optionally with a selector), found an empty part")
    return parts


def _union_records(parts: list[tuple[str, list[Record]]], split: str) -> list[Record]:
    """The records of every part, in order; a file in two parts is an error (it would be
    trained or scored twice)."""
    seen: dict[Path, str] = {}
    union = []
    for part, records in parts:
        for record in records:
            key = Path(record.image).resolve()
            if key in seen:
                raise DatasetError(f"split {split!r}: {str(record.image)!r} is in both "
                                   f"{seen[key]!r} and {part!r}; the parts of a union must "
                                   "not overlap")
            seen[key] = part
            union.append(record)
    return union


class RecordSource(Source):
    """A source of files on disk (folder layout or PASCAL VOC). Split names may carry a
    selector (:func:`select_records`): ``train[-0001TP]``, ``train[0001TP]``, ``train[2/5]``,
    and join with ``+`` (:func:`split_union`): ``train[-0/5]+val``."""

    def __init__(self, info: DatasetInfo, records_fn, name: str):
        self.info = info
        self._records_fn = records_fn
        self.name = name
        self._cache: dict[str, list[Record]] = {}

    def records(self, split):
        if split not in self._cache:
            parts = split_union(split)
            if len(parts) == 1:
                name, selector = parse_split(split)
                self._cache[split] = select_records(self._records_fn(name), selector, split)
            else:
                self._cache[split] = _union_records([(p, self.records(p)) for p in parts], split)
        return self._cache[split]

    def num_examples(self, split):
        return len(self.records(split))

    def dataset(self, split):
        return records_dataset(self.records(split))

    def numpy_examples(self, split, limit=None):
        for record in self.records(split)[:limit]:
            yield load_record(record)

    def validate(self, split):
        return validate_records(self.records(split), self.info)
