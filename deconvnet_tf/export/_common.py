"""Helpers shared by the SavedModel and TFLite exporters (model resolution, class names,
input sizes, the serving function, atomic writes)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

__all__ = [
    "ExportError",
    "atomic_replace_dir",
    "find_class_names",
    "model_family",
    "parse_input_size",
    "require_tensorflow",
    "resolve_class_names",
    "resolve_model",
    "serving_function",
]


class ExportError(ValueError):
    """Export cannot proceed; the message names the argument/file and what was expected."""


def require_tensorflow() -> None:
    """Raises :class:`ExportError` unless Keras runs on the TensorFlow backend."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            f"Export needs the TensorFlow backend (KERAS_BACKEND=tensorflow); Keras runs on "
            f"{keras.backend.backend()!r}. A .keras file saved under JAX loads under TensorFlow."
        )


def resolve_model(model: Any) -> tuple[Any, Path | None]:
    """Returns ``(keras model, path or None)`` for a model or a ``.keras`` path / run folder.

    Raises:
        ExportError: No model file at the path.
    """
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.is_dir() and (path / "model.keras").is_file():
            path = path / "model.keras"
        if not path.exists():
            raise ExportError(f"--model {str(path)!r}: no such file (expected a .keras model or "
                              "a training run folder with model.keras)")
        from deconvnet_tf.models import load_model

        try:
            return load_model(path), path
        except (ValueError, FileNotFoundError) as err:
            raise ExportError(f"--model {str(path)!r}: {err}") from err
    import keras

    if not isinstance(model, keras.Model):
        raise ExportError(f"model must be a keras.Model or a path, got {type(model).__name__}")
    return model, None


def model_family(model) -> str:
    """``model.architecture.family`` or the class name."""
    arch = getattr(model, "architecture", None)
    return str(getattr(arch, "family", type(model).__name__.lower()))


def _classes_from_meta(path: Path) -> list[str] | None:
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
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
        return _classes_from_meta(direct)
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
            return _classes_from_meta(root / "meta.json")
    return None


def resolve_class_names(model, class_names=None, model_path=None) -> list[str]:
    """Class names for the export: given ones, found ones (:func:`find_class_names`) or
    ``class_<i>``; checked against the model's class count.

    Args:
        model: The Keras model (its last output dimension is the class count).
        class_names: A list of names, a path to a ``meta.json`` (``{"classes": [...]}``), or
            ``None``.
        model_path: Where the model was loaded from (for the lookup).

    Raises:
        ExportError: Wrong number of names, or an unreadable meta file.
    """
    num_classes = int(model.output_shape[-1])
    names: list[str] | None
    if isinstance(class_names, (str, os.PathLike)):
        meta = Path(class_names)
        names = _classes_from_meta(meta) if meta.is_file() else None
        if names is None:
            raise ExportError(f"--meta {str(meta)!r}: expected a JSON file with a non-empty "
                              "'classes' list")
    elif class_names is not None:
        names = [str(c) for c in class_names]
    else:
        names = find_class_names(model_path)
        if names is not None and len(names) != num_classes:
            names = None  # a dataset that does not match this model: ignore it
    if names is None:
        return [f"class_{i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise ExportError(f"class names: got {len(names)} names for a model with {num_classes} "
                          f"classes ({names})")
    return names


