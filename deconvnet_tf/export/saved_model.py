"""SavedModel export with a serving signature that takes raw uint8 RGB images, and a loader
that turns an exported directory back into a predictor."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from deconvnet_tf.export._common import (
    ExportError,
    atomic_replace_dir,
    check_output,
    make_parents,
    model_family,
    parse_input_size,
    remove_empty,
    require_tensorflow_backend,
    resolve_class_names,
    resolve_model,
    segmenter_info,
    serving_function,
    sweep_orphans,
    temp_sibling,
)
from deconvnet_tf.io import (
    average_with_mirror,
    check_color_target,
    fit_image,
    plan_size,
    restore_scores,
)
from deconvnet_tf.lite.metadata import ModelMetadata, read_metadata, write_metadata

__all__ = ["SavedModelPredictor", "export_saved_model", "load_saved_model", "saved_model_info"]

SIGNATURE = "serving_default"


def write_archive(model, directory: Path, input_shape: list, *,
                  split_preprocessing: bool = False, int8_safe_pooling: bool = False) -> None:
    """Writes ``model`` as a SavedModel with ``serving_default(images uint8 input_shape)``.

    ``split_preprocessing`` and ``int8_safe_pooling`` rewrite the graph for TFLite (identical
    values), see :func:`~deconvnet_tf.export._common.serving_function`.
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SIGNATURE, serving_function(model, split_preprocessing=split_preprocessing,
                                   int8_safe_pooling=int8_safe_pooling),
        input_signature=[tf.TensorSpec(input_shape, tf.uint8, name="images")],
    )
    archive.write_out(str(directory), verbose=False)


def export_saved_model(
    model,
    output: str | os.PathLike,
    *,
    input_size=None,
    class_names=None,
    overwrite: bool = True,
) -> Path:
    """Exports a segmentation model as a TensorFlow SavedModel directory.

    The ``serving_default`` signature takes ``images``: uint8 RGB ``[batch, H, W, 3]`` (raw
    pixels; RGB->BGR and the mean subtraction are inside) and returns ``probabilities``
    (float32 ``[batch, H, W, C]``) and ``labels`` (int32 ``[batch, H, W]``). The metadata
    sidecar goes to ``<output>/assets/deconvnet_metadata.json``. The directory is written to
    a temporary sibling and renamed into place, so a failed export leaves no half-written
    directory (and keeps an older export). ``output`` must be a new or empty folder or an
    earlier SavedModel (replaced only with ``overwrite``): never a file, a folder of other
    files, or a path inside another SavedModel.

    Args:
        model: A :class:`~deconvnet_tf.Segmenter`, a Keras model of this package or a
            ``.keras`` path / run folder. A Segmenter's class names, palette, void label and
            working resolution go into the metadata (``extra["image_size"]``: the loader
            resizes images to it, the rule of :func:`deconvnet_tf.io.plan_size`).
        output: Target directory.
        input_size: ``None`` (any size; or the model's fixed size), ``(H, W)`` or ``"HxW"``.
        class_names: Class names, a ``meta.json`` path, or ``None`` (found next to the
            model's run folder when possible, else ``class_<i>``).
        overwrite: Replace an earlier SavedModel at ``output`` (``deconvnet-export`` passes
            its ``--overwrite``, default off).

    Returns:
        ``output`` as a Path.

    Raises:
        ExportError: Not on the TensorFlow backend, bad input size or class names, or an
            output path that is taken (see above) or not writable.

    Example:

    >>> export_saved_model("runs/shapes/model.keras", "saved_models/shapes")
    >>> predictor = load_saved_model("saved_models/shapes")
    >>> probabilities = predictor(images)          # uint8 [B, H, W, 3] -> [B, H, W, C]
    """
    require_tensorflow_backend()
    output = check_output(output, "saved_model", overwrite=overwrite)
    model, model_path = resolve_model(model)
    size = parse_input_size(input_size, model)
    names = resolve_class_names(model, class_names, model_path)
    model, info = segmenter_info(model, names)
    sweep_orphans(output.parent)
    created = make_parents(output)
    tmp = temp_sibling(output)
    shape = [None, *(size if size else (None, None)), 3]
    done = False
    try:
        write_archive(model, tmp, shape)
        meta = ModelMetadata.create(
            model.name, model_family(model), names, input_shape=shape,
            palette=info.get("palette"),
            min_input_size=int(getattr(model, "min_input_size", 1)),
            mean_bgr=list(getattr(model, "mean", (104.008, 116.669, 122.675))),
            format="saved_model", quantize="none", builtins_only=False,
            extra={"signature": SIGNATURE,
                   "unpooling": getattr(model, "unpooling", None),
                   **({"image_size": info["image_size"], "void_label": info["void_label"],
                    "max_pixels": info["max_pixels"],
                    "test_time_flip": info["test_time_flip"],
                    "color_target": info["color_target"]}
                      if info else {})},
        )
        write_metadata(tmp, meta)
        atomic_replace_dir(tmp, output)
        done = True
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if not done:
            remove_empty(created)
    return output


