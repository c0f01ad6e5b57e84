"""Running an exported ``.tflite`` DeconvNet with the LiteRT interpreter (``ai-edge-litert``).

This is the mobile path in Python: it imports ``ai_edge_litert``, NumPy, OpenCV and
:mod:`deconvnet_tf.render` only, never TensorFlow or Keras, so it runs where only the LiteRT
wheel is installed (a Raspberry Pi, a slim container) and mirrors what an Android/iOS app does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from deconvnet_tf.lite.metadata import ModelMetadata, read_metadata

__all__ = ["IMAGE_SUFFIXES", "LiteSegmenter", "list_images", "predict_paths", "read_image"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _dequantize(array: np.ndarray, details: dict) -> np.ndarray:
    params = details.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), np.float32)
    if array.dtype.kind in "iu" and scales.size and np.any(scales != 0):
        zero = np.asarray(params.get("zero_points", [0]), np.float32)
        return (array.astype(np.float32) - zero) * scales
    return array.astype(np.float32, copy=False)


def _quantize_input(image: np.ndarray, details: dict) -> np.ndarray:
    dtype = np.dtype(details["dtype"])
    params = details.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), np.float32)
    if dtype.kind in "iu" and scales.size and np.any(scales != 0):
        zero = float(np.asarray(params.get("zero_points", [0])).ravel()[0])
        info = np.iinfo(dtype)
        q = np.round(image.astype(np.float32) / float(scales.ravel()[0]) + zero)
        return np.clip(q, info.min, info.max).astype(dtype)
    return image.astype(dtype)


def _resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an ``(H, W, C)`` array (any C) with OpenCV."""
    import cv2

    if array.shape[:2] == (height, width):
        return array
    channels = array.shape[2]
    if channels <= 512:  # OpenCV's channel limit
        out = cv2.resize(array, (width, height), interpolation=cv2.INTER_LINEAR)
        return out.reshape(height, width, channels)
    parts = [cv2.resize(np.ascontiguousarray(array[..., i:i + 512]), (width, height),
                        interpolation=cv2.INTER_LINEAR) for i in range(0, channels, 512)]
    return np.concatenate([p.reshape(height, width, -1) for p in parts], axis=-1)


