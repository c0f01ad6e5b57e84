"""``export_all``: SavedModel + TFLite variants of one model, checked on LiteRT."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deconvnet_tf.export._common import (
    check_output,
    export_name,
    parse_input_size,
    resolve_class_names,
    resolve_model,
)
from deconvnet_tf.export.saved_model import export_saved_model
from deconvnet_tf.export.tflite import QUANTIZE_CHOICES, ExportError, export_tflite_variants
from deconvnet_tf.lite import LiteSegmenter
from deconvnet_tf.lite.metadata import read_metadata
from deconvnet_tf.lite.runtime import read_image
from deconvnet_tf.render import save_prediction

__all__ = ["ExportResult", "export_all", "tflite_name"]


def tflite_name(model_name: str, quantize: str) -> str:
    """File name of a TFLite export: ``<name>.tflite`` (fp32) or ``<name>_<quantize>.tflite``."""
    return f"{model_name}.tflite" if quantize == "none" else f"{model_name}_{quantize}.tflite"


@dataclass
class ExportResult:
    """What :func:`export_all` wrote and measured.

    Attributes:
        saved_model: The SavedModel directory (or ``None``).
        tflite: ``{quantize: path}`` of the ``.tflite`` files.
        sizes: ``{"saved_model" | quantize: bytes}``.
        seconds: Export time per artefact.
        agreement: ``{quantize: fraction of pixels whose LiteRT label equals Keras'}`` over the
            sample images (empty without samples).
        predictions: ``{quantize: [written paths per sample]}`` when ``predict_dir`` was given.
    """

    saved_model: Path | None
    tflite: dict[str, Path]
    sizes: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    agreement: dict[str, float] = field(default_factory=dict)
    predictions: dict[str, list] = field(default_factory=dict)

    def summary(self) -> str:
        """A markdown table: artefact, size MiB, export seconds, LiteRT/Keras label agreement."""
        lines = ["| export | size MiB | export s | label agreement vs Keras |",
                 "|---|---:|---:|---:|"]
        rows = ([("saved_model", self.saved_model)] if self.saved_model else []) + \
            [(q, p) for q, p in self.tflite.items()]
        for key, path in rows:
            agree = self.agreement.get(key)
            lines.append(f"| {Path(path).name} | {self.sizes[key] / 2**20:.2f} | "
                         f"{self.seconds[key]:.1f} | "
                         f"{'-' if agree is None else f'{100 * agree:.2f}%'} |")
        return "\n".join(lines)


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _load_samples(samples) -> list[tuple[str, np.ndarray]]:
    out = []
    for i, item in enumerate(samples):
        if isinstance(item, (str, os.PathLike)):
            out.append((Path(item).stem, read_image(item)))
        else:
            image = np.asarray(item)
            if image.ndim != 3 or image.shape[-1] != 3:
                raise ExportError(f"sample image {i}: expected (H, W, 3) RGB, got {image.shape}")
            out.append((f"sample_{i:03d}", image.astype(np.uint8)))
    return out


def _check_targets(output_dir: Path, targets: dict[str, Path], *, saved_model: bool,
                   overwrite: bool) -> None:
    """Checks every output path before the first export starts."""
    if saved_model:
        check_output(output_dir / "saved_model", "saved_model", overwrite=overwrite,
                     what="output")
    for target in targets.values():
        check_output(target, "tflite", overwrite=overwrite, what="output")


def _export_saved_model(result: ExportResult, model, output_dir: Path, *, size, names,
                        overwrite: bool) -> None:
    """Writes ``<output_dir>/saved_model`` and records its path, time and size."""
    started = time.perf_counter()
    result.saved_model = export_saved_model(model, output_dir / "saved_model",
                                            input_size=size, class_names=names,
                                            overwrite=overwrite)
    result.seconds["saved_model"] = time.perf_counter() - started
    result.sizes["saved_model"] = _dir_size(result.saved_model)


def _export_tflite(result: ExportResult, model, targets: dict[str, Path], *, size, names,
                   representative_data, overwrite: bool) -> None:
    """Writes the ``.tflite`` variants and records their paths, sizes and conversion times."""
    written = export_tflite_variants(
        model, targets, input_size=size, representative_data=representative_data,
        class_names=names, overwrite=overwrite)
    for q, path in written.items():
        result.tflite[q] = path
        result.sizes[q] = path.stat().st_size
        result.seconds[q] = float(read_metadata(path).extra.get("convert_seconds", 0.0))


def _check_on_litert(result: ExportResult, model, sample_images, *,
                     predict_dir: str | os.PathLike | None, threads: int) -> None:
    """Runs each ``.tflite`` on the sample images with LiteRT: records the pixel agreement of
    its labels with the Keras model's (and, with ``predict_dir``, the written predictions)."""
    samples = _load_samples(sample_images)
    reference = [np.argmax(np.asarray(model(image[None], training=False))[0], -1)
                 for _, image in samples]
    for q, path in result.tflite.items():
        segmenter = LiteSegmenter(path, threads=threads)
        equal = total = 0
        written = []
        for (stem, image), ref in zip(samples, reference):
            label, probs = segmenter.predict(image)
            equal += int(np.sum(label == ref))
            total += ref.size
            if predict_dir is not None:
                written.append(save_prediction(Path(predict_dir) / q, stem, image, label,
                                               palette=segmenter.palette))
        result.agreement[q] = equal / max(total, 1)
        if predict_dir is not None:
            result.predictions[q] = written


def export_all(
    model,
    output_dir: str | os.PathLike,
    *,
    quantize=("none", "int8"),
    saved_model: bool = True,
    input_size=None,
    representative_data=None,
    class_names=None,
    sample_images=None,
    predict_dir: str | os.PathLike | None = None,
    threads: int = 2,
    overwrite: bool = True,
) -> ExportResult:
    """Exports a model as a SavedModel and as ``.tflite`` files, then runs them on LiteRT.

    Writes ``<output_dir>/saved_model/`` and ``<output_dir>/<name>[_<quantize>].tflite`` (+
    ``.json`` sidecars); ``<name>`` is the model file's (see
    :func:`~deconvnet_tf.export._common.export_name`: ``runs/shapes/model.keras`` gives
    ``shapes``), or the model's name for a model object. With ``sample_images``, each ``.tflite`` runs on them through
    :class:`deconvnet_tf.lite.LiteSegmenter` and the pixel agreement of its labels with the
    Keras model's is measured; with ``predict_dir`` the LiteRT outputs (label PNG, colour,
    overlay) are written to ``<predict_dir>/<quantize>/``.

    Args:
        model: A Keras model or a ``.keras`` path / run folder.
        output_dir: Output folder.
        quantize: TFLite variants, from ``("none", "fp16", "dynamic", "int8")``.
        saved_model: Also write the SavedModel.
        input_size: ``None`` (dynamic) or ``(H, W)`` / ``"HxW"``.
        representative_data: Calibration data for int8 (see
            :func:`~deconvnet_tf.export.representative_images`).
        class_names: Class names or a ``meta.json`` path (``None``: looked up).
        sample_images: Image paths or RGB arrays to check LiteRT against Keras on.
        predict_dir: Where to write LiteRT predictions of the samples.
        threads: LiteRT threads.
        overwrite: Replace earlier exports in ``output_dir`` (else raise before any work).

    Returns:
        An :class:`ExportResult` (``.summary()`` prints a table).

    Example:

    >>> result = export_all("demo_output/run/model.keras", "demo_output/export",
    ...                     sample_images=["demo_output/sample.png"],
    ...                     predict_dir="demo_output/lite")
    >>> print(result.summary())
    """
    quantize = [quantize] if isinstance(quantize, str) else list(quantize)
    for q in quantize:
        if q not in QUANTIZE_CHOICES:
            raise ExportError(f"quantize {q!r}: expected values from {QUANTIZE_CHOICES}")
    model, model_path = resolve_model(model)
    names = resolve_class_names(model, class_names, model_path)
    size = parse_input_size(input_size, model)
    output_dir = Path(output_dir)
    base = export_name(model_path, model)
    targets = {q: output_dir / tflite_name(base, q) for q in quantize}
    _check_targets(output_dir, targets, saved_model=saved_model, overwrite=overwrite)
    result = ExportResult(saved_model=None, tflite={})
    if saved_model:
        _export_saved_model(result, model, output_dir, size=size, names=names,
                            overwrite=overwrite)
    if quantize:
        _export_tflite(result, model, targets, size=size, names=names,
                       representative_data=representative_data, overwrite=overwrite)
    if sample_images is not None:
        _check_on_litert(result, model, sample_images, predict_dir=predict_dir, threads=threads)
    return result
