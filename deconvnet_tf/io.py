"""Image files in, prediction files out: the one place for reading and checking images,
listing inputs, writing outputs atomically without clobbering, and the size rule that brings
an image to a size a model takes.

NumPy and OpenCV only (no TensorFlow/Keras), so the LiteRT runtime, the Keras/SavedModel
predictors and the dataset readers all use the same code.

* :func:`read_image` decodes fully and checks the file's structure first: a truncated JPEG
  (no end-of-image marker), a PNG without its ``IEND`` chunk or with a bad chunk CRC, a BMP or
  WebP shorter than its header says, or bytes OpenCV cannot decode raise
  :class:`ImageReadError` naming the file (OpenCV alone returns a half-grey picture for some
  truncated JPEGs). Grey, RGBA and 16-bit files come back as 8-bit RGB.
* :func:`list_images` expands files and folders; in folders it skips the files this project
  wrote (PNGs carrying the :data:`OUTPUT_MARKER` text chunk), so an output folder that is
  also the input folder is not read back.
* :func:`write_bytes` / :func:`save_npy` write to a unique temporary file in the target folder
  (``tempfile.mkstemp``) and then move it into place; with ``overwrite=False`` an existing
  file is never replaced (the move is a hard link that fails if the name exists).
* :func:`plan_size` is the size rule of every predictor: a fixed-size model gets the image
  resized to its input; otherwise an image above ``max_pixels`` is scaled down (aspect kept)
  and an image below the model's minimum side is padded at the bottom/right.
* :func:`find_class_names` finds a model file's class names the way a training run folder
  stores them (the dataset ``meta.json``), for the Segmenter and the exporters.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "OUTPUT_MARKER",
    "ImageReadError",
    "OutputError",
    "RUN_COLOR_TARGET",
    "SizePlan",
    "check_color_target",
    "check_creatable",
    "check_image_bytes",
    "check_pixels",
    "classes_from_meta",
    "average_with_mirror",
    "downscale_message",
    "ensure_output_dir",
    "find_class_names",
    "fit_image",
    "is_project_output",
    "list_images",
    "make_temp_file",
    "mark_png",
    "new_file_mode",
    "normalize_colors",
    "output_folder",
    "plan_size",
    "read_image",
    "resize_channels",
    "restore_scores",
    "save_npy",
    "upscale_labels",
    "write_bytes",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

#: Default pixel budget of the prediction command lines (``--max-pixels``): larger images are
#: scaled down for the network and the labels scaled back. 2 MP is e.g. 1224x1632 for a 3:4
#: photo; the shipped CamVid model needs about 0.9 GB + 1.2 GB per megapixel on a CPU, so a
#: 3000x4000 photo peaks at 3.5 GB instead of aborting.
DEFAULT_MAX_PIXELS = 2_000_000

#: Keyword and text of the PNG ``tEXt`` chunk marking files written by this project.
OUTPUT_MARKER = (b"Software", b"deconvnet-tf output")


class ImageReadError(ValueError):
    """An image file that cannot be read: missing, unreadable, truncated, corrupt, not an image.

    The message names the file and says what is wrong.
    """


class OutputError(OSError):
    """An output that cannot be written, or that exists and may not be replaced.

    The message names the file or folder and says what to do.
    """


# ------------------------------------------------------------------------------ reading images
def _jpeg_problem(data: bytes) -> str | None:
    """Walks the JPEG marker segments to the end-of-image marker; returns what is wrong."""
    n = len(data)
    truncated = "truncated JPEG (the file ends before its end-of-image marker)"
    pos = 2
    while True:
        if pos >= n:
            return truncated
        if data[pos] != 0xFF:  # stray bytes between segments: libjpeg skips them too
            pos = data.find(b"\xff", pos)
            if pos < 0:
                return truncated
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            return truncated
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return None
        if marker in (0x00, 0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            continue
        if pos + 2 > n:
            return truncated
        length = int.from_bytes(data[pos:pos + 2], "big")
        if length < 2:
            return f"corrupt JPEG (segment 0xFF{marker:02X} has length {length})"
        pos += length
        if pos > n:
            return truncated
        if marker == 0xDA:  # start of scan: skip the entropy-coded data to the next marker
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    return truncated
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:  # stuffed byte, restart
                    pos += 2
                elif following == 0xFF:
                    pos += 1
                else:
                    break


def _png_problem(data: bytes) -> str | None:
    """Walks the PNG chunks to ``IEND``, checking each chunk's CRC; returns what is wrong."""
    view = memoryview(data)
    n = len(data)
    pos = 8
    while True:
        if pos + 8 > n:
            return "truncated PNG (the file ends before its IEND chunk)"
        length = int.from_bytes(view[pos:pos + 4], "big")
        kind = bytes(view[pos + 4:pos + 8])
        end = pos + 8 + length
        if end + 4 > n:
            return "truncated PNG (the file ends before its IEND chunk)"
        crc = int.from_bytes(view[end:end + 4], "big")
        if zlib.crc32(view[pos + 4:end]) != crc:
            name = kind.decode("latin-1") if kind.isalpha() else repr(kind)
            return f"corrupt PNG (bad checksum in chunk {name})"
        if kind == b"IEND":
            return None
        pos = end + 4


