"""The full inference pipeline of one image (whole or instance-wise, optional FCN ensemble,
optional dense CRF) and the file loop behind ``deconvnet-predict``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deconvnet_tf.inference.crf import (
    _each_file,
    _Progress,
    _warn_outside,
    crf_settings,
    dense_crf,
)
from deconvnet_tf.inference.ensemble import ENSEMBLE_METHODS, combine_probabilities
from deconvnet_tf.inference.instance import predict_instances
from deconvnet_tf.inference.postprocess import check_component_classes, keep_largest_component
from deconvnet_tf.inference.predict import as_predictor, predict_image, predict_images
from deconvnet_tf.inference.timing import stage
from deconvnet_tf.io import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    downscale_message,
    fit_image,
    output_folder,
    plan_size,
    read_image,
    resize_channels,
    upscale_labels,
)
from deconvnet_tf.render import plan_predictions, save_prediction

__all__ = ["InferenceOptions", "infer", "predict_files"]


@dataclass
class InferenceOptions:
    """How :func:`infer` turns an image into probabilities.

    Attributes:
        mode: ``"whole"`` (one pass over the image) or ``"instance"`` (object proposals).
        ensemble_method: ``"mean"`` or ``"product"`` when an ensemble model is given.
        crf: Apply the dense CRF at the end.
        crf_preset: ``"deconvnet"`` or ``"deeplab"``.
        crf_overrides: Extra :class:`~deconvnet_tf.inference.crf.CRFSettings` values.
        largest_component: Class indices whose pixels keep only their largest connected
            region, after the CRF
            (:func:`~deconvnet_tf.inference.postprocess.keep_largest_component`; a
            Segmenter's ``largest_component``); ``()``: none.
        input_size: Crop size of instance-wise inference.
        batch_size: Crops (instance mode) or images (whole mode) per model call.
        aggregate: ``"max"`` or ``"mean"`` (instance mode).
        proposals: Keyword arguments of
            :func:`~deconvnet_tf.inference.proposals.propose_boxes` (e.g. ``top_k``, ``edge``,
            ``method``, ``cache_dir``).
    """

    mode: str = "whole"
    ensemble_method: str = "mean"
    crf: bool = False
    crf_preset: str = "deconvnet"
    crf_overrides: dict = field(default_factory=dict)
    largest_component: tuple = ()
    input_size: int = 224
    batch_size: int = 8
    aggregate: str = "max"
    proposals: dict = field(default_factory=dict)

    def validate(self) -> "InferenceOptions":
        if self.mode not in ("whole", "instance"):
            raise ValueError(f"mode must be 'whole' or 'instance', got {self.mode!r}")
        if self.ensemble_method not in ENSEMBLE_METHODS:
            raise ValueError(f"ensemble method must be one of {ENSEMBLE_METHODS}, got "
                             f"{self.ensemble_method!r}")
        if self.aggregate not in ("max", "mean"):
            raise ValueError(f"aggregate must be 'max' or 'mean', got {self.aggregate!r}")
        if self.batch_size < 1 or self.input_size < 1:
            raise ValueError("batch_size and input_size must be >= 1")
        crf_settings(self.crf_preset, **self.crf_overrides)
        self.largest_component = check_component_classes(
            self.largest_component, what="InferenceOptions.largest_component")
        return self


def infer(
    model: Any, image: np.ndarray, options: InferenceOptions | None = None, *, ensemble: Any = None,
    timings: dict | None = None,
) -> np.ndarray:
    """Class probabilities ``(H, W, C)`` of one RGB image.

    Args:
        model: The DeconvNet (predictor, Keras model or path).
        image: RGB image ``(H, W, 3)`` uint8.
        options: :class:`InferenceOptions` (default: whole image, no CRF).
        ensemble: Optional second model run on the whole image (EDeconvNet: an FCN-8s) and
            combined by ``options.ensemble_method``.
        timings: A dict that gets the seconds of each stage added (the instance-wise stages,
            ``whole``, ``ensemble``, ``crf``: :mod:`deconvnet_tf.inference.timing`); ``None``
            measures nothing.

    Returns:
        Probabilities (after the CRF when ``options.crf``, then
        ``options.largest_component``).
    """
    options = (options or InferenceOptions()).validate()
    if options.mode == "whole":
        with stage(timings, "whole"):
            probs = predict_image(model, image)
    else:
        probs = predict_instances(model, image, input_size=options.input_size,
                                  batch_size=options.batch_size, aggregate=options.aggregate,
                                  proposals=options.proposals, timings=timings)
    if ensemble is not None:
        with stage(timings, "ensemble"):
            probs = combine_probabilities([probs, predict_image(ensemble, image)],
                                          options.ensemble_method)
    if options.crf:
        with stage(timings, "crf"):
            probs = dense_crf(np.clip(image, 0, 255).astype(np.uint8), probs,
                              preset=options.crf_preset, **options.crf_overrides)
    if options.largest_component:
        with stage(timings, "largest_component"):
            probs = keep_largest_component(probs, options.largest_component)
    return probs


class _PendingImages:
    """The images read by :func:`predict_files` and not yet predicted: :meth:`flush` predicts
    them (one batch in plain whole-image mode, else one by one) and writes each one's files."""

    def __init__(self, model, ensemble, options: InferenceOptions, output, counter, *,
                 total: int, save_probs: bool, overwrite: bool, max_pixels: int | None,
                 warn: Callable[[str], None]):
        self.model, self.ensemble, self.options, self.output = model, ensemble, options, output
        self.counter, self.total, self.warn = counter, total, warn
        self.save_probs, self.overwrite, self.max_pixels = save_probs, overwrite, max_pixels
        self.whole_batch = (options.mode == "whole" and ensemble is None and not options.crf
                            and not options.largest_component)
        self.step = options.batch_size if self.whole_batch else 1
        self.items: list[tuple] = []
        self.written: list[dict[str, Path]] = []
        self.first_seconds: float | None = None

    def add(self, item: tuple, image: np.ndarray) -> None:
        """Queues an image read from ``item[0]`` (scaled down to ``max_pixels``)."""
        path = item[0]
        plan = plan_size(*image.shape[:2], max_pixels=self.max_pixels)
        if plan.downscaled:
            self.warn(downscale_message(path, plan, self.max_pixels))
        self.items.append((path, image, fit_image(image, plan), plan))
        if len(self.items) >= self.step:
            self.flush()

    def _predict(self, smalls: list[np.ndarray]) -> list[np.ndarray]:
        """Probabilities of the (scaled) images; after the first instance-wise image, an
        estimate of the time left."""
        options = self.options
        if self.whole_batch:
            return predict_images(self.model, smalls, batch_size=options.batch_size)
        start = time.perf_counter()
        probs_list = [infer(self.model, small, options, ensemble=self.ensemble)
                      for small in smalls]
        if options.mode == "instance" and self.first_seconds is None:
            self.first_seconds = seconds = time.perf_counter() - start
            left = self.total - self.counter.done - len(smalls)
            if left > 0:
                self.warn(f"instance-wise inference took {seconds:.1f} s for the first image; "
                          f"about {seconds * left / 60:.1f} min for the {left} left")
        return probs_list

    def _save(self, path: Path, image: np.ndarray, plan, probs: np.ndarray) -> dict[str, Path]:
        """Writes one image's files, the labels (and probabilities) at the image's size."""
        height, width = image.shape[:2]
        if plan.downscaled:
            label = upscale_labels(probs, height, width)
            full = resize_channels(probs, height, width) if self.save_probs else None
        else:
            label, full = probs.argmax(-1), probs
        return save_prediction(self.output, path.stem, image, label,
                               full if self.save_probs else None,
                               getattr(self.model, "palette", None), overwrite=self.overwrite)

    def flush(self) -> None:
        """Predicts the queued images and writes their files."""
        if not self.items:
            return
        probs_list = self._predict([item[2] for item in self.items])
        for (path, image, _, plan), probs in zip(self.items, probs_list):
            self.written.append(self._save(path, image, plan, probs))
            self.counter.tick()
        self.items.clear()


def predict_files(
    model: Any,
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    output: str | os.PathLike,
    options: InferenceOptions | None = None,
    *,
    ensemble: Any = None,
    save_probs: bool = False,
    progress: bool = True,
    overwrite: bool = False,
    skip_errors: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    on_skip: Callable[[Path, str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> list[dict[str, Path]]:
    """Predicts image files and writes label, colour, overlay (and probability) files.

    Before any work the outputs are planned and checked (:func:`deconvnet_tf.render.
    plan_predictions`): an output that would replace an input is an error, and so is one that
    exists unless ``overwrite``. Each image's files are written as soon as it is done.

    Args:
        model: DeconvNet predictor, Keras model or model path (``.keras`` / SavedModel folder).
        inputs: Image files and/or folders of images (folders skip this project's outputs).
        output: Output folder: ``<stem>_labels.png``, ``<stem>_color.png``,
            ``<stem>_overlay.png`` (see :func:`deconvnet_tf.render.save_prediction`).
        options: :class:`InferenceOptions`.
        ensemble: Optional FCN (predictor, model or path) for EDeconvNet.
        save_probs: Also write ``<stem>_probs.npy`` (float16).
        progress: Show a progress bar over the images.
        overwrite: Replace the outputs of an earlier run.
        skip_errors: Report an image that cannot be read (``on_skip``) and go on, instead of
            raising.
        max_pixels: Pixel budget (``None``: no limit): a larger image is scaled down (aspect
            kept) for the whole pipeline (network, proposals, ensemble, CRF) and its labels and
            probabilities are scaled back to its size; ``on_warning`` says so.
        on_skip: ``on_skip(path, message)`` for each skipped image (default: a warning).
        on_warning: ``on_warning(message)`` (default: :func:`warnings.warn`).

    Returns:
        The paths written, one dict per image that was not skipped.

    Raises:
        FileNotFoundError, ValueError: Bad inputs (the message names the file).
        deconvnet_tf.io.OutputError: An output exists (without ``overwrite``), would replace an
            input, or cannot be written.
    """
    options = (options or InferenceOptions()).validate()
    warn = on_warning or _warn_outside
    skip = on_skip or (lambda path, message: warn(f"skipped {str(path)!r}: {message}"))
    planned = plan_predictions(inputs, output, probabilities=save_probs, overwrite=overwrite)
    with output_folder(output):  # removed again if nothing is written
        model = as_predictor(model)
        ensemble = as_predictor(ensemble) if ensemble is not None else None
        pending = _PendingImages(model, ensemble, options, output,
                                 _Progress(len(planned), progress), total=len(planned),
                                 save_probs=save_probs, overwrite=overwrite,
                                 max_pixels=max_pixels, warn=warn)
        if options.mode == "instance" and planned:
            top_k = int((options.proposals or {}).get("top_k", 50))
            warn(f"instance-wise mode runs the network on up to {top_k} proposal crops of "
                 f"{options.input_size}x{options.input_size} per image (about {top_k} times "
                 "the work of one whole-image pass at that size); the time per image follows "
                 "the first image")
        _each_file(planned, lambda item: read_image(item[0]), pending.add, ImageReadError,
                   skip_errors=skip_errors, skip=skip, counter=pending.counter,
                   before_raise=pending.flush)  # the images before a bad one are written first
        pending.flush()
        return pending.written
