"""TFLite export that runs on the stock LiteRT interpreter: builtin ops only, fp32, fp16,
dynamic-range or full-integer int8, with a metadata sidecar.

DeconvNet's argmax pooling (``tf.nn.max_pool_with_argmax`` + ``tf.scatter_nd``) has no TFLite
builtin; the exporter rebuilds the model with the switch pooling pair (same weights,
identical outputs, rank <= 5 builtin ops) before converting, and checks the op list of the
result.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from deconvnet_tf.data.folder import list_examples
from deconvnet_tf.data.synthetic import make_scene
from deconvnet_tf.export._common import (
    TEMP_DIR_PREFIX,
    ExportError,
    check_output,
    make_parents,
    model_family,
    parse_input_size,
    remove_empty,
    require_tensorflow_backend,
    resolve_class_names,
    resolve_model,
    segmenter_info,
    sweep_orphans,
    temp_sibling,
)
from deconvnet_tf.export.saved_model import write_archive
from deconvnet_tf.io import DEFAULT_MAX_PIXELS, fit_image, plan_size
from deconvnet_tf.lite.metadata import ModelMetadata, _dumps, metadata_path

__all__ = [
    "QUANTIZE_CHOICES",
    "check_builtins_only",
    "export_tflite",
    "export_tflite_variants",
    "non_builtin_ops",
    "representative_images",
    "tflite_op_names",
]

QUANTIZE_CHOICES = ("none", "fp16", "dynamic", "int8")


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - ai-edge-litert is the 'lite' extra
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def _model_bytes(model: str | os.PathLike | bytes) -> bytes:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    path = Path(model)
    if not path.is_file():
        raise ExportError(f"TFLite model {str(path)!r} not found")
    return path.read_bytes()


def tflite_op_names(model: str | os.PathLike | bytes) -> set[str]:
    """The operator names a ``.tflite`` flatbuffer uses.

    Builtins are named as in the TFLite schema (``CONV_2D``, ``ARG_MAX``, ...); custom ops by
    their custom code (Flex ops as ``Flex<TFOp>``, e.g. ``FlexMaxPoolWithArgmax``), prefixed
    ``CUSTOM:``. Parsed from the flatbuffer's operator codes with the TFLite schema, so it
    sees every subgraph.

    Args:
        model: A path or the model bytes.

    Raises:
        ExportError: Missing file or not a TFLite flatbuffer.
    """
    schema = _schema()
    data = _model_bytes(model)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ExportError("not a TFLite flatbuffer (no 'TFL3' identifier)")
    root = schema.Model.GetRootAsModel(data, 0)
    codes = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    names = set()
    for i in range(root.OperatorCodesLength()):
        code = root.OperatorCodes(i)
        # Schema v3a: builtin codes > 127 live in builtin_code, small ones in both fields.
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        name = codes.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            custom = code.CustomCode()
            name = "CUSTOM:" + (custom.decode() if custom else "?")
        names.add(name)
    return names


def non_builtin_ops(model: str | os.PathLike | bytes) -> set[str]:
    """The ops of a ``.tflite`` model that the stock LiteRT interpreter lacks (Flex, custom)."""
    return {name for name in tflite_op_names(model) if name.startswith(("CUSTOM:", "BUILTIN_"))
            or "Flex" in name}


def check_builtins_only(model: str | os.PathLike | bytes) -> set[str]:
    """Returns the op names, or raises when the model needs Flex or custom ops.

    Raises:
        ExportError: The model uses ops outside the TFLite builtins.
    """
    ops = tflite_op_names(model)
    bad = {name for name in ops if name.startswith(("CUSTOM:", "BUILTIN_")) or "Flex" in name}
    if bad:
        raise ExportError(f"TFLite model needs non-builtin ops {sorted(bad)}: it will not run on "
                          "the stock LiteRT interpreter")
    return ops


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ExportError(f"representative data: cannot read image {str(path)!r}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


_DEFAULT_PAD_RGB = (123, 117, 104)  # DeconvNet's mean colour (RGB, rounded)


def _fit(image: np.ndarray, size: tuple[int, int] | None, minimum: int,
         pad_rgb=_DEFAULT_PAD_RGB, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A calibration image as the predictors feed it: the rule of
    :func:`deconvnet_tf.io.plan_size` (resized to ``size`` when given, else native within
    ``max_pixels``; a side below ``minimum`` padded at the bottom/right with ``pad_rgb``)."""
    plan = plan_size(*image.shape[:2], input_size=size, min_size=minimum,
                     max_pixels=None if size is not None else max_pixels)
    return fit_image(image, plan, np.round(np.asarray(pad_rgb, np.float32)))