def check_image_bytes(data: bytes) -> str | None:
    """What is structurally wrong with an encoded image (JPEG, PNG, BMP, WebP), or ``None``.

    Other formats (TIFF) are left to the decoder.
    """
    if not data:
        return "empty file"
    if data[:2] == b"\xff\xd8":
        return _jpeg_problem(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_problem(data)
    if data[:2] == b"BM" and len(data) >= 6:
        size = int.from_bytes(data[2:6], "little")
        if size > len(data):
            return f"truncated BMP ({len(data)} of {size} bytes)"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        size = int.from_bytes(data[4:8], "little") + 8
        if size > len(data):
            return f"truncated WebP ({len(data)} of {size} bytes)"
    return None


def read_image(path: str | os.PathLike, *, what: str = "image",
               unchanged: bool = False) -> np.ndarray:
    """Reads an image file fully and checks it.

    Args:
        path: The file.
        what: Word used in messages (``"image"``, ``"label"``).
        unchanged: Return the stored channels and depth (label and instance PNGs) instead of
            8-bit RGB.

    Returns:
        ``(H, W, 3)`` uint8 RGB (grey, palette, RGBA and 16-bit files are converted; EXIF
        orientation is applied), or with ``unchanged`` the array as stored (BGR order for
        colour files).

    Raises:
        ImageReadError: The file is missing, unreadable, truncated, corrupt or not an image
            (the message names it).
    """
    import cv2

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"Cannot read {what} {str(path)!r}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"Cannot read {what} {str(path)!r}: it is a folder") from None
    except OSError as err:
        raise ImageReadError(f"Cannot read {what} {str(path)!r}: "
                             f"{err.strerror or err}") from None
    problem = check_image_bytes(data)
    if problem is not None:
        raise ImageReadError(f"Cannot read {what} {str(path)!r}: {problem}")
    flags = cv2.IMREAD_UNCHANGED if unchanged else cv2.IMREAD_COLOR
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as err:
        image, detail = None, str(err).strip().splitlines()[-1]
    else:
        detail = "corrupt, unsupported or not an image"
    if image is None or image.size == 0:
        raise ImageReadError(f"Cannot read {what} {str(path)!r}: {detail}")
    if unchanged:
        return image
    return np.ascontiguousarray(image[..., ::-1])


# ------------------------------------------------------------------------------ listing inputs
def check_pixels(image, what: str = "image") -> np.ndarray:
    """An RGB image ``(H, W, 3)`` of pixel values 0..255 as an array, or a clear error.

    The one input check of every runtime (Keras, SavedModel, LiteRT): uint8, or any integer or
    float array whose values are pixel values 0..255 (floats are rounded there).

    Raises:
        ValueError: Not ``(H, W, 3)``, empty, not numbers (bool, complex, text, objects),
            NaN or infinite values, or integers outside 0..255 (e.g. a 16-bit image); the
            message names ``what``.

    Warns:
        UserWarning: A float image whose values all lie in 0..1 (it would be read as almost
            black: the models take 0..255).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{what}: expected an RGB image (H, W, 3), got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{what}: empty image of shape {image.shape}")
    if image.dtype.kind not in "uif":
        raise ValueError(f"{what}: expected pixel values 0..255 (uint8, integers or floats), "
                         f"got dtype {image.dtype}")
    if image.dtype == np.uint8:
        return image
    if image.dtype.kind == "f":
        bad = image.size - int(np.count_nonzero(np.isfinite(image)))
        if bad:
            raise ValueError(f"{what}: {bad} NaN or infinite value(s); expected pixel values "
                             "0..255")
        low, high = float(image.min()), float(image.max())
        if 0.0 <= low and 0.0 < high <= 1.0:
            import warnings

            warnings.warn(f"{what}: float values in 0..1 are read as pixel values 0..255 "
                          "(an almost black image); multiply by 255 if they are a 0..1 scale",
                          UserWarning, stacklevel=3)
        return image
    low, high = int(image.min()), int(image.max())
    if low < 0 or high > 255:
        hint = (" (bring a 16-bit image to 8 bits first, e.g. (image // 257).astype('uint8'))"
                if high > 255 else "")
        raise ValueError(f"{what}: integer values {low}..{high} ({image.dtype}); expected pixel "
                         f"values 0..255{hint}")
    return image


#: The file of a training run folder that holds the colour statistics its images were
#: normalised to (``TrainConfig.color_norm``), ``{"mean": [r, g, b], "std": [r, g, b]}``.
RUN_COLOR_TARGET = "color_target.json"


def check_color_target(value, what: str = "color_target") -> dict[str, list[float]] | None:
    """``None`` (no colour normalisation) or ``{"mean": [r, g, b], "std": [r, g, b]}``: the
    per-channel mean in ``[0, 255]`` and standard deviation in ``(0, 255]`` images are brought
    to, returned as plain floats.

    Raises:
        ValueError: Anything else (another type, missing or extra keys, not three finite
            numbers, out of range); the message names ``what``.
    """
    if value is None:
        return None
    expected = ('expected None or {"mean": [r, g, b], "std": [r, g, b]} (per-channel mean in '
                "0..255, standard deviation in (0, 255])")
    if not isinstance(value, dict) or set(value) != {"mean", "std"}:
        raise ValueError(f"{what}: {expected}, got {value!r}")
    target = {}
    for key, low_ok in (("mean", True), ("std", False)):
        numbers = value[key]
        if (isinstance(numbers, (str, bytes)) or not hasattr(numbers, "__len__")
                or len(numbers) != 3 or any(isinstance(v, (bool, np.bool_, str, bytes))
                                            or not isinstance(v, (int, float, np.number))
                                            for v in numbers)):
            raise ValueError(f"{what}: {expected}, got {key} = {numbers!r}")
        numbers = [float(v) for v in numbers]
        if not all(math.isfinite(v) and (0.0 <= v if low_ok else 0.0 < v) and v <= 255.0
                   for v in numbers):
            raise ValueError(f"{what}: {expected}, got {key} = {numbers}")
        target[key] = numbers
    return target


def normalize_colors(image, target) -> np.ndarray:
    """Test-time colour normalisation: each channel of the image shifted and scaled so that
    its mean and standard deviation over the image become those of ``target``, rounded and
    clipped to 0..255.

    Every runtime applies it to the image at its own size, before resizing it for the network
    (a Segmenter's ``color_target``; the ``extra`` of its LiteRT / SavedModel sidecars). It
    brings a dusk or over-exposed frame, or one with a colour cast, to the statistics of the
    training frames: the colour jitter of training varies each frame around its own levels, a
    darker camera is outside that (``docs/results.md``, "Test-time colour normalisation"). A
    channel's standard deviation is taken as at least 1 (a flat channel becomes the target
    mean).

    Args:
        image: ``(H, W, 3)`` RGB, values 0..255 (:func:`check_pixels`).
        target: ``{"mean": [r, g, b], "std": [r, g, b]}`` (:func:`check_color_target`), e.g.
            the statistics of the training images
            (:func:`deconvnet_tf.data.stats.color_statistics`); ``None`` returns the image
            unchanged.

    Returns:
        ``uint8 (H, W, 3)`` (``image`` itself when ``target`` is ``None``).

    Example:
        >>> image = np.array([[[10, 20, 30], [30, 40, 50]]], np.uint8)
        >>> normalize_colors(image, {"mean": [100] * 3, "std": [50] * 3})
        array([[[ 50,  50,  50],
                [150, 150, 150]]], dtype=uint8)
    """
    target = check_color_target(target, "normalize_colors: target")
    image = check_pixels(image, "normalize_colors")
    if target is None:
        return image
    pixels = image.astype(np.float32)
    flat = pixels.reshape(-1, 3)
    mean = flat.mean(axis=0, dtype=np.float64)
    std = np.maximum(flat.std(axis=0, dtype=np.float64), 1.0)
    scale = (np.asarray(target["std"]) / std).astype(np.float32)
    shift = (np.asarray(target["mean"]) - mean * np.asarray(target["std"]) / std).astype(
        np.float32)
    return np.clip(np.rint(pixels * scale + shift), 0, 255).astype(np.uint8)


def mark_png(data: bytes) -> bytes:
    """Adds the :data:`OUTPUT_MARKER` ``tEXt`` chunk after the ``IHDR`` of an encoded PNG."""
    data = bytes(data)
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("mark_png: not a PNG starting with its IHDR chunk")
    body = b"tEXt" + OUTPUT_MARKER[0] + b"\x00" + OUTPUT_MARKER[1]
    chunk = (len(body) - 4).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    return data[:33] + chunk + data[33:]


def is_project_output(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a PNG written by this project (carries :data:`OUTPUT_MARKER`)."""
    expected = b"tEXt" + OUTPUT_MARKER[0] + b"\x00" + OUTPUT_MARKER[1]
    try:
        with open(path, "rb") as handle:
            head = handle.read(33 + 4 + len(expected))
    except OSError:
        return False
    return head[:8] == b"\x89PNG\r\n\x1a\n" and head[37:] == expected


def _folder_images(folder: Path) -> tuple[list[Path], int]:
    found, outputs = [], 0
    for p in sorted(folder.iterdir()):
        if not (p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
            continue
        if p.suffix.lower() == ".png" and is_project_output(p):
            outputs += 1
        else:
            found.append(p)
    return found, outputs


def list_images(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Expands image files and folders (non-recursive, sorted) into image paths.

    Folders contribute their files with an image suffix (:data:`IMAGE_SUFFIXES`), except the
    outputs this project wrote there (see :func:`is_project_output`). A file named explicitly
    is used as given.

    Raises:
        FileNotFoundError: An input does not exist.
        ValueError: A folder holds no images, or a file is not an image type.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found, outputs = _folder_images(item)
            if not found:
                note = (f"; {outputs} file(s) there are outputs of deconvnet-tf and are not read"
                        if outputs else "")
                raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in folder "
                                 f"{str(item)!r}{note}")
            paths += found
        elif item.is_file():
            if item.suffix.lower() not in IMAGE_SUFFIXES:
                raise ValueError(f"{str(item)!r} is not an image file "
                                 f"({', '.join(IMAGE_SUFFIXES)})")
            paths.append(item)
        else:
            raise FileNotFoundError(f"Input not found: {str(item)!r} does not exist")
    return paths


# ------------------------------------------------------------------------------ writing outputs
def ensure_output_dir(path: str | os.PathLike, what: str = "--output") -> Path:
    """Creates the output folder if needed and checks that files can be created in it.

    Raises:
        OutputError: ``path`` is a file, cannot be created, or is not writable (read-only
            file system, permissions); the message names ``what`` and the folder.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {str(path)!r} is a file; expected a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".deconvnet-write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        if isinstance(err, (FileExistsError, NotADirectoryError)):
            reason = "a part of the path is a file"
        raise OutputError(f"{what} {str(path)!r}: cannot write there ({reason})") from None
    return path


def check_creatable(path: str | os.PathLike, what: str,
                    error: type[Exception] = OutputError) -> Path:
    """Checks, without creating anything, that ``path`` can be written later.

    Walks up to the nearest folder on the way to ``path`` that exists (for an existing file,
    the folder holding it) and creates and removes a probe file there, so a long job (an
    evaluation, an export) fails before it starts rather than when it writes its result.

    Raises:
        error: The nearest existing path is a file, or the folder does not accept a new file
            (read-only file system, permissions); the message names ``what``, ``path`` and the
            folder.
    """
    path = Path(path)
    existing = path.parent if path.is_file() else path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise error(f"{what} {str(path)!r}: {str(existing)!r} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".deconvnet-write-test-{os.getpid()}-",
                                     dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise error(f"{what} {str(path)!r} is not writable ({str(existing)!r}: "
                    f"{err.strerror or err})") from err
    return path


@contextlib.contextmanager
def output_folder(path: str | os.PathLike, what: str = "--output") -> Iterator[Path]:
    """:func:`ensure_output_dir` for the length of a ``with`` block: the folders it had to
    create are removed again when the block ends and they are still empty, so a run that fails
    (or writes nothing) leaves no empty folder behind. Folders that existed before, and folders
    with anything in them, are never touched.

    Example:

    >>> with output_folder("out/masks") as folder:      # doctest: +SKIP
    ...     write_everything(folder)

    Raises:
        OutputError: As :func:`ensure_output_dir`.
    """
    path = Path(path)
    created = []  # innermost first
    part = path
    while not os.path.lexists(part) and part != part.parent:
        created.append(part)
        part = part.parent
    try:
        yield ensure_output_dir(path, what)
    finally:
        for folder in created:
            try:
                folder.rmdir()
            except OSError:  # not empty (or gone): it and its parents stay
                break


def new_file_mode() -> int:
    """The permission bits a plain ``open(path, "w")`` gives a new file: ``0o666`` less the
    process umask. ``tempfile.mkstemp`` creates its files ``0o600``; the atomic writers give
    their temporary file these bits before it takes the final name, so an output (a mask, a
    saved model) is as readable as any other file its user creates."""
    umask = None
    try:
        with open("/proc/self/status") as status:  # Linux: read without changing it
            umask = next((int(line.split()[1], 8) for line in status
                          if line.startswith("Umask:")), None)
    except (OSError, ValueError, IndexError):
        pass
    if umask is None:  # elsewhere: set and restore (not thread-safe, but momentary)
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def make_temp_file(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """``tempfile.mkstemp`` next to ``path`` (a hidden name that starts with ``.<name>.`` and
    ends in ``suffix``), with the permission bits of :func:`new_file_mode`: ``(fd, temporary
    path)``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.chmod(tmp, new_file_mode())
    except OSError:
        pass  # a file system without POSIX modes: keep what mkstemp gave
    return fd, tmp


def _publish(tmp: str, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic and fails when the name exists
    except FileExistsError:
        raise OutputError(f"{str(path)!r} already exists; pass --overwrite to replace it") from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                             errno.EMLINK):
            raise
        if os.path.lexists(path):  # no hard links here: check, then move
            raise OutputError(f"{str(path)!r} already exists; pass --overwrite to replace "
                              "it") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _write_atomic(path: str | os.PathLike, write, overwrite: bool) -> Path:
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{str(path)!r} is a folder; cannot write a file there")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp_file(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        _publish(tmp, path, overwrite)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return path


def write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    """Writes ``data`` to ``path`` atomically through a unique temporary file next to it.

    Args:
        path: Target file (its folder is created).
        data: The bytes.
        overwrite: Replace an existing file; ``False`` raises :class:`OutputError` instead
            (also when another process creates the file meanwhile).
    """
    return _write_atomic(path, lambda handle: handle.write(data), overwrite)


def save_npy(path: str | os.PathLike, array: np.ndarray, *, overwrite: bool = True) -> Path:
    """``np.save`` of ``array`` to ``path``, atomically (see :func:`write_bytes`)."""
    return _write_atomic(path, lambda handle: np.save(handle, np.asarray(array),
                                                      allow_pickle=False), overwrite)


# ------------------------------------------------------------------------------ the size rule
@dataclass(frozen=True)
class SizePlan:
    """How an image of ``(height, width)`` reaches a model.

    Attributes:
        height, width: The image.
        scaled: ``(h, w)`` the image is resized to (equal to the image's size when not resized).
        padded: ``(h, w)`` the model gets: ``scaled`` plus bottom/right padding up to the
            model's minimum side.
        downscaled: Whether the image was scaled down to keep within the pixel budget.
    """

    height: int
    width: int
    scaled: tuple[int, int]
    padded: tuple[int, int]
    downscaled: bool = False

    @property
    def identity(self) -> bool:
        """The model gets the image as it is."""
        return self.scaled == self.padded == (self.height, self.width)

    @property
    def resized(self) -> bool:
        return self.scaled != (self.height, self.width)


def plan_size(
    height: int,
    width: int,
    *,
    input_size: tuple[int, int] | None = None,
    min_size: int = 1,
    max_pixels: int | None = None,
) -> SizePlan:
    """The size rule shared by the Keras, SavedModel and LiteRT predictors.

    1. A model with a fixed ``input_size`` gets the image resized to it.
    2. Otherwise an image of more than ``max_pixels`` pixels is scaled down, keeping its aspect
       ratio, to at most ``max_pixels`` (``None``: no limit).
    3. Then a side shorter than ``min_size`` (the network's minimum) is padded at the
       bottom/right up to it (the caller pads with the model's mean colour and crops back).

    Example:
        >>> plan_size(3000, 4000, max_pixels=2_000_000).scaled
        (1224, 1632)
        >>> plan_size(9, 30, min_size=17).padded
        (17, 30)
    """
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"empty image of size {height}x{width}")
    if input_size is not None:
        fixed = (int(input_size[0]), int(input_size[1]))
        return SizePlan(height, width, fixed, fixed)
    if max_pixels is not None and int(max_pixels) < 1:
        raise ValueError(f"max_pixels must be >= 1 or None, got {max_pixels}")
    scaled, downscaled = (height, width), False
    if max_pixels is not None and height * width > int(max_pixels):
        scale = math.sqrt(int(max_pixels) / (height * width))
        scaled = (max(1, int(height * scale)), max(1, int(width * scale)))
        downscaled = True
    minimum = max(1, int(min_size or 1))
    padded = (max(scaled[0], minimum), max(scaled[1], minimum))
    return SizePlan(height, width, scaled, padded, downscaled)


def downscale_message(path: str | os.PathLike, plan: SizePlan, max_pixels: int) -> str:
    """The warning printed when ``plan`` scaled an image down to the pixel budget."""
    return (f"{str(path)!r} is {plan.height}x{plan.width} "
            f"({plan.height * plan.width:,} pixels), above --max-pixels {int(max_pixels)}: "
            f"predicting at {plan.scaled[0]}x{plan.scaled[1]} and resizing the labels back to "
            f"{plan.height}x{plan.width}")


def resize_channels(array: np.ndarray, height: int, width: int, *,
                    interpolation: int | None = None) -> np.ndarray:
    """Resizes an ``(h, w, C)`` array (any C) to ``(height, width, C)``, bilinear by default."""
    import cv2

    array = np.asarray(array)
    if array.shape[:2] == (height, width):
        return array
    interpolation = cv2.INTER_LINEAR if interpolation is None else interpolation
    if array.ndim == 2:
        return cv2.resize(array, (width, height), interpolation=interpolation)
    channels = array.shape[2]
    step = 128  # OpenCV's channel limit (512 in OpenCV 4, 128 in OpenCV 5)
    parts = [cv2.resize(np.ascontiguousarray(array[..., i:i + step]), (width, height),
                        interpolation=interpolation) for i in range(0, channels, step)]
    return np.concatenate([p.reshape(height, width, -1) for p in parts], axis=-1)


def fit_image(image: np.ndarray, plan: SizePlan, pad_value=0) -> np.ndarray:
    """The model input of ``plan``: ``image`` resized to ``plan.scaled`` (area interpolation
    when scaling down for the pixel budget, bilinear otherwise) and padded to ``plan.padded``
    with ``pad_value`` (a number or an RGB triple). Keeps the image's dtype."""
    import cv2

    image = np.asarray(image)
    if plan.identity:
        return image
    out = image
    if plan.resized:
        interpolation = cv2.INTER_AREA if plan.downscaled else cv2.INTER_LINEAR
        out = resize_channels(image, *plan.scaled, interpolation=interpolation)
    if plan.padded != plan.scaled:
        padded = np.empty(plan.padded + image.shape[2:], image.dtype)
        padded[...] = np.asarray(pad_value).astype(image.dtype)
        padded[:plan.scaled[0], :plan.scaled[1]] = out
        out = padded
    return out


def restore_scores(scores: np.ndarray, plan: SizePlan) -> np.ndarray:
    """Maps ``(padded_h, padded_w, C)`` model scores back to the image: crops the padding and
    resizes (bilinear) to ``(plan.height, plan.width)``."""
    scores = np.asarray(scores)
    scores = scores[:plan.scaled[0], :plan.scaled[1]]
    return resize_channels(scores, plan.height, plan.width)


def average_with_mirror(run, batch: np.ndarray) -> np.ndarray:
    """Test-time flip, the one rule of every runtime: ``run(batch)`` averaged with ``run`` of
    the horizontally mirrored ``(N, H, W, 3)`` batch, mirrored back (``run`` gives
    ``(N, H, W, C)`` class probabilities at the batch's size)."""
    probabilities = np.asarray(run(batch), np.float32)
    mirrored = np.asarray(run(np.ascontiguousarray(batch[:, :, ::-1])), np.float32)
    return 0.5 * (probabilities + mirrored[:, :, ::-1])


def upscale_labels(probabilities: np.ndarray, height: int, width: int) -> np.ndarray:
    """``argmax`` of the probabilities resized (bilinear) to ``(height, width)``.

    Computed a few classes at a time (about 64 MB of resized scores at once), so that memory
    stays near ``height x width x 9`` bytes: the full-size probability map is never built.
    Ties go to the lowest class, like ``np.argmax``.

    Returns:
        ``(height, width)`` labels, uint8 (int32 above 256 classes).
    """
    probabilities = np.asarray(probabilities, np.float32)
    classes = probabilities.shape[-1]
    dtype = np.uint8 if classes <= 256 else np.int32
    if probabilities.shape[:2] == (height, width):
        return probabilities.argmax(-1).astype(dtype)
    group = max(1, min(classes, (64 << 20) // max(1, height * width * 4)))
    best = np.full((height, width), -np.inf, np.float32)
    labels = np.zeros((height, width), dtype)
    better = np.empty((height, width), bool)
    for start in range(0, classes, group):
        part = resize_channels(probabilities[..., start:start + group], height, width)
        part = part.reshape(height, width, -1)
        for offset in range(part.shape[-1]):
            channel = part[..., offset]
            np.greater(channel, best, out=better)
            np.copyto(best, channel, where=better)
            labels[better] = start + offset
    return labels


# ------------------------------------------------------------------ run-folder metadata
def classes_from_meta(path: str | os.PathLike) -> list[str] | None:
    """The non-empty ``classes`` list of a dataset ``meta.json`` as strings, or ``None`` (no
    such file, not UTF-8 JSON, no such list)."""
    try:
        meta = json.loads(Path(path).read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    classes = meta.get("classes") if isinstance(meta, dict) else None
    if isinstance(classes, list) and classes:
        return [str(c) for c in classes]
    return None


def find_class_names(model_path: str | os.PathLike | None) -> list[str] | None:
    """Class names for a model file, found the way a run folder stores them.

    Looks for ``meta.json`` next to the model, then for a training run's ``config.json``
    (next to the model or one folder up, for ``checkpoints/*.keras``) and reads the
    ``meta.json`` of its dataset (``data``, or the generated ``<run>/synthetic_data``).

    Returns:
        The class names, or ``None`` when nothing was found.
    """
    if model_path is None:
        return None
    path = Path(model_path).resolve()
    direct = path.parent / "meta.json"
    if direct.is_file():
        return classes_from_meta(direct)
    for folder in (path.parent, path.parent.parent):
        config_path = folder / "config.json"
        if not config_path.is_file():
            continue
        try:
            config = json.loads(config_path.read_text())
        except json.JSONDecodeError:
            continue
        if not isinstance(config, dict):
            continue
        if config.get("data"):
            root = Path(config["data"])
            if not root.is_absolute() and (folder / root).exists():
                root = folder / root
        elif not config.get("tfds"):
            root = folder / "synthetic_data"
        else:
            continue
        if (root / "meta.json").is_file():
            return classes_from_meta(root / "meta.json")
    return None
