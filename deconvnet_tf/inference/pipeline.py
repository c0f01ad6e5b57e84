"""The full inference pipeline of one image (whole or instance-wise, optional FCN ensemble,
optional dense CRF) and the file loop behind ``deconvnet-predict``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
    input_size: int = 224
    batch_size: int = 8
    aggregate: str = "max"
    proposals: dict = field(default_factory=dict)

    def validate(self) -> "InferenceOptions":
        from deconvnet_tf.inference.crf import crf_settings
        from deconvnet_tf.inference.ensemble import ENSEMBLE_METHODS

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
        return self


def infer(
    model: Any, image: np.ndarray, options: InferenceOptions | None = None, *, ensemble: Any = None
) -> np.ndarray:
    """Class probabilities ``(H, W, C)`` of one RGB image.

    Args:
        model: The DeconvNet (predictor, Keras model or path).
        image: RGB image ``(H, W, 3)`` uint8.
        options: :class:`InferenceOptions` (default: whole image, no CRF).
        ensemble: Optional second model run on the whole image (EDeconvNet: an FCN-8s) and
            combined by ``options.ensemble_method``.

    Returns:
        Probabilities (after the CRF when ``options.crf``).
    """
    from deconvnet_tf.inference.ensemble import combine_probabilities
    from deconvnet_tf.inference.instance import predict_instances
    from deconvnet_tf.inference.predict import predict_image

    options = (options or InferenceOptions()).validate()
    if options.mode == "whole":
        probs = predict_image(model, image)
    else:
        probs = predict_instances(model, image, input_size=options.input_size,
                                  batch_size=options.batch_size, aggregate=options.aggregate,
                                  proposals=options.proposals)
    if ensemble is not None:
        probs = combine_probabilities([probs, predict_image(ensemble, image)],
                                      options.ensemble_method)
    if options.crf:
        from deconvnet_tf.inference.crf import dense_crf

        probs = dense_crf(np.clip(image, 0, 255).astype(np.uint8), probs,
                          preset=options.crf_preset, **options.crf_overrides)
    return probs


def predict_files(
    model: Any,
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    output: str | os.PathLike,
    options: InferenceOptions | None = None,
    *,
    ensemble: Any = None,
    save_probs: bool = False,
    progress: bool = True,
) -> list[dict[str, Path]]:
    """Predicts image files and writes label, colour, overlay (and probability) files.

    Args:
        model: DeconvNet predictor, Keras model or model path (``.keras`` / SavedModel folder).
        inputs: Image files and/or folders of images.
        output: Output folder (see :func:`deconvnet_tf.render.save_prediction`).
        options: :class:`InferenceOptions`.
        ensemble: Optional FCN (predictor, model or path) for EDeconvNet.
        save_probs: Also write ``<stem>_probs.npy`` (float16).
        progress: Show a progress bar over the images.

    Returns:
        The paths written, one dict per image.

    Raises:
        FileNotFoundError, ValueError: Bad inputs (the message names the file).
    """
    from deconvnet_tf.inference.predict import (
        as_predictor,
        list_images,
        predict_images,
        read_image,
    )
    from deconvnet_tf.render import save_prediction

    options = (options or InferenceOptions()).validate()
    paths = list_images(inputs)
    model = as_predictor(model)
    ensemble = as_predictor(ensemble) if ensemble is not None else None
    bar = None
    if progress:
        import keras

        bar = keras.utils.Progbar(len(paths), unit_name="image")
    written: list[dict[str, Path]] = []
    stems: dict[str, Path] = {}
    for path in paths:
        if path.stem in stems:
            raise ValueError(f"Two inputs share the stem {path.stem!r} ({str(stems[path.stem])!r}"
                             f" and {str(path)!r}); their outputs would overwrite each other")
        stems[path.stem] = path
    whole_batch = options.mode == "whole" and ensemble is None and not options.crf
    step = options.batch_size if whole_batch else 1
    done = 0
    for start in range(0, len(paths), step):
        chunk = paths[start:start + step]
        images = [read_image(p) for p in chunk]
        if whole_batch:
            probs_list = predict_images(model, images, batch_size=options.batch_size)
        else:
            probs_list = [infer(model, im, options, ensemble=ensemble) for im in images]
        for path, image, probs in zip(chunk, images, probs_list):
            written.append(save_prediction(output, path.stem, image, probs.argmax(-1),
                                           probs if save_probs else None))
        done += len(chunk)
        if bar is not None:
            bar.update(done)
    return written