def representative_images(
    data=None,
    *,
    count: int = 32,
    input_size: tuple[int, int] | None = None,
    min_size: int = 1,
    seed: int = 0,
    pad_rgb=_DEFAULT_PAD_RGB,
) -> list[np.ndarray]:
    """Calibration images for full-integer quantisation, as uint8 RGB ``(H, W, 3)``.

    Args:
        data: ``None`` (the embedded default: generated scenes of
            :mod:`deconvnet_tf.data.synthetic`), a dataset folder (``<root>/train.txt`` etc.,
            the train split is used, else ``val``), a plain folder of images, or an iterable
            of RGB arrays.
        count: Number of images (at most; spread evenly over a dataset split).
        input_size: Resize to this ``(H, W)`` (fixed-size exports); ``None`` keeps each
            image's size within the default pixel budget (padded up to ``min_size`` where
            smaller): the size rule of the predictors (:func:`deconvnet_tf.io.plan_size`).
        min_size: The network's minimum input size.
        pad_rgb: Padding colour (the model's mean colour, RGB).
        seed: Seed of the generated scenes.

    Raises:
        ExportError: A folder without images, or arrays that are not ``(H, W, 3)``.
    """
    if count < 1:
        raise ExportError(f"calibration count must be >= 1, got {count}")
    if data is None:
        height, width = input_size or (max(96, min_size), max(128, min_size))
        images = [make_scene(seed + i, height, width)[0] for i in range(count)]
    elif isinstance(data, (str, os.PathLike)):
        root = Path(data)
        if not root.is_dir():
            raise ExportError(f"--representative-data {str(root)!r} is not a directory")
        split = next((s for s in ("train", "val", "test") if (root / f"{s}.txt").is_file()), None)
        if split is not None:
            paths = [image for image, _ in list_examples(root, split)]
        else:
            suffixes = (".jpg", ".jpeg", ".png", ".bmp")
            paths = sorted(p for p in root.iterdir() if p.suffix.lower() in suffixes)
            if not paths and (root / "images").is_dir():
                paths = sorted(p for p in (root / "images").iterdir()
                               if p.suffix.lower() in suffixes)
        if not paths:
            raise ExportError(f"--representative-data {str(root)!r}: no images (a dataset "
                              "folder with train.txt, or a folder of .jpg/.png files)")
        step = max(1, len(paths) // count)
        images = [_read_rgb(p) for p in paths[::step][:count]]
    else:
        images = []
        for i, image in enumerate(data):
            image = np.asarray(image)
            if image.ndim != 3 or image.shape[-1] != 3:
                raise ExportError(f"representative data item {i}: expected (H, W, 3) RGB, got "
                                  f"{image.shape}")
            images.append(np.clip(image, 0, 255).astype(np.uint8))
            if len(images) >= count:
                break
        if not images:
            raise ExportError("representative data is empty")
    return [_fit(image, input_size, min_size, pad_rgb) for image in images]


def _converter(saved_model_dir: Path, quantize: str, allow_flex: bool, calibration):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]

        def dataset():
            for image in calibration:
                yield {"images": image[None]}

        converter.representative_dataset = dataset
    if allow_flex:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    return converter