class LiteSegmenter:
    """Semantic segmentation with an exported ``.tflite`` model on the LiteRT interpreter.

    The model's input is raw RGB uint8 ``[1, H, W, 3]`` (preprocessing is inside the model);
    its signature ``serving_default`` returns ``probabilities`` ``[1, H, W, C]`` and ``labels``
    ``[1, H, W]``. Fixed-size models get the image resized to their input (bilinear) and the
    probabilities resized back (bilinear) before the argmax; dynamic-size models run at the
    image's own size (images smaller than the network's minimum are scaled up and back).

    Args:
        model_path: A ``.tflite`` file written by :func:`deconvnet_tf.export.export_tflite`.
        threads: CPU threads of the interpreter (XNNPACK delegate, LiteRT's default).
        metadata: Metadata to use instead of the ``<model>.json`` sidecar (optional; without
            either, class names are ``class_<i>`` and the palette is the default).

    Raises:
        FileNotFoundError: ``model_path`` does not exist.
        ValueError: The file is not a segmentation model of this package (inputs/outputs).

    Example:

    >>> seg = LiteSegmenter("saved_models/deconvnet_tiny.tflite", threads=2)
    >>> label, probs = seg.predict(image)        # image: (H, W, 3) uint8 RGB
    >>> label.shape == image.shape[:2], probs.shape[-1] == seg.num_classes
    """

    def __init__(self, model_path: str | os.PathLike, threads: int = 2,
                 metadata: ModelMetadata | None = None):
        from ai_edge_litert.interpreter import Interpreter

        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"TFLite model not found: {str(path)!r}")
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.path = path
        self.threads = int(threads)
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=self.threads)
        except (ValueError, RuntimeError) as err:
            raise ValueError(f"{str(path)!r} is not a TFLite model LiteRT can load: {err}") from err
        signatures = self.interpreter.get_signature_list()
        if not signatures:
            raise ValueError(f"{str(path)!r} has no signature; export it with deconvnet-export")
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        self._runner = self.interpreter.get_signature_runner(key)
        inputs = self._runner.get_input_details()
        if len(inputs) != 1:
            raise ValueError(f"{str(path)!r}: expected one image input, found {sorted(inputs)}")
        self.input_name, self._input = next(iter(inputs.items()))
        self._outputs = self._runner.get_output_details()
        if "probabilities" not in self._outputs:
            raise ValueError(f"{str(path)!r}: no 'probabilities' output (outputs: "
                             f"{sorted(self._outputs)}); not a deconvnet-export model")
        shape = [int(d) for d in self._input["shape_signature"]]
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(f"{str(path)!r}: input must be [1, H, W, 3], got {shape}")
        self.fixed_size = (shape[1], shape[2]) if shape[1] > 0 and shape[2] > 0 else None
        self.metadata = metadata if metadata is not None else read_metadata(path, required=False)
        self.num_classes = int(self._outputs["probabilities"]["shape_signature"][-1])
        if self.metadata is not None and self.metadata.num_classes != self.num_classes:
            raise ValueError(f"{str(path)!r}: the sidecar lists {self.metadata.num_classes} "
                             f"classes, the model outputs {self.num_classes}")
        self.min_input_size = self.metadata.min_input_size if self.metadata else 1

    @property
    def class_names(self) -> list[str]:
        """Class names from the metadata (``class_<i>`` when there is none)."""
        if self.metadata is not None:
            return list(self.metadata.class_names)
        return [f"class_{i}" for i in range(self.num_classes)]

    @property
    def palette(self) -> np.ndarray:
        """``(num_classes, 3)`` uint8 RGB palette."""
        if self.metadata is not None:
            return self.metadata.palette_array()
        from deconvnet_tf.render import make_palette

        return make_palette(self.num_classes)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Runs the signature on a ``[1, H, W, 3]`` batch as is (no resizing).

        Returns:
            ``{"probabilities": float32 [1, H, W, C], "labels": int32 [1, H, W]}`` (dequantised).
        """
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[0] != 1 or batch.shape[-1] != 3:
            raise ValueError(f"run expects a [1, H, W, 3] batch, got shape {batch.shape}")
        if self.fixed_size is not None and tuple(batch.shape[1:3]) != self.fixed_size:
            raise ValueError(f"{self.path.name} takes {self.fixed_size[0]}x{self.fixed_size[1]} "
                             f"images, got {batch.shape[1]}x{batch.shape[2]}")
        outputs = self._runner(**{self.input_name: _quantize_input(batch, self._input)})
        result = {"probabilities": _dequantize(outputs["probabilities"],
                                               self._outputs["probabilities"])}
        if "labels" in outputs:
            result["labels"] = outputs["labels"].astype(np.int32)
        else:
            result["labels"] = np.argmax(result["probabilities"], axis=-1).astype(np.int32)
        return result

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Segments one RGB image of any size.

        Args:
            image: ``(H, W, 3)`` RGB, uint8 (or numbers in 0..255).

        Returns:
            ``(label int32 (H, W), probabilities float32 (H, W, C))``.

        Raises:
            ValueError: ``image`` is not ``(H, W, 3)``.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
            raise ValueError(f"predict expects an (H, W, 3) RGB image, got shape {image.shape}")
        if image.dtype != np.uint8:
            image = np.clip(np.round(image.astype(np.float32)), 0, 255).astype(np.uint8)
        height, width = image.shape[:2]
        if self.fixed_size is not None:
            target = self.fixed_size
        elif min(height, width) < self.min_input_size:
            scale = self.min_input_size / min(height, width)
            target = (max(self.min_input_size, round(height * scale)),
                      max(self.min_input_size, round(width * scale)))
        else:
            target = (height, width)
        if target == (height, width):
            out = self.run(image[None])
            return out["labels"][0], out["probabilities"][0]
        out = self.run(_resize(image, *target)[None])
        probs = _resize(out["probabilities"][0], height, width)
        return np.argmax(probs, axis=-1).astype(np.int32), probs


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as ``(H, W, 3)`` uint8 RGB (OpenCV).

    Raises:
        ValueError: The file is missing, unreadable or not an image.
    """
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"Cannot read image {str(path)!r}: missing, corrupt or not an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def list_images(source: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """The image files of a file, a directory (sorted, non-recursive) or a list of paths.

    Raises:
        FileNotFoundError: A path does not exist.
        ValueError: A directory without images, or a file without an image suffix.
    """
    if isinstance(source, (str, os.PathLike)):
        source = [source]
    files: list[Path] = []
    for item in source:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {str(path)!r}")
            files += found
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise ValueError(f"{str(path)!r} is not an image file "
                                 f"({', '.join(IMAGE_SUFFIXES)})")
            files.append(path)
        else:
            raise FileNotFoundError(f"Input {str(path)!r} does not exist")
    return files


def predict_paths(
    model: str | os.PathLike | LiteSegmenter,
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    output: str | os.PathLike,
    *,
    threads: int = 2,
    save_probabilities: bool = False,
) -> list[dict[str, Path]]:
    """Segments image files with a ``.tflite`` model and writes the standard outputs.

    Per image (via :func:`deconvnet_tf.render.save_prediction`, the writer of
    ``deconvnet-predict``): ``<stem>.png`` (class ids), ``<stem>_color.png``,
    ``<stem>_overlay.png`` and, with ``save_probabilities``, ``<stem>_probs.npy``.

    Args:
        model: A ``.tflite`` path or a :class:`LiteSegmenter`.
        inputs: An image file, a directory of images, or a list of files.
        output: Output directory (created).
        threads: Interpreter threads (when ``model`` is a path).
        save_probabilities: Also write the class probabilities.

    Returns:
        One dict of written paths per image, in input order.
    """
    from deconvnet_tf.render import save_prediction

    segmenter = model if isinstance(model, LiteSegmenter) else LiteSegmenter(model, threads)
    written = []
    for path in list_images(inputs):
        image = read_image(path)
        label, probs = segmenter.predict(image)
        written.append(save_prediction(output, path.stem, image, label,
                                       probs if save_probabilities else None,
                                       palette=segmenter.palette))
    return written