class SavedModelPredictor:
    """A loaded SavedModel export: ``predictor(images) -> probabilities``.

    Args:
        path: A directory written by :func:`export_saved_model`.

    Attributes:
        metadata: The :class:`~deconvnet_tf.lite.ModelMetadata` of the export (or ``None``).
        fixed_size: ``(H, W)`` for a fixed-size export, else ``None``.
        num_classes: Number of classes.
    """

    def __init__(self, path: str | os.PathLike):
        require_tensorflow_backend()
        import tensorflow as tf

        path = Path(path)
        if not (path / "saved_model.pb").is_file():
            raise ExportError(f"{str(path)!r} is not a SavedModel directory (no saved_model.pb)")
        self.path = path
        self._loaded = tf.saved_model.load(str(path))
        if SIGNATURE not in self._loaded.signatures:
            raise ExportError(f"{str(path)!r} has no {SIGNATURE!r} signature (signatures: "
                              f"{sorted(self._loaded.signatures)})")
        self._fn = self._loaded.signatures[SIGNATURE]
        spec = self._fn.structured_input_signature[1]["images"]
        dims = spec.shape.as_list()
        self.fixed_size = (dims[1], dims[2]) if dims[1] and dims[2] else None
        self.metadata = read_metadata(path, required=False)
        self.num_classes = int(self._fn.structured_outputs["probabilities"].shape[-1])
        self.min_input_size = self.metadata.min_input_size if self.metadata else 1
        mean_bgr = (self.metadata.mean_bgr if self.metadata is not None
                    and self.metadata.mean_bgr else (104.008, 116.669, 122.675))
        self.pad_rgb = tuple(int(round(float(v))) for v in list(mean_bgr)[::-1])
        working = self.metadata.working_size if self.metadata is not None else None
        #: Size images are resized to: the fixed input, else the working resolution of the
        #: exported Segmenter (``None``: native). Set it to ``None`` to predict natively.
        self.working_size = self.fixed_size or working
        #: Pixel budget at native resolution (``None``: no limit): the exported Segmenter's.
        budget = (self.metadata.extra or {}).get("max_pixels") if self.metadata else None
        self.max_pixels: int | None = None if budget is None else int(budget)
        #: Mirrored-image averaging (the exported Segmenter's ``test_time_flip``): the
        #: probabilities of each image and of its mirror image, mirrored back, averaged at the
        #: model's input size (as the Keras predictor does). Set it to change it.
        self.flip: bool = bool(self.metadata is not None and self.metadata.test_time_flip)
        #: Test-time colour normalisation (the exported Segmenter's ``color_target``: each
        #: image's channels are brought to this mean / std first; ``None``: off). Set it to
        #: change it.
        self.color_target: dict | None = check_color_target(
            (self.metadata.extra or {}).get("color_target") if self.metadata is not None
            else None, f"the metadata of {str(path)!r} (extra.color_target)")

    @property
    def class_names(self) -> list[str]:
        """Class names (``class_<i>`` when the export has no metadata)."""
        if self.metadata is not None:
            return list(self.metadata.class_names)
        return [f"class_{i}" for i in range(self.num_classes)]

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Calls the signature as is: ``{"probabilities", "labels"}`` as NumPy arrays."""
        import tensorflow as tf

        out = self._fn(images=tf.constant(np.asarray(images, np.uint8)))
        return {k: v.numpy() for k, v in out.items()}

    def run_probabilities(self, images: np.ndarray) -> np.ndarray:
        """Probabilities of a batch at a size the signature takes (no resizing, no flip)."""
        return self.run(images)["probabilities"]

    def _probabilities(self, images: np.ndarray) -> np.ndarray:
        if self.flip:
            return average_with_mirror(self.run_probabilities, images)
        return self.run_probabilities(images)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of a batch of raw RGB images.

        Images reach the model by the size rule of :func:`deconvnet_tf.io.plan_size`, as in
        the Keras and LiteRT predictors: resized to :attr:`working_size` when there is one
        (bilinear), else at their own size within :attr:`max_pixels`; a side below the
        minimum is padded at the bottom/right with the mean colour; the probabilities are
        mapped back to each image's size (cropped, bilinear). With :attr:`flip`, the
        probabilities at the model's input size are averaged with the mirrored image's.

        Args:
            images: uint8 ``[B, H, W, 3]`` (or one ``[H, W, 3]`` image).

        Returns:
            float32 ``[B, H, W, C]`` (``[H, W, C]`` for a single image).
        """
        images = np.asarray(images)
        single = images.ndim == 3
        if single:
            images = images[None]
        if images.ndim != 4 or images.shape[-1] != 3 or 0 in images.shape[1:3]:
            raise ValueError(f"expected uint8 images [B, H, W, 3], got shape {images.shape}")
        if images.dtype != np.uint8:
            images = np.clip(np.round(images.astype(np.float32)), 0, 255).astype(np.uint8)
        plan = plan_size(*images.shape[1:3], input_size=self.working_size,
                         min_size=self.min_input_size, max_pixels=self.max_pixels)
        if plan.identity:
            probs = self._probabilities(images)
        else:
            fitted = np.stack([fit_image(im, plan, self.pad_rgb) for im in images])
            probs = np.stack([restore_scores(p, plan) for p in self._probabilities(fitted)])
        return probs[0] if single else probs

    def predict(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(label int32 (H, W), probabilities float32 (H, W, C))`` of one RGB image."""
        probs = self(np.asarray(image)[None])[0]
        return np.argmax(probs, axis=-1).astype(np.int32), probs


def load_saved_model(path: str | os.PathLike) -> SavedModelPredictor:
    """Loads a SavedModel export for prediction.

    Args:
        path: A directory written by :func:`export_saved_model` (``deconvnet-export
            --format saved_model``).

    Returns:
        A :class:`SavedModelPredictor`: call it with uint8 RGB images ``[B, H, W, 3]`` to get
        float32 probabilities ``[B, H, W, C]``; ``.predict(image)`` gives ``(label, probs)``,
        ``.class_names`` and ``.metadata`` come from the export's sidecar.

    Raises:
        ExportError: Not a SavedModel directory, or no ``serving_default`` signature.
    """
    return SavedModelPredictor(path)


def saved_model_info(path: str | os.PathLike) -> dict[str, Any]:
    """Size on disk (bytes) of a SavedModel directory and its metadata."""
    path = Path(path)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return {"bytes": size, "metadata": read_metadata(path, required=False)}