def export_tflite(
    model,
    output: str | os.PathLike,
    *,
    quantize: str = "none",
    input_size=None,
    representative_data=None,
    allow_flex: bool = False,
    class_names=None,
    calibration_count: int = 32,
    overwrite: bool = True,
) -> Path:
    """Converts a segmentation model to a ``.tflite`` file plus its ``.json`` metadata sidecar.

    The model gets one signature ``serving_default``: input ``images`` uint8 RGB
    ``[1, H, W, 3]`` (raw pixels, preprocessing inside), outputs ``probabilities`` float32
    ``[1, H, W, C]`` and ``labels`` int32 ``[1, H, W]`` (argmax of the logits). Quantised
    models keep these input/output types: ``int8`` is full-integer inside (every op int8,
    calibrated on ``representative_data``) with a uint8 image input and dequantised float
    probabilities.

    Unless ``allow_flex``, DeconvNets are rebuilt with the switch pooling pair (same weights)
    and the result must contain TFLite builtin ops only: otherwise the export fails and
    nothing is written.

    Args:
        model: A :class:`~deconvnet_tf.Segmenter`, a Keras model of this package or a
            ``.keras`` path / run folder. A Segmenter's class names, palette and void label go
            into the sidecar, and its working resolution is the default ``input_size``.
        output: Target ``.tflite`` path (written atomically; the sidecar is
            ``output.with_suffix(".json")``).
        quantize: ``"none"`` (fp32), ``"fp16"`` (fp16 weights), ``"dynamic"`` (int8 weights,
            float activations) or ``"int8"`` (full integer).
        input_size: ``None`` (a Segmenter's working resolution, or the model's fixed size,
            else dynamic H and W), ``"dynamic"`` (dynamic even for a Segmenter with a working
            resolution), ``(H, W)`` or ``"HxW"`` for a fixed input.
        representative_data: Calibration data for ``int8`` (see :func:`representative_images`;
            ``None``: generated scenes).
        allow_flex: Keep the argmax pooling and allow TensorFlow (Flex) ops: for comparison
            only; such a model does NOT run on the stock LiteRT interpreter.
        class_names: Class names, a ``meta.json`` path, or ``None`` (looked up next to the
            model, else ``class_<i>``).
        calibration_count: Number of calibration images for ``int8``.
        overwrite: Replace an existing ``output`` and its sidecar (``deconvnet-export``
            passes its ``--overwrite``, default off). A ``.json`` next to ``output`` that is
            not a deconvnet sidecar is never replaced.

    Returns:
        The written ``.tflite`` path.

    Raises:
        ExportError: Bad argument, an output path that is taken or not writable, conversion
            failure, or non-builtin ops in the result.

    Example:

    >>> path = export_tflite("runs/shapes/model.keras", "saved_models/shapes_int8.tflite",
    ...                      quantize="int8", input_size="96x128")
    >>> sorted(tflite_op_names(path))[:3]
    """
    return export_tflite_variants(
        model, {quantize: output}, input_size=input_size,
        representative_data=representative_data, allow_flex=allow_flex,
        class_names=class_names, calibration_count=calibration_count, overwrite=overwrite,
    )[quantize]


def _check_outputs(outputs: dict[str, str | os.PathLike], *, overwrite: bool) -> dict[str, Path]:
    """``{quantize: Path}`` after checking each quantisation and output path (all distinct)."""
    outputs = {q: Path(o) for q, o in outputs.items()}
    for quantize, output in outputs.items():
        if quantize not in QUANTIZE_CHOICES:
            raise ExportError(f"--quantize {quantize!r}: expected one of {QUANTIZE_CHOICES}")
        check_output(output, "tflite", overwrite=overwrite)
    if len({o.absolute() for o in outputs.values()}) != len(outputs):
        raise ExportError(f"outputs: two quantisations share one path ({outputs})")
    return outputs


def _convert(saved_model_dir: Path, model_name: str, quantize: str, allow_flex: bool,
             calibration) -> bytes:
    """The ``.tflite`` bytes of one quantisation of the traced SavedModel."""
    converter = _converter(saved_model_dir, quantize, allow_flex, calibration)
    try:
        with warnings.catch_warnings():
            # int8 calibration runs TensorFlow's own (deprecated) tf.lite.Interpreter.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
            return converter.convert()
    except Exception as err:  # the converter raises several error types
        detail = " ".join(str(err).split()) or type(err).__name__  # one line
        raise ExportError(f"TFLite conversion of {model_name} ({quantize}) failed: "
                          f"{detail[-1000:]}") from err