def parse_input_size(value, model=None) -> tuple[int, int] | None:
    """Parses ``"HxW"`` / ``(H, W)`` / ``None`` and checks it against the model's minimum.

    Raises:
        ExportError: Malformed value or a size below ``model.min_input_size``.
    """
    if value is None or value == "" or (isinstance(value, str) and value.lower() == "dynamic"):
        size = None
    elif isinstance(value, str):
        parts = value.lower().replace(",", "x").split("x")
        try:
            size = tuple(int(p) for p in parts)
        except ValueError:
            size = ()
        if len(size) != 2:
            raise ExportError(f"--input-size {value!r}: expected HxW (e.g. 224x224) or 'dynamic'")
    else:
        size = tuple(int(v) for v in value)
        if len(size) != 2:
            raise ExportError(f"input_size must be (height, width), got {value!r}")
    if size is None:
        if model is not None:
            shape = tuple(getattr(model, "image_shape", (None, None, 3)))
            if shape[0] is not None and shape[1] is not None:
                return int(shape[0]), int(shape[1])
        return None
    if min(size) < 1:
        raise ExportError(f"input size must be positive, got {size[0]}x{size[1]}")
    minimum = int(getattr(model, "min_input_size", 1)) if model is not None else 1
    if min(size) < minimum:
        raise ExportError(f"--input-size {size[0]}x{size[1]} is below the model's minimum "
                          f"{minimum}x{minimum}")
    if model is not None:
        shape = tuple(getattr(model, "image_shape", (None, None, 3)))
        for axis, fixed, wanted in zip(("height", "width"), shape[:2], size):
            if fixed is not None and int(fixed) != wanted:
                raise ExportError(f"--input-size {size[0]}x{size[1]}: the model was built with a "
                                  f"fixed {axis} of {fixed}")
    return size


def _split_preprocessing(model):
    """``(VGGPreprocessing layer, model without it)`` or ``(None, model)``.

    The layer's channel flip lowers to TFLite ``REVERSE_V2``, whose full-integer kernel copies
    int8 values while the converter gives its output another scale (pixels come out ~1.5x
    off); the TFLite export computes the same preprocessing with slices + concatenation
    (which requantise correctly) and runs the rest of the network as a sub-model.
    """
    import keras

    from deconvnet_tf.layers import VGGPreprocessing

    layers = [layer for layer in model.layers if isinstance(layer, VGGPreprocessing)]
    if len(layers) != 1 or not model.layers or model.layers[1] is not layers[0]:
        return None, model
    pre = layers[0]
    return pre, keras.Model(pre.output, model.output, name=f"{model.name}_body")


def serving_function(model, *, split_preprocessing: bool = False,
                     int8_safe_pooling: bool = False):
    """``f(images uint8 [B, H, W, 3]) -> {"probabilities", "labels"}`` around ``model``.

    Probabilities are the softmax of the logits (or the model's own softmax output); labels
    are the argmax of the logits (int32), so quantised models get no ties from a saturated
    softmax.

    Args:
        model: The Keras model.
        split_preprocessing: Compute the model's RGB->BGR + mean preprocessing with slices
            and a concatenation instead of its layer (identical values; needed for correct
            full-integer TFLite, see :func:`_split_preprocessing`).
        int8_safe_pooling: Compute the switch poolings with ``ARG_MAX`` instead of an
            equality with the window maximum (identical values; LiteRT's int8 ``EQUAL`` is
            wrong for quantisation scales >= 1, see :mod:`deconvnet_tf.export._int8_pooling`).
    """
    import tensorflow as tf

    softmax_inside = getattr(model, "output_activation", None) == "softmax"
    pre, body = _split_preprocessing(model) if split_preprocessing else (None, model)
    if int8_safe_pooling:
        from deconvnet_tf.export._int8_pooling import with_int8_safe_pooling

        body = with_int8_safe_pooling(body)

    def serve(images):
        x = tf.cast(images, tf.float32)
        if pre is not None:
            if pre.bgr:
                x = tf.concat([x[..., 2:3], x[..., 1:2], x[..., 0:1]], axis=-1)
            x = x - tf.constant(pre.mean, tf.float32)
        outputs = body(x, training=False)
        outputs = tf.cast(outputs, tf.float32)
        probabilities = outputs if softmax_inside else tf.nn.softmax(outputs, axis=-1)
        labels = tf.argmax(outputs, axis=-1, output_type=tf.int32)
        return {"probabilities": probabilities, "labels": labels}

    return serve


def atomic_replace_dir(tmp: Path, target: Path) -> Path:
    """Moves the finished directory ``tmp`` to ``target``, replacing an old one.

    ``tmp`` must be on the same filesystem (a sibling). The old ``target`` is renamed aside
    first and removed only once the new one is in place.
    """
    target = Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target
