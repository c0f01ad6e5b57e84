"""Running an exported ``.tflite`` DeconvNet with the LiteRT interpreter (``ai-edge-litert``).

This is the mobile path in Python: it imports ``ai_edge_litert``, NumPy, OpenCV,
:mod:`deconvnet_tf.io` and :mod:`deconvnet_tf.render` only, never TensorFlow or Keras, so it runs where only the LiteRT
wheel is installed (a Raspberry Pi, a slim container) and mirrors what an Android/iOS app does.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from deconvnet_tf.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    ImageReadError,
    average_with_mirror,
    check_color_target,
    check_pixels,
    downscale_message,
    fit_image,
    list_images,
    normalize_colors,
    output_folder,
    plan_size,
    read_image,
    resize_channels,
    restore_scores,
    upscale_labels,
)
from deconvnet_tf.lite.metadata import ModelMetadata, read_metadata
from deconvnet_tf.render import make_palette, plan_predictions, save_prediction

__all__ = ["IMAGE_SUFFIXES", "LiteSegmenter", "list_images", "predict_paths", "read_image"]

_DEFAULT_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)


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
    """Bilinear resize of an ``(H, W, C)`` array (any C); :func:`deconvnet_tf.io.resize_channels`."""
    return resize_channels(array, height, width)


def _check_options(threads, max_pixels, flip) -> None:
    """``threads`` an integer >= 1, ``max_pixels`` one or ``None``, ``flip`` a bool or ``None``.

    Raises:
        ValueError: Naming the option and the value.
    """
    for name, value in (("threads", threads), ("max_pixels", max_pixels)):
        if value is None and name == "max_pixels":
            continue
        if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
                or value < 1):
            raise ValueError(f"{name} must be an integer >= 1{' or None' * (name != 'threads')}"
                             f", got {value!r}")
    if flip is not None and not isinstance(flip, (bool, np.bool_)):
        raise ValueError(f"flip must be true, false or None, got {flip!r}")


class LiteSegmenter:
    """Semantic segmentation with an exported ``.tflite`` model on the LiteRT interpreter.

    The model's input is raw RGB uint8 ``[1, H, W, 3]`` (preprocessing is inside the model);
    its signature ``serving_default`` returns ``probabilities`` ``[1, H, W, C]`` and ``labels``
    ``[1, H, W]``. Images reach the model by the size rule of the Keras and SavedModel
    predictors (:func:`deconvnet_tf.io.plan_size`): fixed-size models get the image resized to
    their input (bilinear) and the probabilities resized back (bilinear) before the argmax;
    dynamic-size models run at the image's own size, except that an image above
    ``max_pixels`` is scaled down (and the probabilities back up) and a side shorter than the
    network's minimum is padded at the bottom/right with the model's mean colour (and the
    probabilities cropped back).

    Args:
        model_path: A ``.tflite`` file written by :func:`deconvnet_tf.export.export_tflite`.
        threads: CPU threads of the interpreter (XNNPACK delegate, LiteRT's default).
        metadata: Metadata to use instead of the ``<model>.json`` sidecar (optional; without
            either, class names are ``class_<i>`` and the palette is the default).
        max_pixels: Pixel budget of a dynamic-size model (``None``: no limit, the default);
            see :func:`deconvnet_tf.io.plan_size`.
        flip: Average each image's probabilities with those of its mirror image (mirrored
            back) at the model's input size, at twice the cost. ``None`` (default): the
            exported Segmenter's ``test_time_flip`` (sidecar ``extra``), else off.
        color_target: The per-channel ``{"mean": [r, g, b], "std": [r, g, b]}`` each image
            is brought to before the network (:func:`deconvnet_tf.io.normalize_colors`);
            ``"model"`` (default): the exported Segmenter's (sidecar ``extra``), else off;
            ``None``: off.

    Raises:
        FileNotFoundError: ``model_path`` does not exist.
        ValueError: The file is not a segmentation model of this package (inputs/outputs).

    Example:

    >>> seg = LiteSegmenter("saved_models/deconvnet_tiny.tflite", threads=2)
    >>> label, probs = seg.predict(image)        # image: (H, W, 3) uint8 RGB
    >>> label.shape == image.shape[:2], probs.shape[-1] == seg.num_classes
    """

    def __init__(self, model_path: str | os.PathLike, threads: int = 2,
                 metadata: ModelMetadata | None = None, max_pixels: int | None = None,
                 flip: bool | None = None, color_target: dict | None | str = "model"):
        if not isinstance(model_path, (str, os.PathLike)):
            raise TypeError(f"LiteSegmenter: model_path must be a path, got "
                            f"{type(model_path).__name__}")
        if not os.fspath(model_path):
            raise ValueError("LiteSegmenter: model_path is empty; expected a .tflite file")
        path = Path(model_path)
        if path.is_dir():
            raise ValueError(f"TFLite model {str(path)!r} is a folder; expected a .tflite file "
                             "(a SavedModel folder runs with deconvnet-predict)")
        if not path.is_file():
            raise FileNotFoundError(f"TFLite model not found: {str(path)!r}")
        _check_options(threads, max_pixels, flip)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as err:
            raise ImportError(f"running .tflite models needs the LiteRT runtime: pip install "
                              f"ai-edge-litert (or deconvnet-tf[lite]); import failed: {err}"
                              ) from err

        self.path = path
        self.threads = int(threads)
        self.max_pixels = None if max_pixels is None else int(max_pixels)
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=self.threads)
        except (ValueError, RuntimeError) as err:
            detail = next((line.strip() for line in str(err).splitlines() if line.strip()),
                          type(err).__name__)
            hint = " (a .keras model runs with deconvnet-predict)" if path.suffix == ".keras" else ""
            raise ValueError(f"{str(path)!r} is not a TFLite model LiteRT can load{hint}: "
                             f"{detail}") from err
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
        mean_bgr = (self.metadata.mean_bgr if self.metadata is not None
                    and getattr(self.metadata, "mean_bgr", None) else _DEFAULT_MEAN_BGR)
        self.pad_rgb = tuple(int(round(float(v))) for v in list(mean_bgr)[::-1])
        self.flip = (bool(flip) if flip is not None else
                     bool(self.metadata is not None and self.metadata.test_time_flip))
        what = "color_target"
        if isinstance(color_target, str) and color_target == "model":
            color_target = (self.metadata.extra or {}).get("color_target") if self.metadata \
                else None
            what = f"the metadata of {str(path)!r} (extra.color_target)"
        #: The per-channel mean / std each image is brought to first (``None``: off).
        self.color_target = check_color_target(color_target, what)

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
        return make_palette(self.num_classes)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Runs the signature on a ``[1, H, W, 3]`` batch as is (no resizing).

        Returns:
            ``{"probabilities": float32 [1, H, W, C], "labels": int32 [1, H, W]}`` (dequantised).

        Raises:
            ValueError: Not ``[1, H, W, 3]`` pixel values 0..255 (other dtypes than uint8 are
                checked and rounded), not the model's fixed size, or a side below its minimum.
        """
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[0] != 1 or batch.shape[-1] != 3:
            raise ValueError(f"run expects a [1, H, W, 3] batch, got shape {batch.shape}")
        if batch.dtype != np.uint8:  # the pixels checked and rounded, as predict does
            pixels = check_pixels(batch[0], "run")
            batch = np.clip(np.round(pixels.astype(np.float32)), 0, 255).astype(np.uint8)[None]
        if self.fixed_size is not None and tuple(batch.shape[1:3]) != self.fixed_size:
            raise ValueError(f"{self.path.name} takes {self.fixed_size[0]}x{self.fixed_size[1]} "
                             f"images, got {batch.shape[1]}x{batch.shape[2]}")
        if min(batch.shape[1:3]) < max(1, self.min_input_size):
            side = max(1, self.min_input_size)
            raise ValueError(f"{self.path.name} takes images of at least {side}x{side}, got "
                             f"{batch.shape[1]}x{batch.shape[2]}; predict() pads smaller ones")
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
            ValueError: ``image`` is not ``(H, W, 3)`` pixel values 0..255
                (:func:`deconvnet_tf.io.check_pixels`).
        """
        image = check_pixels(image, "predict")
        if self.color_target is not None:
            image = normalize_colors(image, self.color_target)
        elif image.dtype != np.uint8:
            image = np.clip(np.round(image.astype(np.float32)), 0, 255).astype(np.uint8)
        plan = plan_size(*image.shape[:2], input_size=self.fixed_size,
                         min_size=self.min_input_size, max_pixels=self.max_pixels)
        if plan.identity and not self.flip:
            out = self.run(image[None])
            return out["labels"][0], out["probabilities"][0]
        fitted = image if plan.identity else fit_image(image, plan, self.pad_rgb)
        probabilities = lambda batch: self.run(batch)["probabilities"]  # noqa: E731
        probs = (average_with_mirror(probabilities, fitted[None]) if self.flip
                 else probabilities(fitted[None]))[0]
        if not plan.identity:
            probs = restore_scores(probs, plan)
        return np.argmax(probs, axis=-1).astype(np.int32), probs


def predict_paths(
    model: str | os.PathLike | LiteSegmenter,
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    output: str | os.PathLike,
    *,
    threads: int = 2,
    save_probabilities: bool = False,
    overwrite: bool = False,
    skip_errors: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    on_skip: Callable[[Path, str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    on_written: Callable[[dict[str, Path]], None] | None = None,
) -> list[dict[str, Path]]:
    """Segments image files with a ``.tflite`` model and writes the standard outputs.

    Per image (via :func:`deconvnet_tf.render.save_prediction`, the writer of
    ``deconvnet-predict``): ``<stem>_labels.png`` (class ids), ``<stem>_color.png``,
    ``<stem>_overlay.png`` and, with ``save_probabilities``, ``<stem>_probs.npy``, written as
    soon as the image is done. The outputs are planned and checked before any work
    (:func:`deconvnet_tf.render.plan_predictions`).

    Args:
        model: A ``.tflite`` path or a :class:`LiteSegmenter`.
        inputs: An image file, a directory of images, or a list of files (folders skip this
            project's outputs).
        output: Output directory (created).
        threads: Interpreter threads (when ``model`` is a path).
        save_probabilities: Also write the class probabilities.
        overwrite: Replace the outputs of an earlier run (never an input).
        skip_errors: Report unreadable images (``on_skip``) and go on instead of raising.
        max_pixels: Pixel budget (``None``: no limit): larger images are scaled down for the
            model and the labels scaled back (``on_warning`` says so).
        on_skip: ``on_skip(path, message)`` per skipped image (default: a warning).
        on_warning: ``on_warning(message)`` (default: :func:`warnings.warn`).
        on_written: Called with each image's paths once they are written.

    Returns:
        One dict of written paths per image that was not skipped, in input order.
    """
    warn = on_warning or (lambda message: warnings.warn(message, stacklevel=3))
    skip = on_skip or (lambda path, message: warn(f"skipped {str(path)!r}: {message}"))
    planned = plan_predictions(inputs, output, probabilities=save_probabilities,
                               overwrite=overwrite)
    with output_folder(output):  # removed again if nothing is written
        segmenter = model if isinstance(model, LiteSegmenter) else LiteSegmenter(model, threads)
        written = []
        for path, _ in planned:
            try:
                image = read_image(path)
            except ImageReadError as err:
                if not skip_errors:
                    raise
                skip(path, str(err))
                continue
            height, width = image.shape[:2]
            plan = plan_size(height, width, max_pixels=max_pixels)
            if plan.downscaled:
                warn(downscale_message(path, plan, max_pixels))
                _, probs = segmenter.predict(fit_image(image, plan))
                label = upscale_labels(probs, height, width)
                probs = resize_channels(probs, height, width) if save_probabilities else None
            else:
                label, probs = segmenter.predict(image)
            paths = save_prediction(output, path.stem, image, label,
                                    probs if save_probabilities else None,
                                    palette=segmenter.palette, overwrite=overwrite)
            written.append(paths)
            if on_written is not None:
                on_written(paths)
        return written