def export_tflite_variants(
    model,
    outputs: dict[str, str | os.PathLike],
    *,
    input_size=None,
    representative_data=None,
    allow_flex: bool = False,
    class_names=None,
    calibration_count: int = 32,
    overwrite: bool = True,
) -> dict[str, Path]:
    """Several quantisations of one model (one traced SavedModel converted once per variant).

    Args:
        model: A Keras model of this package or a ``.keras`` path / run folder.
        outputs: ``{quantize: .tflite path}``.
        input_size, representative_data, allow_flex, class_names, calibration_count,
            overwrite: As in :func:`export_tflite`.

    Returns:
        ``{quantize: written path}``.

    Raises:
        ExportError: As :func:`export_tflite`; variants converted before the failing one
            stay written. Every output path is checked before any work is done. A failed
            export leaves no temporary file or folder behind (leftovers of killed exports are
            removed by the next one, see :func:`~deconvnet_tf.export._common.sweep_orphans`).
    """
    require_tensorflow_backend()
    outputs = _check_outputs(outputs, overwrite=overwrite)
    model, model_path = resolve_model(model)
    size = parse_input_size(input_size, model)
    names = resolve_class_names(model, class_names, model_path)
    model, info = segmenter_info(model, names)
    if input_size is None and size is None and info.get("image_size"):
        size = parse_input_size(tuple(info["image_size"]), model)  # the working resolution

    # Keras: deconvnet_tf.models imports Keras; importing deconvnet_tf.export stays cheap
    from deconvnet_tf.models import DeconvNet, EnsembleNetwork, with_unpooling

    unpooling = None
    if isinstance(model, DeconvNet) or (isinstance(model, EnsembleNetwork)
                                        and model.unpooling is not None):
        unpooling = "argmax" if allow_flex else "switch"
        model = with_unpooling(model, unpooling)
    minimum = int(getattr(model, "min_input_size", 1))
    calibration = None
    if "int8" in outputs:
        mean_bgr = tuple(getattr(model, "mean", (104.008, 116.669, 122.675)))
        calibration = representative_images(representative_data, count=calibration_count,
                                            input_size=size, min_size=minimum,
                                            pad_rgb=tuple(mean_bgr[::-1]))
    shape = [1, *(size if size else (None, None)), 3]

    sweep_orphans(*{o.parent for o in outputs.values()})
    written = {}
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_DIR_PREFIX}{os.getpid()}_") as tmp:
        saved = Path(tmp) / "saved_model"
        started = time.perf_counter()
        write_archive(model, saved, shape, split_preprocessing=True,
                      int8_safe_pooling=unpooling == "switch")
        trace_seconds = time.perf_counter() - started
        for quantize, output in outputs.items():
            started = time.perf_counter()
            data = _convert(saved, model.name, quantize, allow_flex, calibration)
            seconds = trace_seconds + time.perf_counter() - started
            written[quantize] = _write_tflite(
                data, Path(output), model=model, names=names, shape=shape, minimum=minimum,
                quantize=quantize, allow_flex=allow_flex, unpooling=unpooling,
                seconds=seconds, calibration=calibration, info=info,
            )
    return written


def _write_tflite(data: bytes, output: Path, *, model, names, shape, minimum, quantize,
                  allow_flex, unpooling, seconds, calibration, info=None) -> Path:
    ops = tflite_op_names(data)
    bad = non_builtin_ops(data)
    if bad and not allow_flex:
        raise ExportError(f"TFLite model of {model.name} needs non-builtin ops {sorted(bad)}: it "
                          "would not run on the stock LiteRT interpreter; nothing was written")
    info = info or {}
    meta = ModelMetadata.create(
        model.name, model_family(model), names, input_shape=shape,
        palette=info.get("palette"),
        min_input_size=minimum,
        mean_bgr=list(getattr(model, "mean", (104.008, 116.669, 122.675))),
        format="tflite", quantize=quantize, builtins_only=not bad, ops=sorted(ops),
        extra={
            "signature": "serving_default",
            "unpooling": unpooling,
            "convert_seconds": round(seconds, 2),
            "calibration_images": len(calibration) if quantize == "int8" else 0,
            **({"image_size": info["image_size"], "void_label": info["void_label"],
                    "max_pixels": info["max_pixels"],
                    "test_time_flip": info["test_time_flip"],
                    "color_target": info["color_target"]}
               if info else {}),
            "note": ("Flex model for comparison: needs the TensorFlow Select ops runtime, "
                     "NOT the stock LiteRT interpreter") if bad else
                    "builtin ops only: runs on the stock LiteRT interpreter",
        },
    )
    sidecar = metadata_path(output)
    created = make_parents(output)
    tmp_model, tmp_meta = temp_sibling(output), temp_sibling(sidecar)
    old_meta = None
    placed = done = False
    try:
        # Both files are complete under temporary names before either replaces anything.
        tmp_model.write_bytes(data)
        tmp_meta.write_text(_dumps(meta.to_dict()) + "\n")
        if sidecar.exists():  # kept aside until the model is in place, restored on failure
            old_meta = temp_sibling(sidecar, "old")
            os.replace(sidecar, old_meta)
        os.replace(tmp_meta, sidecar)
        placed = True
        os.replace(tmp_model, output)
        done = True
    finally:
        if not done:
            if old_meta is not None and old_meta.exists():
                os.replace(old_meta, sidecar)  # the earlier export's pair, as it was
            elif placed and sidecar.exists():
                sidecar.unlink()  # no sidecar without its model
        for tmp in (tmp_model, tmp_meta, old_meta):
            if tmp is not None and tmp.exists():
                tmp.unlink()
        if not done:
            remove_empty(created)
    return output
